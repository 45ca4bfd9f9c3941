/**
 * The `--no-tui` JSON lines against readers that misbehave: one that stops reading (the queue, and
 * so the process, stays bounded; once it reads again a counted overflow line says what it lost)
 * and one that goes away (`| head -1`: exit 0, nothing on stderr, as Unix tools do).
 */
import {spawn as spawnChild} from 'node:child_process';
import {appendFile, readFile, writeFile} from 'node:fs/promises';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {cli, runGpujup, type JsonLine} from '../e2e/gpujup-process.js';
import {waitFor} from '../helpers/wait-for.js';
import {connectArgs, processFootprint, startChain, type Chain} from './fixture.js';

/** Bytes this process has read so far (every read(2), sockets included). */
async function bytesRead(pid: number): Promise<number> {
	const io = await readFile(`/proc/${pid}/io`, 'utf8');
	return Number(/^rchar:\s+(\d+)/m.exec(io)?.[1] ?? Number.NaN);
}

describe('--no-tui JSON lines and their reader', () => {
	let chain: Chain;
	let logFile: string;

	beforeAll(async () => {
		chain = await startChain({jupyter: false});
		logFile = path.join(chain.scratch, 'jupyter.log');
		await writeFile(logFile, '');
	});

	afterAll(async () => {
		await chain?.dispose();
	});

	it('a stalled reader: memory stays bounded, and an overflow line counts the drops once it reads', async () => {
		const args = connectArgs(chain.lab, {
			jupyterPort: chain.jupyterPort,
			extra: ['--jupyter-log', logFile],
		});
		const child = spawnChild(process.execPath, [cli, ...args], {
			env: chain.lab.env(),
			stdio: ['ignore', 'pipe', 'pipe'],
		});
		// Nobody reads stdout until the flood is in: the pipe fills and stays full.
		child.stdout.pause();
		let stderr = '';
		child.stderr.on('data', (chunk: Buffer) => {
			stderr += chunk.toString();
		});
		const pid = child.pid!;
		try {
			// The running connect answers `status` on its socket: wait for the hop that tails the log.
			await waitFor(
				async () => {
					const {stdout} = await runGpujup(['status', '--json'], chain.lab.env());
					return /"hop":"host","state":"ready"/.test(stdout) ? true : undefined;
				},
				{timeoutMs: 60_000, message: `connect ready; stderr: ${stderr}`},
			);
			const before = await processFootprint(pid);
			const readBefore = await bytesRead(pid);
			// 120 MB of log lines: unbounded, their JSON would sit in the process's memory.
			const line = `[I 12:00:00.000 NotebookApp] ${'x'.repeat(110)}\n`;
			const chunk = line.repeat(10_000);
			const chunks = 80;
			for (let i = 0; i < chunks; i++) await appendFile(logFile, chunk);
			const flood = chunk.length * chunks;
			// Half the flood through the tail is already far more than the queue may hold (unbounded,
			// its JSON alone would outgrow it). Alone this reads the whole flood in a few seconds; in
			// a full suite it has once read at under 1 MB/s, so the wait is for half, with the pace
			// it saw in its error should the deadline pass.
			const enough = flood / 2;
			const pace: string[] = [];
			const started = Date.now();
			let read = 0;
			await waitFor(
				async () => {
					read = (await bytesRead(pid)) - readBefore;
					const second = Math.floor((Date.now() - started) / 10_000) * 10;
					if (pace.at(-1)?.startsWith(`${second} s:`) !== true) pace.push(`${second} s: ${read}`);
					if (read < enough) throw new Error(`${read} of ${flood} bytes read (${pace.join(', ')})`);
					return true;
				},
				{
					timeoutMs: 240_000,
					intervalMs: 200,
					message: 'gpujup to read half the flood through the tail',
				},
			);
			const stalled = await processFootprint(pid);
			// Unbounded, the queued JSON alone (each line longer than the log line it carries) would
			// outgrow what was read; bounded, the growth is the heap's churn, whatever the flood's size.
			expect(
				stalled.rssKiB - before.rssKiB,
				`RSS ${before.rssKiB} → ${stalled.rssKiB} KiB while ${read} bytes of log went by`,
			).toBeLessThan(read / 1024);

			// The reader comes back: everything queued, then the count of what was dropped.
			const lines: JsonLine[] = [];
			let pending = '';
			child.stdout.setEncoding('utf8');
			child.stdout.on('data', (text: string) => {
				pending += text;
				const parts = pending.split('\n');
				pending = parts.pop() ?? '';
				for (const part of parts) if (part) lines.push(JSON.parse(part) as JsonLine);
			});
			child.stdout.resume();
			const overflow = await waitFor(
				() => lines.find((l) => l.type === 'error' && l['kind'] === 'overflow'),
				{timeoutMs: 60_000, message: 'an overflow line'},
			);
			const dropped = Number(/(\d+) events? dropped/.exec(String(overflow['message']))?.[1]);
			expect(dropped).toBeGreaterThan(0);
			// After the count, the current state again, so what the reader holds is true.
			const at = lines.indexOf(overflow);
			await waitFor(() =>
				lines.slice(at + 1).some((l) => l.type === 'hop' && l['hop'] === 'host') ? true : undefined,
			);
			expect(stderr).toBe('');
		} finally {
			child.kill('SIGTERM');
			await new Promise((resolve) => {
				if (child.exitCode !== null || child.signalCode !== null) resolve(null);
				else child.once('exit', resolve);
			});
		}
		// Its waits add up to 6 minutes (the flood read on a loaded machine): more than the default.
	}, 420_000);

	it('`gpujup --no-tui | head -1`: exit 0 and nothing on stderr once the reader is gone', async () => {
		const args = connectArgs(chain.lab, {jupyterPort: chain.jupyterPort});
		const errFile = path.join(chain.scratch, 'head-stderr');
		const quoted = [process.execPath, cli, ...args].map((a) => `'${a}'`).join(' ');
		const result = await new Promise<{out: string; status: string}>((resolve, reject) => {
			const shell = spawnChild(
				'bash',
				['-c', `${quoted} 2>'${errFile}' | head -1; echo "\${PIPESTATUS[0]}" >&2`],
				{env: chain.lab.env(), stdio: ['ignore', 'pipe', 'pipe']},
			);
			let out = '';
			let status = '';
			shell.stdout.on('data', (chunk: Buffer) => {
				out += chunk.toString();
			});
			shell.stderr.on('data', (chunk: Buffer) => {
				status += chunk.toString();
			});
			const timer = setTimeout(() => {
				shell.kill('SIGKILL');
				reject(new Error('gpujup did not exit after its reader went away'));
			}, 60_000);
			shell.on('exit', () => {
				clearTimeout(timer);
				resolve({out, status: status.trim()});
			});
		});
		// The first event of the run (the forward listening: nothing is said of a hop before it is tried).
		expect(JSON.parse(result.out.trim())).toMatchObject({type: 'forward', state: 'listening'});
		expect(await readFile(errFile, 'utf8')).toBe('');
		expect(result.status).toBe('0');
	});
});
