import {describe, expect, test} from 'vitest';
import {
	joinKernels,
	kernelIdOf,
	parseProcDump,
	parseProcStat,
	kernelNotifications,
	parseRestKernels,
	processTree,
	type KernelStatus,
	type ProcSample,
	type ProcSnapshot,
} from '../../source/core/kernels.js';

const idA = '3f1c2a4e-0000-4000-8000-00000000000a';
const idB = '3f1c2a4e-0000-4000-8000-00000000000b';

// What notebook 6's /api/kernels and /api/sessions answer (shapes as Jupyter sends them).
const restKernels = [
	{
		id: idA,
		name: 'python3',
		last_activity: '2026-12-01T10:00:00.000000Z',
		execution_state: 'busy',
		connections: 1,
	},
	{
		id: idB,
		name: 'python3',
		last_activity: '2026-12-01T09:00:00.000000Z',
		execution_state: 'idle',
		connections: 0,
	},
	{id: 'not a kernel id!', name: 'x', execution_state: 'idle'},
	'garbage',
];
const restSessions = [
	{
		id: 's1',
		path: 'train/resnet.ipynb',
		name: '',
		type: 'notebook',
		kernel: restKernels[0],
		notebook: {path: 'train/resnet.ipynb', name: ''},
	},
	{kernel: 7},
];

const proc = (
	pid: number,
	ppid: number,
	argv: string[],
	cpuTicks = 0,
	rssKiB = 1024,
): ProcSample => ({
	pid,
	ppid,
	argv,
	cpuTicks,
	rssKiB,
});

const launcher = (id: string) => [
	'/usr/bin/python3',
	'-m',
	'ipykernel_launcher',
	'-f',
	`/run/user/0/jupyter/kernel-${id}.json`,
];

function table(at: number, ticks: Record<number, number> = {}): ProcSnapshot {
	return {
		at,
		ticksPerSecond: 100,
		processes: [
			proc(1, 0, ['/sbin/init']),
			proc(100, 1, ['/usr/bin/python3', '/usr/bin/jupyter-notebook']),
			proc(200, 100, launcher(idA), ticks[200] ?? 0, 2048),
			proc(
				201,
				200,
				['/usr/bin/python3', '-c', 'from multiprocessing.spawn import spawn_main'],
				ticks[201] ?? 0,
				4096,
			),
			proc(202, 201, ['/usr/bin/python3', '-c', 'worker'], ticks[202] ?? 0, 1024),
			proc(300, 100, launcher(idB), 0, 1024),
		],
	};
}

describe('REST answers', () => {
	test('kernels are named by their notebook; malformed entries are skipped', () => {
		const kernels = parseRestKernels(restKernels, restSessions);
		expect(kernels).toEqual([
			{
				id: idA,
				name: 'python3',
				notebook: 'train/resnet.ipynb',
				state: 'busy',
				lastActivity: '2026-12-01T10:00:00.000000Z',
				connections: 1,
			},
			{
				id: idB,
				name: 'python3',
				notebook: null,
				state: 'idle',
				lastActivity: '2026-12-01T09:00:00.000000Z',
				connections: 0,
			},
		]);
	});

	test('remote text is sanitised and other states fold into starting', () => {
		const [k] = parseRestKernels(
			[{id: idA, name: 'py\u001B]52;c;ZXZpbA==\u0007thon', execution_state: 'restarting'}],
			[{path: 'a\u009B2J.ipynb', kernel: {id: idA}}],
		);
		expect(k?.name).toBe('python');
		// The 8-bit CSI goes whole, parameters and final byte with it.
		expect(k?.notebook).toBe('a.ipynb');
		expect(k?.state).toBe('starting');
		expect(parseRestKernels({not: 'a list'}, null)).toEqual([]);
	});
});

describe('processes', () => {
	test('the kernel id comes from the connection file in argv', () => {
		expect(kernelIdOf(launcher(idA))).toBe(idA);
		expect(kernelIdOf(['python3', '-f', 'kernel-abc.json'])).toBe('abc');
		expect(kernelIdOf(['python3', 'train.py'])).toBeNull();
	});

	test('a process tree holds every descendant', () => {
		expect(processTree(200, table(0).processes)).toEqual([200, 201, 202]);
		expect(processTree(300, table(0).processes)).toEqual([300]);
	});
});

describe('joining', () => {
	const gpu0 = 'GPU-00000000-0000-0000-0000-000000000000';
	const gpu1 = 'GPU-11111111-1111-1111-1111-111111111111';
	const rest = parseRestKernels(restKernels, restSessions);
	const gpuProcesses = [
		{gpuUuid: gpu1, pid: 200, user: 'me', command: 'python3', usedMemoryMiB: 20_000},
		{gpuUuid: gpu1, pid: 202, user: 'me', command: 'python3', usedMemoryMiB: 2_600},
		{gpuUuid: gpu0, pid: 201, user: 'me', command: 'python3', usedMemoryMiB: 500},
		{gpuUuid: gpu0, pid: 999_999, user: null, command: 'python', usedMemoryMiB: 8_000},
	];

	test('GPU memory, CPU and RSS are summed over the whole tree; foreign pids are named, not guessed', () => {
		const first = joinKernels({
			rest,
			procs: table(0),
			previousProcs: null,
			gpuProcesses,
			previous: [],
			now: Date.parse('2026-12-01T10:00:01Z'),
		});
		const [a, b] = first.kernels;
		expect(a?.pids).toEqual([200, 201, 202]);
		expect(a?.gpuMemoryMiB).toEqual({[gpu1]: 22_600, [gpu0]: 500});
		expect(a?.rssMiB).toBe(7);
		expect(a?.cpuPercent).toBeNull();
		expect(a?.since).toBe(Date.parse('2026-12-01T10:00:00Z'));
		expect(b?.gpuMemoryMiB).toEqual({});
		expect(first.foreignGpuPids).toEqual([999_999]);

		const second = joinKernels({
			rest,
			procs: table(2000, {200: 100, 201: 200, 202: 100}),
			previousProcs: table(0),
			gpuProcesses,
			previous: first.kernels,
			now: Date.parse('2026-12-01T10:00:03Z'),
		});
		// 400 ticks at 100 Hz over 2 s: 200 % (two cores' worth).
		expect(second.kernels[0]?.cpuPercent).toBe(200);
		expect(second.kernels[0]?.since).toBe(first.kernels[0]?.since);
	});

	test('a kernel whose process is not visible has no pids, no memory and no CPU', () => {
		const [a] = joinKernels({
			rest,
			procs: {at: 0, ticksPerSecond: 100, processes: []},
			previousProcs: null,
			gpuProcesses,
			previous: [],
			now: 0,
		}).kernels;
		expect(a?.pids).toEqual([]);
		expect(a?.rssMiB).toBeNull();
		expect(a?.gpuMemoryMiB).toEqual({});
	});
});

describe('notifications', () => {
	const kernel = (patch: Partial<KernelStatus>): KernelStatus => ({
		id: idA,
		name: 'python3',
		notebook: 'train.ipynb',
		state: 'idle',
		since: 0,
		lastActivity: null,
		connections: 1,
		pids: [200],
		gpuMemoryMiB: {},
		cpuPercent: null,
		rssMiB: null,
		lostPid: null,
		...patch,
	});

	test('a long cell that finished notifies with its duration; a short one does not', () => {
		const busy = kernel({state: 'busy', since: 1000});
		const notes = kernelNotifications([busy], [kernel({state: 'idle', since: 1000 + 125_000})], {
			notifyAfterMs: 60_000,
			now: 200_000,
		});
		expect(notes).toEqual([
			{
				kind: 'cell-done',
				title: 'Cell finished: train.ipynb',
				message: 'a cell in train.ipynb finished after 2 min 5 s',
				notebook: 'train.ipynb',
			},
		]);
		expect(
			kernelNotifications([busy], [kernel({state: 'idle', since: 5000})], {
				notifyAfterMs: 60_000,
				now: 5000,
			}),
		).toEqual([]);
	});

	test('a new kernel process is a death unless gpujup asked for the restart', () => {
		const before = [kernel({pids: [200, 201]})];
		const after = [kernel({pids: [400]})];
		expect(
			kernelNotifications(before, after, {notifyAfterMs: 1, now: 1}).map((n) => n.kind),
		).toEqual(['kernel-died']);
		expect(
			kernelNotifications(before, after, {
				notifyAfterMs: 1,
				now: 1,
				restartsAsked: new Set([idA]),
			}).map((n) => n.kind),
		).toEqual(['kernel-restarted']);
		expect(
			kernelNotifications(before, [kernel({state: 'dead'})], {notifyAfterMs: 1, now: 1})[0]
				?.message,
		).toBe('train.ipynb (python3) died (pid 200)');
	});

	test('a process that ended while listed is decided later: a new process is a death, leaving the list a shutdown', () => {
		const gone = [kernel({pids: [], lostPid: 200})];
		expect(kernelNotifications([kernel({pids: [200]})], gone, {notifyAfterMs: 1, now: 1})).toEqual(
			[],
		);
		expect(
			kernelNotifications(gone, [kernel({pids: [401]})], {notifyAfterMs: 1, now: 1})[0]?.message,
		).toBe('train.ipynb (python3) died (pid 200); Jupyter restarted it, its variables are gone');
		expect(kernelNotifications(gone, [], {notifyAfterMs: 1, now: 1})).toEqual([]);
	});
});

describe('the process table over exec', () => {
	test('stat lines whose command name holds spaces and parentheses parse; junk is skipped', () => {
		const table = parseProcDump(
			[
				'100',
				'4096',
				'---',
				'42 (we ird) (name)) S 1 42 42 0 -1 4194304 0 0 0 0 250 50 0 0 20 0 1 0 100 1000 256 0',
				'not a stat line',
				'---',
				`/proc/42/cmdline:kernel-${idB}.json`,
				'',
			].join('\n'),
			5,
		);
		expect(table.processes).toEqual([
			{pid: 42, ppid: 1, argv: [`kernel-${idB}.json`], cpuTicks: 300, rssKiB: 1024},
		]);
	});

	test('one stat line gives the fields the supervisor and the monitor read; zombies keep their state', () => {
		const line = '77 (a) b) Z 9 77 77 0 -1 4194304 0 0 0 0 7 3 0 0 20 0 1 0 123456 1000 64 0 0 0\n';
		expect(parseProcStat(line)).toEqual({
			pid: 77,
			state: 'Z',
			ppid: 9,
			cpuTicks: 10,
			rssPages: 64,
			startTicks: 123456,
		});
		expect(parseProcStat('77 (cut short) S 1 2 3')).toBeNull();
		expect(parseProcStat('')).toBeNull();
	});
});
