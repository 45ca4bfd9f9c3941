import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {tempDir, type TempDir} from '../helpers/ports.js';
import {startTmux, type Tmux} from '../helpers/tmux.js';
import {waitFor} from '../helpers/wait-for.js';
import {cli, runGpujup, spawnGpujup, type JsonLine} from './gpujup-process.js';

type GpuLine = JsonLine & {
	gpus: Array<{index: number; name: string; utilizationGpu: number | null}>;
};

/** `util ███   85%`: every GPU utilization percentage on a screen, in order. */
const utilizations = (screen: string): string[] =>
	[...screen.matchAll(/util\s[^%\n]*?(\d+)%/g)].map((m) => m[1]!);

/** `gpujup demo`: the whole chain in one process, no setup, the same dashboard a user gets. */
describe('gpujup demo', () => {
	let home: TempDir;
	let env: NodeJS.ProcessEnv;

	beforeAll(async () => {
		home = await tempDir('gpujup-demo-home-');
		env = {
			...process.env,
			HOME: home.path,
			XDG_CONFIG_HOME: path.join(home.path, '.config'),
			XDG_STATE_HOME: path.join(home.path, '.local', 'state'),
			XDG_DATA_HOME: path.join(home.path, '.local', 'share'),
			XDG_RUNTIME_DIR: path.join(home.path, 'run'),
		};
		delete env.NO_COLOR;
	});

	afterAll(async () => {
		await home?.dispose();
	});

	it('in tmux: hops ready, simulated GPUs whose utilization moves, q exits 0 and restores the terminal', async () => {
		let tmux: Tmux | undefined;
		try {
			tmux = await startTmux([process.execPath, cli, 'demo', '--local-port', '0'], {
				env,
				width: 160,
				height: 48,
			});
			const first = await tmux.waitForText('all hops up', 120_000);
			expect(first).toMatch(/relay: ready/);
			const withGpus = await tmux.waitForText(/\(simulated\)\s+util/, 60_000);
			expect(withGpus).toContain('simulated');
			const before = utilizations(withGpus);
			expect(before.length).toBeGreaterThan(0);
			// The simulated load moves: poll until the numbers on screen differ.
			const after = await waitFor(
				async () => {
					const now = utilizations(await tmux!.capture());
					return now.length > 0 && now.join(',') !== before.join(',') ? now : undefined;
				},
				{timeoutMs: 60_000, message: `GPU utilization to change from ${before.join(',')}`},
			);
			expect(after).not.toEqual(before);
			expect(await tmux.alternateScreen()).toBe(true);

			// Tab moves the focus to the GPU pane: the path line and the first GPU line stay drawn.
			await tmux.sendKeys('Tab');
			await tmux.waitForText(/┏ GPUs/, 10_000);
			const focused = (await tmux.capture()).split('\n');
			expect(focused[2]).toMatch(/^│ laptop ──● /);
			expect(focused.find((row) => row.startsWith('┏ GPUs'))).toBeTruthy();
			expect(focused[focused.findIndex((row) => row.startsWith('┏ GPUs')) + 1]).toMatch(
				/^┃ 0 .*util/,
			);

			await tmux.sendKeys('q');
			const code = await waitFor(async () => {
				const value = await tmux!.exitCode();
				return value === null ? undefined : {value};
			});
			expect(code.value).toBe(0);
			expect(await tmux.cursorVisible()).toBe(true);
			expect(await tmux.alternateScreen()).toBe(false);
		} finally {
			await tmux?.dispose();
		}
	}, 240_000);

	it('--no-tui: hop ready lines and gpu events whose values change', async () => {
		const demo = spawnGpujup(['demo', '--no-tui', '--local-port', '0'], env);
		try {
			await demo.waitForLine((l) => l.type === 'hop' && l.hop === 'relay' && l.state === 'ready', {
				timeoutMs: 120_000,
			});
			await demo.waitForLine((l) => l.type === 'hop' && l.hop === 'host' && l.state === 'ready', {
				timeoutMs: 120_000,
			});
			const first = (await demo.waitForLine((l) => l.type === 'gpu')) as GpuLine;
			expect(first.gpus.length).toBeGreaterThan(0);
			expect(first.gpus.every((gpu) => /simulated/i.test(gpu.name))).toBe(true);
			const utilization = (line: GpuLine) => line.gpus.map((gpu) => gpu.utilizationGpu).join(',');
			const changed = (await demo.waitForLine(
				(l) => l.type === 'gpu' && utilization(l as GpuLine) !== utilization(first),
				{timeoutMs: 60_000, from: demo.lines.indexOf(first) + 1},
			)) as GpuLine;
			expect(changed.gpus.map((gpu) => gpu.index)).toEqual(first.gpus.map((gpu) => gpu.index));
			expect(utilization(changed)).not.toBe(utilization(first));
			expect(await demo.stop()).toBe(0);
		} finally {
			await demo.stop();
		}
	}, 240_000);
	it('GPUJUP_DEMO_JUPYTER=stand-in: kernel events for the simulated notebooks; a bad value is refused', async () => {
		const demo = spawnGpujup(['demo', '--no-tui', '--local-port', '0'], {
			...env,
			GPUJUP_DEMO_JUPYTER: 'stand-in',
		});
		try {
			const train = await demo.waitForLine(
				(l) =>
					l.type === 'kernel' &&
					l['notebook'] === 'finetune/llama-7b-lora.ipynb' &&
					Object.values(l['gpuMemoryMiB'] as Record<string, number>).some((mib) => mib > 0),
				{timeoutMs: 120_000},
			);
			expect(train['state']).toBe('busy');
			await demo.waitForLine((l) => l.type === 'kernel' && l['notebook'] === 'scratch.ipynb');
			expect(await demo.stop()).toBe(0);
		} finally {
			await demo.stop();
		}

		const bad = await runGpujup(['demo', '--no-tui'], {...env, GPUJUP_DEMO_JUPYTER: 'maybe'});
		expect(bad.code).toBe(2);
		expect(bad.stderr).toContain('GPUJUP_DEMO_JUPYTER is "maybe": use auto, real or stand-in');
	}, 240_000);
});
