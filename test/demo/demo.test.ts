import {existsSync} from 'node:fs';
import http from 'node:http';
import {describe, expect, it} from 'vitest';
import {parseCli} from '../../source/config/resolve.js';
import type {Config} from '../../source/config/types.js';
import type {AppState} from '../../source/core/app-state.js';
import {startDemo, type RunningDemo} from '../../source/demo/start-demo.js';
import {tempDir, type TempDir} from '../helpers/ports.js';
import {waitFor} from '../helpers/wait-for.js';

async function demoConfig(home: TempDir): Promise<Config> {
	const result = parseCli(
		['demo', '--no-tui', '--local-port', '0'],
		{HOME: home.path, PATH: process.env['PATH']},
		{stdoutIsTty: false, home: home.path, cwd: home.path},
	);
	if (result.kind !== 'run') throw new Error(`parseCli gave ${result.kind}`);
	return result.config;
}

async function statusThroughForward(port: number, token: string): Promise<number> {
	return new Promise((resolve) => {
		const request = http.get(
			{
				host: '127.0.0.1',
				port,
				path: '/api/status',
				agent: false,
				headers: {authorization: `token ${token}`},
			},
			(response) => {
				response.resume();
				resolve(response.statusCode ?? 0);
			},
		);
		request.on('error', () => resolve(0));
	});
}

const state = (demo: RunningDemo): AppState => demo.store.getSnapshot();
const allReady = (demo: RunningDemo) => state(demo).hops.every((h) => h.state === 'ready');

/** Both hops ready, Jupyter running, and two GPU samples that differ, all within generous deadlines. */
async function expectLiveDashboard(demo: RunningDemo): Promise<void> {
	await waitFor(() => allReady(demo), {timeoutMs: 30_000, message: 'both hops ready'});
	expect(state(demo).hops.map((h) => h.hop)).toEqual(['relay', 'host']);
	await waitFor(() => state(demo).jupyter?.state === 'running', {
		timeoutMs: 30_000,
		message: 'Jupyter running as the client sees it',
	});
	const first = await waitFor(() => state(demo).gpu, {timeoutMs: 30_000, message: 'a GPU sample'});
	expect(first.simulated).toBe(true);
	expect(first.error).toBeNull();
	expect(first.gpus.map((g) => g.name)).toEqual([
		'NVIDIA GeForce RTX 4090 (simulated)',
		'NVIDIA A100-SXM4-80GB (simulated)',
	]);
	const values = (gpu: NonNullable<AppState['gpu']>) =>
		JSON.stringify(
			gpu.gpus.map((g) => [g.utilizationGpu, g.memoryUsedMiB, g.powerW, g.temperatureC]),
		);
	await waitFor(() => state(demo).gpu !== first && values(state(demo).gpu!) !== values(first), {
		timeoutMs: 30_000,
		message: 'GPU values that move',
	});
	const processes = await waitFor(
		() =>
			state(demo).gpu?.processes.every((p) => p.user !== null) ? state(demo).gpu?.processes : null,
		{timeoutMs: 30_000, message: 'GPU processes with their owners from ps'},
	);
	expect(processes.map((p) => p.command)).toContainEqual(expect.stringContaining('train.py'));
	const token = demo.handle.token();
	expect(token).not.toBeNull();
	expect(await statusThroughForward(token!.port, token!.token)).toBe(200);
}

describe('gpujup demo, in process', () => {
	it('shows ready hops, the labelled stand-in and moving simulated GPUs; r and j work', async () => {
		const home = await tempDir('demo-e2e');
		const demo = await startDemo({config: await demoConfig(home), jupyter: 'stand-in'});
		try {
			await expectLiveDashboard(demo);
			expect(state(demo).jupyter?.origin).toBe('stand-in');
			expect(state(demo).title).toBe('demo-gpu-host');
			expect(state(demo).logs.join('\n')).toContain('Jupyter stand-in');

			// r: both embedded servers drop every connection; the client comes back on its own path.
			demo.handle.reconnect();
			await waitFor(() => allReady(demo) && state(demo).hops.every((h) => h.reconnects >= 1), {
				timeoutMs: 30_000,
				message: 'both hops ready again after the drop',
			});

			// j: a new stand-in token; the client finds it again through the runtime file.
			// The token comes back once the reconnected hop has checked who listens on the port.
			const {token: before} = await waitFor(() => demo.handle.token(), {
				message: 'the token known again after the reconnect',
			});
			await demo.handle.restartJupyter();
			// While the restart is under way the token is unknown (null): wait for the new one itself.
			const after = await waitFor(
				() => {
					const known = demo.handle.token();
					return known && known.token !== before && state(demo).jupyter?.state === 'running'
						? known
						: null;
				},
				{
					timeoutMs: 30_000,
					message: 'the client knows the restarted Jupyter',
				},
			);
			expect(state(demo).jupyter?.restarts).toBe(1);
			expect(await statusThroughForward(after.port, after.token)).toBe(200);
		} finally {
			await demo.dispose();
			await home.dispose();
		}
		expect(demo.servers.connections()).toBe(0);
	});

	it('the stand-in’s notebooks reach the Notebooks pane through the client’s kernel monitor', async () => {
		const home = await tempDir('demo-notebooks');
		const demo = await startDemo({config: await demoConfig(home), jupyter: 'stand-in'});
		try {
			const gpuOf = (index: number) => state(demo).gpu?.gpus.find((g) => g.index === index)?.uuid;
			const kernels = await waitFor(
				() => {
					const list = state(demo).kernels;
					const train = list.find((k) => k.notebook === 'finetune/llama-7b-lora.ipynb');
					// GPU memory ramps up: wait for the monitor to have joined it, and a CPU % (two rounds).
					return list.length === 3 &&
						(train?.gpuMemoryMiB[gpuOf(1) ?? ''] ?? 0) > 0 &&
						train?.cpuPercent !== null
						? list
						: undefined;
				},
				{timeoutMs: 60_000, message: 'three notebooks, the training one with its GPU memory'},
			);
			const train = kernels.find((k) => k.notebook === 'finetune/llama-7b-lora.ipynb')!;
			expect(train.state).toBe('busy');
			// The kernel and its four DataLoader workers: the tree from the process table.
			expect(train.pids).toHaveLength(5);
			expect(train.cpuPercent).toBeGreaterThan(100);
			// Busy since its cell started, before the demo did (Jupyter's last_activity).
			expect(Date.now() - train.since).toBeGreaterThan(40 * 60_000);
			const evalNotebook = kernels.find((k) => k.notebook === 'eval/attention-maps.ipynb')!;
			expect(evalNotebook.state).toBe('idle');
			expect(Object.keys(evalNotebook.gpuMemoryMiB)).toEqual([gpuOf(0)]);
			expect(kernels.find((k) => k.notebook === 'scratch.ipynb')?.gpuMemoryMiB).toEqual({});
			// Every GPU process is in the demo host's process table: none is "in another namespace".
			expect(state(demo).gpu?.foreignPids ?? []).toEqual([]);

			// x on the training notebook: the kernel goes, and its process leaves the GPU.
			expect(await demo.handle.kernelAction!(train.id, 'shutdown')).toBe(
				'shut down finetune/llama-7b-lora.ipynb',
			);
			await waitFor(
				() =>
					state(demo).kernels.length === 2 &&
					!state(demo).gpu?.processes.some((p) => p.pid === train.pids[0]),
				{timeoutMs: 30_000, message: 'the training kernel and its GPU process gone'},
			);
		} finally {
			await demo.dispose();
			await home.dispose();
		}
	});

	it.runIf(existsSync('/usr/bin/jupyter'))(
		'runs the real Jupyter when one is installed',
		async () => {
			const home = await tempDir('demo-e2e-real');
			const demo = await startDemo({config: await demoConfig(home), jupyter: 'real'});
			const pid = demo.jupyter.pid();
			try {
				expect(demo.jupyter.kind()).toBe('real');
				await expectLiveDashboard(demo);
				await waitFor(() => state(demo).jupyter?.pid === pid, {
					message: 'the real pid from the runtime file',
				});
				expect(state(demo).jupyter?.origin).toBe('runtime file');
			} finally {
				await demo.dispose();
				await home.dispose();
			}
			expect(existsSync(`/proc/${pid}`)).toBe(false);
		},
	);
});
