import {describe, expect, test} from 'vitest';
import type {KernelStatus} from '../../source/core/kernels.js';
import {
	compactNotebookLine,
	kernelHint,
	notebookLines,
	NotebooksPane,
} from '../../source/components/notebooks-pane.js';
import {gpuInfo, hour, kernelStatus, minute, now, segmentsText} from './fixtures.js';
import {renderAt} from './render.js';

const gpus = [gpuInfo(0), gpuInfo(1)];

const kernel = (patch: Partial<KernelStatus>) =>
	kernelStatus({gpuMemoryMiB: {[gpus[1]!.uuid]: 22_630}, ...patch});

const kernels = [
	kernel({}),
	kernel({
		id: '5b1e0000-0000-4000-8000-000000000002',
		notebook: 'eda/explore.ipynb',
		state: 'idle',
		since: now - (3 * hour + 12 * minute),
		gpuMemoryMiB: {[gpus[0]!.uuid]: 1434},
		cpuPercent: 0,
		rssMiB: 2150,
	}),
	kernel({
		id: '5b1e0000-0000-4000-8000-000000000003',
		notebook: 'scratch.ipynb',
		name: 'torch',
		state: 'idle',
		since: now - 2 * minute,
		gpuMemoryMiB: {},
		cpuPercent: null,
		rssMiB: 310,
	}),
];

describe('notebooks pane', () => {
	test('a row per kernel: notebook, kernel, state with how long, GPU memory per GPU, CPU, RSS, and a hint', () => {
		const {lastFrame, unmount} = renderAt(
			<NotebooksPane
				kernels={kernels}
				gpus={gpus}
				hostName="p507"
				now={now}
				width={150}
				height={6}
				focused={false}
				selected={0}
			/>,
			150,
		);
		const frame = lastFrame()!;
		unmount();
		expect(frame).toContain('Notebooks  p507 · 3 kernels');
		const rows = frame.split('\n');
		expect(rows.find((r) => r.includes('train/resnet.ipynb'))).toMatch(
			/▸ train\/resnet\.ipynb\s+python3\s+busy 41m\s+1: 22\.1 GiB\s+98%\s+6\.2 GiB/,
		);
		expect(rows.find((r) => r.includes('eda/explore.ipynb'))).toMatch(
			/eda\/explore\.ipynb\s+python3\s+idle 3h12m\s+0: 1\.4 GiB\s+0%\s+2\.1 GiB\s+idle 3h12m, holds 1\.4 GiB on GPU 0 — x shuts it down/,
		);
		expect(rows.find((r) => r.includes('scratch.ipynb'))).toMatch(
			/scratch\.ipynb\s+torch\s+idle 2m\s+–\s+–\s+310 MiB/,
		);
		expect(frame.split('\n')).toHaveLength(6);
	});

	test('in a pane of 80 columns (the 160-column dashboard) the RSS is whole and the hint gets its own line', () => {
		const lines = notebookLines(kernels, gpus, now, 76, 0).map((line) =>
			line.map((segment) => segment.text).join(''),
		);
		for (const line of lines) expect(line.length).toBeLessThanOrEqual(76);
		expect(lines.find((l) => l.includes('train/resnet.ipynb'))).toMatch(/6\.2 GiB$/);
		const row = lines.findIndex((l) => l.includes('eda/explore.ipynb'));
		expect(lines[row]).toMatch(/2\.1 GiB$/);
		expect(lines[row + 1]).toBe('    idle 3h12m, holds 1.4 GiB on GPU 0 — x shuts it down');
	});

	test('no kernels says so; the compact line fits 80 columns', () => {
		const {lastFrame, unmount} = renderAt(
			<NotebooksPane
				kernels={[]}
				gpus={gpus}
				hostName="p507"
				now={now}
				width={80}
				height={4}
				focused={false}
				selected={0}
			/>,
			80,
		);
		expect(lastFrame()).toContain('no kernels running');
		unmount();
		const line = segmentsText(compactNotebookLine(kernels[0]!, gpus, now, 80));
		expect(line).toBe(' resnet.ipynb busy 41m  22.1 GiB (1: 22.1 GiB)');
	});

	test('hints only where a user would want one, and never for a busy kernel', () => {
		expect(kernelHint(kernels[0]!, gpus, now)).toBeNull();
		expect(kernelHint(kernels[2]!, gpus, now)).toBeNull();
		expect(kernelHint(kernel({state: 'dead'}), gpus, now)).toBe(
			'dead — K restarts it, x removes it',
		);
	});
});
