/** The GPU host's process table from /proc, for the kernel monitor (no `ps`, no shell). */
import {execFile} from 'node:child_process';
import {readdir, readFile} from 'node:fs/promises';
import {promisify} from 'node:util';
import type {ProcSample, ProcSnapshot} from '../core/kernels.js';

const execFileP = promisify(execFile);

async function sysconf(name: string, fallback: number): Promise<number> {
	try {
		const {stdout} = await execFileP('getconf', [name], {timeout: 5000});
		const value = Number(stdout.trim());
		return Number.isInteger(value) && value > 0 ? value : fallback;
	} catch {
		return fallback;
	}
}

let units: Promise<{ticksPerSecond: number; pageKiB: number}> | undefined;

/** Clock ticks per second and the page size, asked once per process. */
async function procUnits(): Promise<{ticksPerSecond: number; pageKiB: number}> {
	units ??= Promise.all([sysconf('CLK_TCK', 100), sysconf('PAGESIZE', 4096)]).then(
		([ticksPerSecond, pageBytes]) => ({ticksPerSecond, pageKiB: pageBytes / 1024}),
	);
	return units;
}

async function readSample(pid: number, pageKiB: number): Promise<ProcSample | undefined> {
	try {
		const [stat, cmdline] = await Promise.all([
			readFile(`/proc/${pid}/stat`, 'utf8'),
			readFile(`/proc/${pid}/cmdline`, 'utf8'),
		]);
		// The command name is in parentheses and may itself contain spaces or parentheses.
		const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
		if (rest[0] === 'Z' || rest[0] === 'X') return undefined;
		return {
			pid,
			ppid: Number(rest[1]),
			argv: cmdline.split('\0').filter((arg) => arg !== ''),
			cpuTicks: Number(rest[11]) + Number(rest[12]),
			rssKiB: Number(rest[21]) * pageKiB,
		};
	} catch {
		// Gone between readdir and read, or not ours to read.
		return undefined;
	}
}

/** Every live process this user can see, with its argv, CPU ticks and RSS. */
export async function readProcTable(): Promise<ProcSnapshot> {
	const {ticksPerSecond, pageKiB} = await procUnits();
	const names = await readdir('/proc');
	const samples = await Promise.all(
		names
			.filter((name) => /^\d+$/.test(name))
			.map(async (name) => readSample(Number(name), pageKiB)),
	);
	return {
		at: Date.now(),
		ticksPerSecond,
		processes: samples.filter((sample): sample is ProcSample => sample !== undefined),
	};
}
