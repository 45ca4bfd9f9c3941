/** The kernel monitor's process tables (local /proc, and the dump one exec prints) on this machine. */
import {execFile, spawn} from 'node:child_process';
import {readFile} from 'node:fs/promises';
import {promisify} from 'node:util';
import {describe, expect, test} from 'vitest';
import {joinKernels, parseProcDump, procDumpCommand} from '../../source/core/kernels.js';
import {readProcTable} from '../../source/services/proc-table.js';
import {waitFor} from '../helpers/wait-for.js';

const idA = '3f1c2a4e-0000-4000-8000-00000000000a';

describe('process tables', () => {
	test('the dump of this machine parses into a table that finds a kernel by its connection file', async () => {
		// A stand-in "kernel": any process whose argv names a kernel connection file.
		const child = spawn(
			process.execPath,
			['-e', 'setTimeout(() => {}, 300_000)', `/tmp/kernel-${idA}.json`],
			{stdio: 'ignore'},
		);
		try {
			await waitFor(
				async () => (await readFile(`/proc/${child.pid}/cmdline`, 'utf8')).includes('kernel-'),
				{
					message: 'the stand-in started',
				},
			);
			const {stdout} = await promisify(execFile)('/bin/sh', ['-c', procDumpCommand]);
			const table = parseProcDump(stdout, 1000);
			expect(table.ticksPerSecond).toBeGreaterThan(0);
			const found = table.processes.find((p) => p.pid === child.pid);
			expect(found?.argv).toEqual([`kernel-${idA}.json`]);
			expect(found?.ppid).toBe(process.pid);
			expect(found?.rssKiB).toBeGreaterThan(0);
			expect(table.processes.find((p) => p.pid === process.pid)?.argv).toEqual([]);
			expect(
				joinKernels({
					rest: [
						{
							id: idA,
							name: 'python3',
							notebook: null,
							state: 'idle',
							lastActivity: null,
							connections: 0,
						},
					],
					procs: table,
					previousProcs: null,
					gpuProcesses: [],
					previous: [],
					now: 1000,
				}).kernels[0]?.pids,
			).toEqual([child.pid]);
		} finally {
			child.kill();
		}
	});

	test('the local table sees this process, its parent and its CPU time', async () => {
		const table = await readProcTable();
		const self = table.processes.find((p) => p.pid === process.pid);
		expect(self?.ppid).toBe(process.ppid);
		expect(self?.argv.join(' ')).toContain('node');
		expect(self?.cpuTicks).toBeGreaterThan(0);
		expect(self?.rssKiB).toBeGreaterThan(10_000);
		expect(table.ticksPerSecond).toBeGreaterThan(0);
	});
});
