/**
 * Busy and idle from the kernel's own IOPub status messages, not from Jupyter's REST
 * `execution_state`. Jupyter records that field from every status message, and a request on the
 * kernel's control channel (jupyter_server's websocket nudge, JupyterLab's debugger, any client's
 * `kernel_info_request` there; jupyter_client#838) makes ipykernel publish busy → idle while a
 * cell is still running on the shell: REST then says idle mid-cell. Real Jupyter, real ipykernel.
 */
import {randomUUID} from 'node:crypto';
import {existsSync} from 'node:fs';
import path from 'node:path';
import WebSocket from 'ws';
import {afterAll, afterEach, beforeAll, describe, expect, test} from 'vitest';
import type {KernelStatus, Notification} from '../../source/core/kernels.js';
import {KernelMonitor} from '../../source/services/kernel-monitor.js';
import {
	executeInKernel,
	jupyterApi,
	openNotebook,
	startJupyter,
	type JupyterApi,
	type RunningJupyter,
} from '../helpers/jupyter.js';
import {freePort, tempDir, type TempDir} from '../helpers/ports.js';
import {waitFor} from '../helpers/wait-for.js';

const token = 'kernel-monitor-channels-token';
let dir: TempDir;
let jupyter: RunningJupyter;
let port: number;
let api: JupyterApi;
const monitors: KernelMonitor[] = [];
const tabs: WebSocket[] = [];

type Sample = {readonly at: number; readonly kernel: KernelStatus | undefined};

/** A monitor that records every round it publishes and every notification, with the time. */
function watch(kernelId: string) {
	const samples: Sample[] = [];
	const notes: Array<Notification & {readonly at: number}> = [];
	const monitor = new KernelMonitor({
		server: () => ({port, token}),
		gpuProcesses: () => [],
		intervalMs: 300,
		notifyAfterMs: 2000,
		onKernels(kernels) {
			samples.push({at: Date.now(), kernel: kernels.find((k) => k.id === kernelId)});
		},
		onNotify(note) {
			notes.push({...note, at: Date.now()});
		},
	});
	monitors.push(monitor);
	monitor.start();
	const latest = () => samples.at(-1)?.kernel;
	return {monitor, samples, notes, latest};
}

const message = (msgType: string, channel: string) => ({
	header: {
		msg_id: randomUUID(),
		username: 'second-tab',
		session: randomUUID(),
		msg_type: msgType,
		version: '5.3',
		date: new Date().toISOString(),
	},
	parent_header: {},
	metadata: {},
	content: {},
	channel,
	buffers: [],
});

/**
 * A second browser tab on the kernel: its own websocket, a `kernel_info_request` on the shell
 * (as JupyterLab sends on connect; queued behind the running cell) and one on the control channel
 * (as jupyter_server's nudge and JupyterLab's debugger do; answered at once, with busy → idle on
 * IOPub). Resolves once the control reply is back, so Jupyter has seen that idle.
 */
async function openSecondTab(kernelId: string): Promise<WebSocket> {
	const url = new URL(`api/kernels/${kernelId}/channels`, jupyter.url);
	url.protocol = 'ws:';
	url.searchParams.set('session_id', randomUUID());
	const ws = new WebSocket(url, {headers: {authorization: `token ${token}`}});
	tabs.push(ws);
	const control = message('kernel_info_request', 'control');
	await new Promise<void>((resolve, reject) => {
		ws.on('error', reject);
		ws.on('open', () => {
			ws.send(JSON.stringify(message('kernel_info_request', 'shell')));
			ws.send(JSON.stringify(control));
		});
		ws.on('message', (data) => {
			const reply = JSON.parse(String(data)) as {
				channel?: string;
				parent_header?: {msg_id?: string};
			};
			if (reply.channel === 'control' && reply.parent_header?.msg_id === control.header.msg_id)
				resolve();
		});
	});
	return ws;
}

const restState = async (kernelId: string) =>
	((await api('GET', `api/kernels/${kernelId}`)) as {execution_state: string}).execution_state;

/** A cell of `seconds` that prints the kernel's clock (epoch ms) as its last act. */
const sleepCell = (seconds: number) =>
	`import time\ntime.sleep(${seconds})\nprint(int(time.time() * 1000))`;

beforeAll(async () => {
	dir = await tempDir('kernel-monitor-channels');
	port = await freePort();
	jupyter = await startJupyter({port, token, dir: dir.path});
	api = jupyterApi(jupyter.url, token);
});

afterEach(() => {
	for (const monitor of monitors.splice(0)) monitor.dispose();
});

afterAll(async () => {
	for (const ws of tabs) ws.terminate();
	await jupyter?.dispose();
	await dir?.dispose();
});

describe('kernel monitor: busy/idle from IOPub (real Jupyter and ipykernel)', () => {
	test('a second tab mid-cell leaves the kernel busy; the cell end gives one cell-done with its duration', async () => {
		const id = await openNotebook(api, dir.path, 'train.ipynb');
		const {samples, notes, latest} = watch(id);
		await waitFor(() => latest(), {message: 'the monitor sees the kernel'});

		const started = Date.now();
		const cell = executeInKernel(jupyter.url, token, id, sleepCell(12), 120_000);
		await waitFor(() => latest()?.state === 'busy', {message: 'busy once the cell runs'});

		const tab = await openSecondTab(id);
		// What Jupyter itself says now: the control request's idle has overwritten the cell's busy
		// (or, its own IOPub watcher late on a loaded machine, still the kernel's first `starting`).
		expect(await restState(id)).not.toBe('busy');
		const tabOpen = Date.now();
		// A few rounds after the tab: still busy.
		await waitFor(() => samples.filter((s) => s.at > tabOpen + 100).length >= 3, {
			message: 'three rounds after the second tab',
		});
		expect(latest()?.state).toBe('busy');
		// The tab and the cell's own websocket; the monitor's own connection is not the user's.
		expect(latest()?.connections).toBe(2);

		const ended = Number((await cell).trim());
		expect(ended).toBeGreaterThan(started);
		const done = await waitFor(
			() => notes.find((n) => n.kind === 'cell-done' && n.notebook === 'train.ipynb'),
			{message: 'cell-done for train.ipynb'},
		);
		const idleAt = samples.find((s) => s.at > ended && s.kernel?.state === 'idle')!.at;
		// Two rounds more, so a late second notification would be seen.
		await waitFor(() => samples.filter((s) => s.at > idleAt).length >= 2, {
			message: 'two rounds after idle',
		});

		const whileRunning = samples.filter((s) => s.at > tabOpen && s.at < ended);
		expect(whileRunning.length).toBeGreaterThan(3);
		expect(whileRunning.map((s) => s.kernel?.state)).toEqual(whileRunning.map(() => 'busy'));
		expect(notes.filter((n) => n.kind === 'cell-done')).toEqual([done]);
		expect(done.at).toBeGreaterThan(ended);
		expect(done.message).toMatch(/^a cell in train\.ipynb finished after 1[23] s$/);
		// The cell's websocket has gone; the tab stays.
		expect(latest()?.connections).toBe(1);
		tab.terminate();
	});

	test("a monitor's own websocket does not reset how long a kernel has been idle", async () => {
		const id = await openNotebook(api, dir.path, 'idle.ipynb');
		await executeInKernel(jupyter.url, token, id, 'x = 1');
		const {samples, latest} = watch(id);
		// The first round reads REST before it opens its websocket: the idle time Jupyter knew.
		const first = await waitFor(() => samples.find((s) => s.kernel)?.kernel, {
			message: 'the first round',
		});
		expect(first.state).toBe('idle');
		const known = Date.parse(first.lastActivity!);
		expect(first.since).toBe(known);
		// Its websocket open (Jupyter counts it), Jupyter's last_activity moves with the nudge and
		// the probe; two rounds later the idle time has not moved with it.
		await waitFor(
			async () =>
				((await api('GET', `api/kernels/${id}`)) as {connections: number}).connections >= 1,
			{message: "the monitor's websocket"},
		);
		const connected = Date.now();
		await waitFor(() => samples.filter((s) => s.at > connected).length >= 2, {
			message: 'two rounds on',
		});
		expect(latest()?.state).toBe('idle');
		expect(latest()?.since).toBe(known);
		expect(known).toBeLessThan(connected);
	});

	test('a monitor that starts mid-cell, while Jupyter no longer says busy, finds the kernel busy', async () => {
		const id = await openNotebook(api, dir.path, 'late.ipynb');
		// The cell says when it runs (REST may show its busy only for a moment: Jupyter's nudge of
		// the cell's own websocket can still be retrying on the control channel).
		const running = path.join(dir.path, 'late-running');
		const cell = executeInKernel(
			jupyter.url,
			token,
			id,
			`open(${JSON.stringify(running)}, 'w').close()\n${sleepCell(8)}`,
			120_000,
		);
		await waitFor(() => existsSync(running), {message: 'the cell running'});
		await openSecondTab(id);
		expect(await restState(id)).not.toBe('busy');

		const {latest} = watch(id);
		await waitFor(() => latest()?.state === 'busy', {message: 'busy though REST does not say so'});
		const ended = Number((await cell).trim());
		const idle = await waitFor(() => (latest()?.state === 'idle' ? latest() : undefined), {
			message: 'idle after the cell',
		});
		expect(idle.since).toBeGreaterThanOrEqual(ended);
	});
});
