/**
 * Dashboard fixtures written for these tests (not captures): the UI.md sketch's laptop, a GPU
 * host, and GpuStatus with one or four GPUs.
 */
import {
	initialHop,
	initialState,
	reduce,
	type AppAction,
	type AppState,
	type Role,
} from '../../source/core/app-state.js';
import type {Segment} from '../../source/components/line.js';
import type {KernelStatus} from '../../source/core/kernels.js';
import {createStore, type Store} from '../../source/core/store.js';
import type {GpuInfo, GpuStatus, HopStatus, JupyterStatus} from '../../source/core/types.js';

/** 2024-05-06 14:10:00 UTC: every fixture time is relative to it. */
/** A line's text without its styles. */
export function segmentsText(segments: readonly Segment[]): string {
	return segments.map((s) => s.text).join('');
}

export const now = Date.UTC(2024, 4, 6, 14, 10, 0);
export const minute = 60_000;
export const hour = 60 * minute;

export function gpuInfo(index: number): GpuInfo {
	return {
		index,
		uuid: `GPU-${index}`,
		name: 'NVIDIA GeForce RTX 4080 SUPER',
		busId: `00000000:0${index + 1}:00.0`,
		mig: false,
		utilizationGpu: 78,
		memoryUsedMiB: 10_035,
		memoryTotalMiB: 16_376,
		temperatureC: 61,
		powerW: 212,
		powerLimitW: 320,
		fanPercent: 54,
	};
}

export function gpuStatus(count: number): GpuStatus {
	const gpus = Array.from({length: count}, (_, index) => gpuInfo(index));
	return {
		gpus,
		processes: gpus.flatMap((gpu, index) => [
			{
				gpuUuid: gpu.uuid,
				pid: 88_123 + index,
				user: 'alice',
				command: 'python train.py --lr 3e-4',
				usedMemoryMiB: 9114,
			},
			{
				gpuUuid: gpu.uuid,
				pid: 2211 + index,
				user: 'alice',
				command: 'ipykernel_launcher',
				usedMemoryMiB: 512,
			},
		]),
		error: null,
		driverVersion: '590.48',
		simulated: false,
	};
}

export const runningJupyter: JupyterStatus = {
	state: 'running',
	url: 'http://127.0.0.1:19507/',
	pid: 2113,
	kernels: 2,
	restarts: 0,
	startedAt: now - (3 * 24 + 4) * hour,
	lastActivity: new Date(now - 4000).toISOString(),
	origin: 'adopted',
	message: null,
};

export const readyRelay: HopStatus = {
	...initialHop('relay', 'relay.example.org:22'),
	state: 'ready',
	rttMs: 38,
	reconnects: 1,
	readySince: now - (2 * hour + 13 * minute),
	lastLoss: {kind: 'timeout', at: now - 41 * minute},
};

export const readyHost: HopStatus = {
	...initialHop('host', 'p507 (via :19506)'),
	state: 'ready',
	rttMs: 41,
	readySince: now - (2 * hour + 13 * minute),
};

export const readyReverse: HopStatus = {
	...initialHop('reverse', 'relay.example.org (listening :19506)'),
	state: 'ready',
	rttMs: 12,
	readySince: now - 5 * hour,
};

export const logLines = [
	'[I 14:02:11 ServerApp] Kernel started: 5b1e',
	'[I 14:02:13 ServerApp] Connecting to kernel 5b1e',
	'[W 14:05:40 ServerApp] 404 GET /api/kernels/x?token=abc123 (127.0.0.1)',
];

/** The sketch's laptop: all hops up, two forwards, Jupyter running, `gpus` GPUs. */
export function laptopState(
	options: {gpus?: number; role?: Role; hops?: HopStatus[]} = {},
): AppState {
	const role = options.role ?? 'connect';
	const hops = options.hops ?? (role === 'host' ? [readyReverse] : [readyRelay, readyHost]);
	let state = initialState({
		role,
		title: 'p507',
		subtitle: role === 'host' ? '' : 'via relay.example.org',
		configFile: '/home/alice/.config/gpujup/config.toml',
		hops,
		forwards:
			role === 'host'
				? []
				: [
						{
							local: '127.0.0.1:19507',
							remote: '127.0.0.1:19508',
							state: 'listening',
							connections: 3,
							label: 'jupyter',
						},
						{
							local: '127.0.0.1:6006',
							remote: '127.0.0.1:6006',
							state: 'listening',
							connections: 0,
							label: 'tensorboard',
						},
					],
	});
	const actions: AppAction[] = [
		{
			type: 'jupyter',
			jupyter: {...runningJupyter, origin: role === 'host' ? 'adopted' : 'runtime file'},
		},
		{type: 'gpu', gpu: gpuStatus(options.gpus ?? 1)},
		{
			type: 'host-stats',
			host: {cpuPercent: 23, memoryUsedMiB: 41 * 1024, memoryTotalMiB: 62 * 1024},
		},
		{type: 'log', lines: logLines},
		{type: 'source', source: role === 'host' ? null : 'agent'},
	];
	for (const action of actions) state = reduce(state, action);
	return state;
}

export function storeOf(state: AppState): Store<AppState, AppAction> {
	return createStore(reduce, state);
}

/** Poll the last frame until `predicate` holds; the frame it held for, or a failure that shows it. */
export async function frameWhere(
	lastFrame: () => string | undefined,
	predicate: (frame: string) => boolean,
	what: string,
	timeoutMs = 3000,
): Promise<string> {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		const frame = lastFrame() ?? '';
		if (predicate(frame)) return frame;
		if (Date.now() > deadline)
			throw new Error(`no frame ${what} within ${timeoutMs} ms; last:\n${frame}`);
		await new Promise((resolve) => setTimeout(resolve, 10));
	}
}

/** Raw key codes, as a terminal sends them. */
export const keys = {
	enter: '\r',
	escape: '\u001B',
	tab: '\t',
	shiftTab: '\u001B[Z',
	up: '\u001B[A',
	down: '\u001B[B',
	pageUp: '\u001B[5~',
	pageDown: '\u001B[6~',
	backspace: '\u007F',
	ctrlC: '\u0003',
} as const;

/** A notebook's kernel: train/resnet.ipynb, busy for 41 minutes, 22.1 GiB on GPU 1. */
export function kernelStatus(patch: Partial<KernelStatus> = {}): KernelStatus {
	return {
		id: '5b1e0000-0000-4000-8000-000000000001',
		name: 'python3',
		notebook: 'train/resnet.ipynb',
		state: 'busy',
		since: now - 41 * minute,
		lastActivity: null,
		connections: 1,
		pids: [2211],
		gpuMemoryMiB: {'GPU-1': 22_630},
		cpuPercent: 98,
		rssMiB: 6349,
		lostPid: null,
		...patch,
	};
}
