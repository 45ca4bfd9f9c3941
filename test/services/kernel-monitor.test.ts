/**
 * The kernel monitor against Debian's real Jupyter and real ipykernel kernels: notebooks named,
 * process trees found, GPU memory joined by pid, kernel control through the REST API, and the
 * notifications a long cell, a killed kernel and a restart give.
 */
import {afterAll, beforeAll, describe, expect, test} from 'vitest';
import type {KernelStatus, Notification} from '../../source/core/kernels.js';
import type {GpuProcess} from '../../source/core/types.js';
import {KernelMonitor} from '../../source/services/kernel-monitor.js';
import {
	executeInKernel,
	jupyterApi,
	openNotebook as openNotebookIn,
	startJupyter,
	type JupyterApi,
	type RunningJupyter,
} from '../helpers/jupyter.js';
import {freePort, tempDir, type TempDir} from '../helpers/ports.js';
import {waitFor} from '../helpers/wait-for.js';

const token = 'kernel-monitor-test-token';
const gpu1 = 'GPU-11111111-2222-3333-4444-555555555555';
let dir: TempDir;
let jupyter: RunningJupyter;
let port: number;
let monitor: KernelMonitor;
let gpuProcesses: GpuProcess[] = [];
let latest: readonly KernelStatus[] = [];
const notes: Notification[] = [];

const api: JupyterApi = async (method, route, body) =>
	jupyterApi(jupyter.url, token)(method, route, body);
const openNotebook = async (notebook: string) => openNotebookIn(api, dir.path, notebook);

const kernelOf = (notebook: string) => latest.find((k) => k.notebook === notebook);

beforeAll(async () => {
	dir = await tempDir('kernel-monitor');
	port = await freePort();
	jupyter = await startJupyter({port, token, dir: dir.path});
	monitor = new KernelMonitor({
		server: () => ({port, token}),
		gpuProcesses: () => gpuProcesses,
		intervalMs: 500,
		notifyAfterMs: 2000,
		onKernels(kernels) {
			latest = kernels;
		},
		onNotify(note) {
			notes.push(note);
		},
	});
	monitor.start();
});

afterAll(async () => {
	monitor?.dispose();
	await jupyter?.dispose();
	await dir?.dispose();
});

describe('kernel monitor (real Jupyter and kernels)', () => {
	let trainId: string;
	let evalId: string;

	test('names each notebook and finds the kernel process tree, with GPU memory joined by pid', async () => {
		trainId = await openNotebook('train/resnet.ipynb');
		evalId = await openNotebook('eval.ipynb');
		const pids = await executeInKernel(
			jupyter.url,
			token,
			trainId,
			"import os, subprocess\nchild = subprocess.Popen(['sleep', '300'])\nprint(os.getpid(), child.pid)",
		);
		const [kernelPid, childPid] = pids.trim().split(' ').map(Number);
		gpuProcesses = [
			{gpuUuid: gpu1, pid: kernelPid!, user: 'root', command: 'python3', usedMemoryMiB: 20_000},
			{gpuUuid: gpu1, pid: childPid!, user: 'root', command: 'sleep', usedMemoryMiB: 2_600},
		];
		const train = await waitFor(
			() => {
				const kernel = kernelOf('train/resnet.ipynb');
				return kernel?.gpuMemoryMiB[gpu1] === 22_600 ? kernel : undefined;
			},
			{
				message: 'train notebook holding 22.6 GiB',
			},
		);
		expect(train.id).toBe(trainId);
		expect(train.name).toBe('python3');
		expect(train.pids[0]).toBe(kernelPid);
		expect(train.pids).toContain(childPid);
		expect(train.rssMiB).toBeGreaterThan(10);
		expect(kernelOf('eval.ipynb')?.gpuMemoryMiB).toEqual({});
		// No notebook ran a cell there: idle once the kernel answered the monitor's own websocket
		// (notebook 6 says `starting` until a client talks to the kernel).
		await waitFor(() => kernelOf('eval.ipynb')?.state === 'idle', {message: 'eval idle'});
	});

	test('a running cell shows busy, and interrupt reaches it (KeyboardInterrupt)', async () => {
		const cell = executeInKernel(
			jupyter.url,
			token,
			trainId,
			'import time\ntime.sleep(600)',
			120_000,
		);
		const settled = cell.then(
			() => 'finished',
			(error: unknown) => String(error),
		);
		await waitFor(() => kernelOf('train/resnet.ipynb')?.state === 'busy', {message: 'train busy'});
		expect(await monitor.act(trainId, 'interrupt')).toBe('interrupted train/resnet.ipynb');
		expect(await settled).toMatch(/KeyboardInterrupt/);
		await waitFor(() => kernelOf('train/resnet.ipynb')?.state === 'idle', {
			message: 'train idle again',
		});
	});

	test('a cell longer than --notify-after gives cell-done with its notebook', async () => {
		await executeInKernel(jupyter.url, token, evalId, 'import time\ntime.sleep(3)');
		const done = await waitFor(
			() => notes.find((n) => n.kind === 'cell-done' && n.notebook === 'eval.ipynb'),
			{
				message: 'cell-done for eval.ipynb',
			},
		);
		expect(done.title).toBe('Cell finished: eval.ipynb');
		expect(done.message).toMatch(/^a cell in eval\.ipynb finished after [23] s$/);
	});

	test('kill -9 of a kernel process is a death; a restart through gpujup is a restart', async () => {
		const before = kernelOf('eval.ipynb')!.pids[0]!;
		process.kill(before, 'SIGKILL');
		const died = await waitFor(() => notes.find((n) => n.kind === 'kernel-died'), {
			message: 'kernel-died',
			timeoutMs: 60_000,
		});
		expect(died.notebook).toBe('eval.ipynb');
		expect(died.message).toContain(`pid ${before}`);
		await waitFor(
			() =>
				kernelOf('eval.ipynb')?.pids[0] !== undefined && kernelOf('eval.ipynb')?.state === 'idle',
			{timeoutMs: 60_000, message: 'eval back'},
		);

		expect(await monitor.act(evalId, 'restart')).toBe('restarted eval.ipynb');
		const restarted = await waitFor(() => notes.find((n) => n.kind === 'kernel-restarted'), {
			message: 'kernel-restarted',
			timeoutMs: 60_000,
		});
		expect(restarted.notebook).toBe('eval.ipynb');
		expect(notes.filter((n) => n.kind === 'kernel-died')).toHaveLength(1);
	});

	test('shut down removes the kernel and frees its row', async () => {
		expect(await monitor.act(trainId, 'shutdown')).toBe('shut down train/resnet.ipynb');
		await waitFor(() => kernelOf('train/resnet.ipynb') === undefined, {message: 'train gone'});
		await expect(monitor.act('no-such-kernel', 'interrupt')).rejects.toThrow(
			/no kernel no-such-kernel/,
		);
	});
});
