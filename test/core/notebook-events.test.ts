/**
 * The notebooks in the JSON contract: `kernel` events when a kernel changes and `gone` when it
 * leaves, `notify` events once each, `status --json`'s kernels, the guards that read them back on
 * the laptop, the `kernel-action` request, and the notifications of gpujup host's own services.
 */
import {describe, expect, test} from 'vitest';
import {initialHop, initialState, reduce, type AppState} from '../../source/core/app-state.js';
import {decodeEvent, decodeStatus} from '../../source/core/control-decode.js';
import {parseRequest} from '../../source/core/control-protocol.js';
import {diffEvents, kernelStatusOf, statusObject} from '../../source/core/events.js';
import {
	initialServiceMemory,
	serviceNotifications,
	tunnelBackAfterMs,
	type KernelStatus,
} from '../../source/core/kernels.js';

const since = Date.UTC(2026, 0, 1, 12, 0, 0);
const kernel = (patch: Partial<KernelStatus> = {}): KernelStatus => ({
	id: 'k-1',
	name: 'python3',
	notebook: 'train/resnet.ipynb',
	state: 'busy',
	since,
	lastActivity: null,
	connections: 1,
	pids: [100, 101],
	gpuMemoryMiB: {'GPU-1': 22_630},
	cpuPercent: 98,
	rssMiB: 6349,
	lostPid: 7,
	...patch,
});
const base = (): AppState =>
	initialState({role: 'host', title: 't', hops: [initialHop('reverse', 'relay')]});

describe('kernel and notify events', () => {
	test('a kernel event when one appears or changes, none when unchanged, gone when it leaves', () => {
		const one = reduce(base(), {type: 'kernels', kernels: [kernel()]});
		const [event] = diffEvents(base(), one);
		expect(event).toEqual({
			type: 'kernel',
			id: 'k-1',
			name: 'python3',
			notebook: 'train/resnet.ipynb',
			state: 'busy',
			since: '2026-01-01T12:00:00.000Z',
			lastActivity: null,
			connections: 1,
			pids: [100, 101],
			gpuMemoryMiB: {'GPU-1': 22_630},
			cpuPercent: 98,
			rssMiB: 6349,
		});
		const same = reduce(one, {type: 'kernels', kernels: [kernel()]});
		expect(diffEvents(one, same)).toEqual([]);
		const idle = reduce(same, {type: 'kernels', kernels: [kernel({state: 'idle'})]});
		expect(diffEvents(same, idle)).toMatchObject([{type: 'kernel', id: 'k-1', state: 'idle'}]);
		const none = reduce(idle, {type: 'kernels', kernels: []});
		expect(diffEvents(idle, none)).toEqual([{type: 'kernel', id: 'k-1', state: 'gone'}]);
	});

	test('a notify event once per notification, never replayed to a new reader', () => {
		const note = {
			kind: 'cell-done',
			title: 'Cell finished: a.ipynb',
			message: 'a cell in a.ipynb finished after 3 s',
			notebook: 'a.ipynb',
		} as const;
		const before = base();
		const after = reduce(reduce(before, {type: 'notify', notification: note, at: 1}), {
			type: 'notify',
			notification: {...note, kind: 'kernel-died'},
			at: 2,
		});
		expect(diffEvents(before, after).map((e) => e.type === 'notify' && e.kind)).toEqual([
			'cell-done',
			'kernel-died',
		]);
		expect(diffEvents(null, after).some((e) => e.type === 'notify')).toBe(false);
	});

	test('status --json carries the kernels; the laptop reads events and status back through the guards', () => {
		const state = reduce(base(), {type: 'kernels', kernels: [kernel()]});
		const status = statusObject(state);
		expect(status.kernels).toHaveLength(1);
		const decoded = decodeStatus(JSON.parse(JSON.stringify(status)));
		expect(decoded.ok && decoded.value.kernels[0]?.gpuMemoryMiB).toEqual({'GPU-1': 22_630});
		const [event] = diffEvents(null, state).filter((e) => e.type === 'kernel');
		const read = decodeEvent({...event, at: 'now'});
		expect(read.ok).toBe(true);
		if (read.ok && read.value.type === 'kernel' && read.value.state !== 'gone')
			expect(kernelStatusOf(read.value)).toEqual({...kernel(), lostPid: null});
		expect(decodeEvent({type: 'kernel', id: 'k-1', state: 'gone', at: 'now'}).ok).toBe(true);
		const hostile = decodeEvent({
			...event,
			notebook: 'x\u001B]52;c;AAAA\u0007.ipynb',
			at: 'now',
		});
		expect(
			hostile.ok && hostile.value.type === 'kernel' && 'notebook' in hostile.value
				? hostile.value.notebook
				: null,
		).not.toContain('\u001B');
		expect(decodeEvent({type: 'kernel', id: '../x', state: 'busy', at: 'now'}).ok).toBe(false);
		expect(
			decodeEvent({
				type: 'notify',
				kind: 'cell-done',
				title: 't',
				message: 'm',
				notebook: null,
				at: 'now',
			}).ok,
		).toBe(true);
		expect(
			decodeEvent({
				type: 'notify',
				kind: 'bogus',
				title: 't',
				message: 'm',
				notebook: null,
				at: 'now',
			}).ok,
		).toBe(false);
	});

	test('kernel-action names the kernel and one of three actions', () => {
		const ok = parseRequest(
			'{"v":1,"id":3,"op":"kernel-action","kernel":"k-1","action":"shutdown"}',
		);
		expect(ok).toEqual({
			ok: true,
			request: {v: 1, id: 3, op: 'kernel-action', kernel: 'k-1', action: 'shutdown'},
		});
		const bad = parseRequest('{"v":1,"id":4,"op":"kernel-action","kernel":"k-1","action":"kill"}');
		expect(bad.ok === false && bad.reply).toMatchObject({
			ok: false,
			error: /one of interrupt, restart, shutdown/,
		});
		const noId = parseRequest(
			'{"v":1,"id":5,"op":"kernel-action","kernel":"a/b","action":"interrupt"}',
		);
		expect(noId.ok).toBe(false);
	});

	test('subscribe: where a returning client stands, its notifications included', () => {
		expect(
			parseRequest(
				'{"v":1,"id":6,"op":"subscribe","logAfter":{"instance":"i1","seq":4,"notifySeq":2}}',
			),
		).toEqual({
			ok: true,
			request: {v: 1, id: 6, op: 'subscribe', logAfter: {instance: 'i1', seq: 4, notifySeq: 2}},
		});
		// An older client's position, and a notifySeq of another shape, leave it out.
		for (const notifySeq of ['', ',"notifySeq":"2"', ',"notifySeq":1.5'])
			expect(
				parseRequest(
					`{"v":1,"id":7,"op":"subscribe","logAfter":{"instance":"i1","seq":4${notifySeq}}}`,
				),
			).toEqual({
				ok: true,
				request: {v: 1, id: 7, op: 'subscribe', logAfter: {instance: 'i1', seq: 4}},
			});
	});
});

describe('GPU pids in another PID namespace', () => {
	const gpu = {
		gpus: [],
		processes: [
			{gpuUuid: 'GPU-1', pid: 100, user: null, command: 'python3', usedMemoryMiB: 20_000},
			{gpuUuid: 'GPU-1', pid: 4242, user: null, command: 'python', usedMemoryMiB: 9000},
		],
		error: null,
		driverVersion: null,
		simulated: false,
	};

	test("the kernel monitor's foreign pids join the GPU state, its event and status --json", () => {
		const sampled = reduce(base(), {type: 'gpu', gpu});
		expect(statusObject(sampled).gpu).not.toHaveProperty('foreignPids');
		const looked = reduce(sampled, {type: 'kernels', kernels: [kernel()], foreignGpuPids: [4242]});
		expect(looked.gpu?.foreignPids).toEqual([4242]);
		expect(diffEvents(sampled, looked)).toContainEqual(
			expect.objectContaining({type: 'gpu', foreignPids: [4242]}),
		);
		expect(statusObject(looked).gpu?.foreignPids).toEqual([4242]);
		// The next sample keeps them (the monitor looks every 2 s) while nvidia-smi lists the pid.
		const next = reduce(looked, {type: 'gpu', gpu: {...gpu}});
		expect(next.gpu?.foreignPids).toEqual([4242]);
		const ended = reduce(next, {type: 'gpu', gpu: {...gpu, processes: gpu.processes.slice(0, 1)}});
		expect(ended.gpu?.foreignPids).toEqual([]);
		// The laptop reads them back from the agent's event.
		const decoded = decodeEvent({
			type: 'gpu',
			at: new Date(0).toISOString(),
			...gpu,
			foreignPids: [4242],
		});
		expect(decoded).toMatchObject({ok: true, value: {type: 'gpu', foreignPids: [4242]}});
	});
});

describe("gpujup host's own services", () => {
	test('the tunnel back after more than a minute down notifies; the first connect and a short drop do not', () => {
		let memory = initialServiceMemory;
		const look = (reverse: string, now: number) => {
			const next = serviceNotifications(memory, {reverse, jupyter: null}, now);
			memory = next.memory;
			return next.notes.map((n) => n.kind);
		};

		expect(look('connecting', 0)).toEqual([]);
		expect(look('ready', 1000)).toEqual([]);
		expect(look('lost', 2000)).toEqual([]);
		expect(look('ready', 2000 + 5000)).toEqual([]);
		expect(look('lost', 10_000)).toEqual([]);
		expect(look('waiting', 30_000)).toEqual([]);
		expect(look('ready', 10_000 + tunnelBackAfterMs + 1)).toEqual(['tunnel-back']);
	});

	test('tunnel-back-after sets the threshold', () => {
		let memory = initialServiceMemory;
		const look = (reverse: string, now: number) => {
			const next = serviceNotifications(memory, {reverse, jupyter: null}, now, 4000);
			memory = next.memory;
			return next.notes.map((n) => n.message);
		};

		expect(look('ready', 0)).toEqual([]);
		expect(look('lost', 1000)).toEqual([]);
		expect(look('ready', 4999)).toEqual([]);
		expect(look('lost', 6000)).toEqual([]);
		expect(look('ready', 10_000)).toEqual(['the reverse tunnel is back after 4 s down']);
	});

	test('Jupyter running again after a crash (its restart count went up) notifies once', () => {
		let memory = initialServiceMemory;
		const look = (state: string, restarts: number) => {
			const next = serviceNotifications(memory, {reverse: null, jupyter: {state, restarts}}, 0);
			memory = next.memory;
			return next.notes.map((n) => n.kind);
		};

		expect(look('starting', 0)).toEqual([]);
		expect(look('running', 0)).toEqual([]);
		expect(look('restarting', 1)).toEqual([]);
		expect(look('running', 1)).toEqual(['jupyter-restarted']);
		expect(look('running', 1)).toEqual([]);
	});
});
