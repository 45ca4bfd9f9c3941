/**
 * GPU pane frames, from GpuStatus built out of the nvidia-smi samples (the real captures in
 * ../shared/nvidia-smi-samples, else the project's fixtures): each set has its own table of frames.
 * vitest sets FORCE_COLOR=0; this file turns colour support on before Ink (and its chalk) load, so
 * the `color` prop alone decides, and compares frames with the escapes stripped.
 */
import type * as InkTesting from 'ink-testing-library';
import {afterEach, beforeAll, describe, expect, test} from 'vitest';
import type * as Pane from '../../source/components/gpu-pane.js';
import type {GpuStatus, HostStats} from '../../source/core/types.js';
import {expectedHost} from '../helpers/fake-nvidia-smi-expect.js';
import {samples} from '../helpers/nvidia-smi-samples.js';

// Type-only imports are erased: nothing of Ink loads before FORCE_COLOR is set below.
let ink: typeof InkTesting;
let pane: typeof Pane;

beforeAll(async () => {
	process.env['FORCE_COLOR'] = '3';
	ink = await import('ink-testing-library');
	pane = await import('../../source/components/gpu-pane.js');
});

afterEach(() => {
	ink.cleanup();
});

// eslint-disable-next-line no-control-regex
const stripAnsi = (text: string) => text.replaceAll(/\u001B\[[0-9;]*m/g, '');

const captureFiles = samples.captures;
const [dataCentre, mig, desktop, windows] = captureFiles;
const users = ['alice', 'bob'];

/** A GpuStatus from captures in their `load` state; users as ps would give them. */
function status(files: readonly string[], state: 'idle' | 'load' = 'load'): GpuStatus {
	const host = expectedHost(files, state);
	return {
		gpus: host.gpus,
		processes: host.processes.map((p, i) => ({...p, user: users[i % 2]!})),
		error: null,
		driverVersion: host.driverVersion,
		simulated: false,
	};
}

const noDriver: GpuStatus = {
	gpus: [],
	processes: [],
	driverVersion: null,
	simulated: false,
	error: {
		kind: 'no-driver',
		message:
			"NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.",
	},
};

const hostStats: HostStats = {cpuPercent: 23, memoryUsedMiB: 41 * 1024, memoryTotalMiB: 62 * 1024};
const ramp = [0, 10, 30, 50, 70, 90, 100, 80, 60, 40, 20, 100];

function historyFor(gpu: GpuStatus | null): Record<string, number[]> {
	// As the store keeps it: no samples for a GPU whose utilization is unknown (MIG).
	return Object.fromEntries(
		(gpu?.gpus ?? []).filter((g) => g.utilizationGpu !== null).map((g) => [g.uuid, ramp]),
	);
}

type Options = Partial<Pane.GpuPaneProps> & {readonly width: number; readonly height: number};

function draw(gpu: GpuStatus | null, options: Options): string {
	const props: Pane.GpuPaneProps = {
		gpu,
		history: historyFor(gpu),
		host: hostStats,
		compact: false,
		focused: false,
		hostLabel: 'p507',
		color: false,
		...options,
	};
	const instance = ink.render(<pane.GpuPane {...props} />);
	// ink-testing-library says 100 columns; lay the root out at the pane's width.
	Object.defineProperty(instance.stdout, 'columns', {get: () => props.width, configurable: true});
	instance.stdout.emit('resize');
	instance.rerender(<pane.GpuPane {...props} />);
	return instance.lastFrame() ?? '';
}

const lines = (frame: string) => stripAnsi(frame).split('\n');

/** The frames each sample set must draw, at the sizes the tests below use. */
const frames = {
	shared: {
		one: [
			'┌ GPUs  p507 · driver 590.48.01 · cpu 23% · mem 41/62 GiB ─┐',
			'│ 0 H100 80GB HBM3  util █████████████ 100% ▁▂▃▅▆▇█▇▅▄▂█   │',
			'│                   mem  ███▏          19.4/79.6 GiB 59°C  │',
			'│                   pwr  632/700 W  fan –                  │',
			'│ PID    USER   GPU MEM  COMMAND                           │',
			'│ 11345  alice  15.3 GiB ./gpu_burn                        │',
			'│ 11327  alice  2.5 GiB  /root/tools/memhog                │',
			'│ 11328  bob    1.5 GiB  /root/tools/memhog                │',
			'└──────────────────────────────────────────────────────────┘',
		],
		four: [
			'┌ GPUs  p507 · driver 590.48.01 · cpu 23% · mem 41/62 GiB ─────────────────────────────────────────┐',
			'│ 0 H100 80GB HBM3  util ████████████████████ 100% ▁▂▃▅▆▇█▇▅▄▂█                                    │',
			'│                   mem  ████▉                19.4/79.6 GiB 59°C                                   │',
			'│                   pwr  632/700 W  fan –                                                          │',
			'│ 1 H100 80GB HBM3  util –                     MIG                                                 │',
			'│                   mem  ██▊                  10.9/79.6 GiB 53°C                                   │',
			'│                   pwr  434/700 W  fan –                                                          │',
			'│ 2 RTX 4080 SUPER  util █▍                     7% ▁▂▃▅▆▇█▇▅▄▂█                                    │',
			'│                   mem  █▊                   1.4/16.0 GiB 46°C                                    │',
			'│                   pwr  84/320 W  fan 0%                                                          │',
			'│ 3 RTX 2080 SUPER  util █▍                     7% ▁▂▃▅▆▇█▇▅▄▂█                                    │',
			'│                   mem  ███▍                 1.3/8.0 GiB 44°C                                     │',
			'│                   pwr  98/250 W  fan 38%                                                         │',
			'│ GPU PID    USER   GPU MEM  COMMAND                                                               │',
			'│ 0   11345  alice  15.3 GiB ./gpu_burn                                                            │',
			'│ 1   21198  bob    7.3 GiB  ./gpu_burn                                                            │',
			'│ 0   11327  alice  2.5 GiB  /root/tools/memhog                                                    │',
			'│ 1   21180  bob    2.2 GiB  /root/tools/memhog                                                    │',
			'│ … 26 more                                                                                        │',
			'└──────────────────────────────────────────────────────────────────────────────────────────────────┘',
		],
		mig: [
			'┌ GPUs  p507 · driver 590.48.01 · cpu 23% · mem 41/62 GiB ─┐',
			'│ 0 H100 80GB HBM3  util –              MIG                │',
			'│                   mem  █▊            10.9/79.6 GiB 53°C  │',
			'│                   pwr  434/700 W  fan –                  │',
			'│ … 3 processes                                            │',
			'└──────────────────────────────────────────────────────────┘',
		],
		migCompact: [' GPU0 H100 80GB HB   MIG –          10.9/79.6G 53°C 434W'],
		compact: [
			' GPU0 H100 80GB HB  100% █████████  19.4/79.6G 59°C 632W  ▁▂▃▅▆▇█▇▅▄▂█',
			' GPU1 H100 80GB HB   MIG –          10.9/79.6G 53°C 434W',
			' GPU2 RTX 4080 S      7% ▋           1.4/16.0G 46°C  84W  ▁▂▃▅▆▇█▇▅▄▂█',
			' GPU3 RTX 2080 S      7% ▋            1.3/8.0G 44°C  98W  ▁▂▃▅▆▇█▇▅▄▂█',
		],
		few: [' GPU0 RTX 4080 S    7% ▋           1.4/16.0G 46°C  84W  ▁▂▃▅▆▇█▇▅▄▂█', ' … 2 more GPUs'],
		short: [
			'┌ GPUs  p507 · cpu 23% · mem 41/62 GiB ────────────────────┐',
			'│ 0 Tesla P100-PCI  util                 0% ▁▂▃▅▆▇█▇▅▄▂█   │',
			'│                   mem  –             0.0/– GiB 37°C      │',
			'│                   pwr  28/– W  fan –                     │',
			'└──────────────────────────────────────────────────────────┘',
		],
		simHeader: '┌ GPUs  p507 · simulated · driver 595.71.05 ───────────────┐',
		simCompact: [' GPU0 RTX 4080 S    7% ▋           1.4/16.0G 46°C  84W  ▁▂▃▅▆▇█▇▅▄▂█  simulated'],
		colour: {hot: '\u001B[31m100%', cool: '\u001B[32m  7%'},
	},
	fixtures: {
		one: [
			'┌ GPUs  p507 · driver 550.90.07 · cpu 23% · mem 41/62 GiB ─┐',
			'│ 0 L40S  util █████████████████▌  97% ▁▂▃▅▆▇█▇▅▄▂█        │',
			'│         mem  ████████████       30.0/45.0 GiB 66°C       │',
			'│         pwr  341/350 W  fan –                            │',
			'│ PID    USER   GPU MEM  COMMAND                           │',
			'│ 40211  alice  24.0 GiB python3                           │',
			'│ 40388  bob    4.0 GiB  /usr/bin/python3                  │',
			'│ 40390  alice  2.0 GiB  ./nbody                           │',
			'└──────────────────────────────────────────────────────────┘',
		],
		four: [
			'┌ GPUs  p507 · driver 550.90.07 · cpu 23% · mem 41/62 GiB ─────────────────────────────────────────┐',
			'│ 0 L40S            util ███████████████████▍  97% ▁▂▃▅▆▇█▇▅▄▂█                                    │',
			'│                   mem  █████████████▍       30.0/45.0 GiB 66°C                                   │',
			'│                   pwr  341/350 W  fan –                                                          │',
			'│ 1 A100-SXM4-80GB  util –                     MIG                                                 │',
			'│                   mem  █████                19.8/80.0 GiB 47°C                                   │',
			'│                   pwr  188/400 W  fan –                                                          │',
			'│ 2 RTX 3090        util █▊                     9% ▁▂▃▅▆▇█▇▅▄▂█                                    │',
			'│                   mem  █▍                   1.6/24.0 GiB 45°C                                    │',
			'│                   pwr  113/350 W  fan 0%                                                         │',
			'│ 3 RTX A4000       util ████████████▊         64% ▁▂▃▅▆▇█▇▅▄▂█                                    │',
			'│                   mem  ████████▎            6.6/16.0 GiB 71°C                                    │',
			'│                   pwr  131/140 W  fan 46%                                                        │',
			'│ GPU PID    USER   GPU MEM  COMMAND                                                               │',
			'│ 0   40211  alice  24.0 GiB python3                                                               │',
			'│ 1   51007  bob    10.0 GiB python3                                                               │',
			'│ 1   51122  alice  9.8 GiB  python3                                                               │',
			'│ 0   40388  bob    4.0 GiB  /usr/bin/python3                                                      │',
			'│ … 9 more                                                                                         │',
			'└──────────────────────────────────────────────────────────────────────────────────────────────────┘',
		],
		mig: [
			'┌ GPUs  p507 · driver 550.90.07 · cpu 23% · mem 41/62 GiB ─┐',
			'│ 0 A100-SXM4-80GB  util –              MIG                │',
			'│                   mem  ███▎          19.8/80.0 GiB 47°C  │',
			'│                   pwr  188/400 W  fan –                  │',
			'│ … 2 processes                                            │',
			'└──────────────────────────────────────────────────────────┘',
		],
		migCompact: [' GPU0 A100-SXM4-80   MIG –          19.8/80.0G 47°C 188W'],
		compact: [
			' GPU0 L40S           97% ████████▊  30.0/45.0G 66°C 341W  ▁▂▃▅▆▇█▇▅▄▂█',
			' GPU1 A100-SXM4-80   MIG –          19.8/80.0G 47°C 188W',
			' GPU2 RTX 3090        9% ▊           1.6/24.0G 45°C 113W  ▁▂▃▅▆▇█▇▅▄▂█',
			' GPU3 RTX A4000      64% █████▊      6.6/16.0G 71°C 131W  ▁▂▃▅▆▇█▇▅▄▂█',
		],
		few: [' GPU0 RTX 3090    9% ▊           1.6/24.0G 45°C 113W  ▁▂▃▅▆▇█▇▅▄▂█', ' … 2 more GPUs'],
		short: [
			'┌ GPUs  p507 · cpu 23% · mem 41/62 GiB ────────────────────┐',
			'│ 0 Tesla V100-PCI  util ▍               3% ▁▂▃▅▆▇█▇▅▄▂█   │',
			'│                   mem  –             0.3/– GiB 41°C      │',
			'│                   pwr  39/– W  fan –                     │',
			'└──────────────────────────────────────────────────────────┘',
		],
		simHeader: '┌ GPUs  p507 · simulated · driver 560.35.03 ───────────────┐',
		simCompact: [' GPU0 RTX 3090    9% ▊           1.6/24.0G 45°C 113W  ▁▂▃▅▆▇█▇▅▄▂█  simulated'],
		colour: {hot: '\u001B[31m 97%', cool: '\u001B[32m  9%'},
	},
}[samples.kind];

describe('GpuPane frames', () => {
	test('one GPU: bars, sparkline, memory, temperature, power, fan; processes by memory', () => {
		expect(lines(draw(status([dataCentre]), {width: 60, height: 9}))).toEqual(frames.one);
	});

	test('four GPUs: a block each, the processes of all of them with their GPU, the rest counted', () => {
		expect(lines(draw(status(captureFiles), {width: 100, height: 20}))).toEqual(frames.four);
	});

	test('MIG: shown as MIG, never as 0 %', () => {
		const frame = lines(draw(status([mig]), {width: 60, height: 6}));
		expect(frame).toEqual(frames.mig);
		expect(frame.join('\n')).not.toMatch(/\b0%/);
		const compact = lines(draw(status([mig]), {width: 80, height: 1, compact: true}));
		expect(compact).toEqual(frames.migCompact);
	});

	test('no driver: nvidia-smi’s message and the likely fix; nothing else breaks', () => {
		expect(lines(draw(noDriver, {width: 60, height: 8}))).toEqual([
			'┌ GPUs  p507 · cpu 23% · mem 41/62 GiB ────────────────────┐',
			'│ GPU: no working NVIDIA driver                            │',
			"│ NVIDIA-SMI has failed because it couldn't communicate    │",
			'│ with the NVIDIA driver. Make sure that the latest NVIDI… │',
			'│ fix: install or load the NVIDIA driver (check `lsmod |   │',
			'│ grep nvidia` and `dmesg`); after a kernel update,        │',
			'│ rebuild it (dkms) and reboot                             │',
			'└──────────────────────────────────────────────────────────┘',
		]);
		expect(lines(draw(noDriver, {width: 80, height: 2, compact: true}))).toEqual([
			" GPU  no working NVIDIA driver: NVIDIA-SMI has failed because it couldn't commun",
			' fix: install or load the NVIDIA driver (check `lsmod | grep nvidia` and `dmesg`',
		]);
	});

	test('80 columns: one line per GPU, like the 80×24 sketch', () => {
		expect(lines(draw(status(captureFiles), {width: 80, height: 4, compact: true}))).toEqual(
			frames.compact,
		);
		// Fewer rows than GPUs: the rest is counted, not dropped silently.
		expect(
			lines(draw(status([desktop, windows, dataCentre]), {width: 80, height: 2, compact: true})),
		).toEqual(frames.few);
	});

	test('unknown values are –, never 0 (the short CSV has no limit, fan or total memory)', () => {
		const frame = lines(draw(status([samples.shortCsv], 'idle'), {width: 60, height: 5}));
		expect(frame).toEqual(frames.short);
	});

	test('waiting, no GPUs, simulated', () => {
		expect(lines(draw(null, {width: 40, height: 3}))).toEqual([
			'┌ GPUs  p507 · cpu 23% · mem 41/62 G… ─┐',
			'│ waiting for nvidia-smi…              │',
			'└──────────────────────────────────────┘',
		]);
		const simulated = {...status([desktop]), simulated: true, processes: []};
		expect(lines(draw(simulated, {width: 60, height: 5, host: null}))[0]).toBe(frames.simHeader);
		expect(lines(draw(simulated, {width: 80, height: 1, compact: true}))).toEqual(
			frames.simCompact,
		);
	});

	test('never wider than width, never taller than height', () => {
		const fixtures: Array<GpuStatus | null> = [
			null,
			noDriver,
			status([dataCentre]),
			status(captureFiles),
			status([mig]),
			status([samples.shortCsv], 'idle'),
		];
		for (const gpu of fixtures) {
			for (const compact of [false, true]) {
				for (const width of [20, 33, 47, 60, 80, 121, 160]) {
					for (const height of compact ? [1, 2, 3, 5] : [3, 4, 5, 7, 10, 17, 30]) {
						const frame = lines(draw(gpu, {width, height, compact}));
						const where = `${width}×${height} ${compact ? 'compact' : 'wide'} ${gpu?.gpus.length ?? 'null'}`;
						expect(frame.length, where).toBeLessThanOrEqual(height);
						for (const line of frame) expect([...line].length, where).toBeLessThanOrEqual(width);
					}
				}
			}
		}
	});
});

describe('colour', () => {
	test('graded by load: the busy GPU red, the idle one green; color off: the same text, no escape', () => {
		const coloured = draw(status([dataCentre, desktop]), {
			width: 80,
			height: 2,
			compact: true,
			color: true,
		});
		const plain = draw(status([dataCentre, desktop]), {
			width: 80,
			height: 2,
			compact: true,
			color: false,
		});
		expect(coloured).toContain(frames.colour.hot);
		expect(coloured).toContain(frames.colour.cool);
		expect(plain).not.toContain('\u001B');
		expect(stripAnsi(coloured)).toBe(plain);
	});
});

describe('helpers', () => {
	test('bar: eighths, exact width, unknown as –', () => {
		expect(pane.bar(50, 4)).toBe('██  ');
		expect(pane.bar(78, 9)).toBe('███████  ');
		expect(pane.bar(100, 3)).toBe('███');
		expect(pane.bar(1, 10)).toBe('▏         ');
		expect(pane.bar(null, 5)).toBe('–    ');
	});

	test('sparkline: the last samples, oldest first', () => {
		expect(pane.sparkline([0, 50, 100], 5)).toBe('▁▅█  ');
		expect(pane.sparkline([0, 50, 100], 2)).toBe('▅█');
	});

	test('shortGpuName', () => {
		expect(pane.shortGpuName('NVIDIA GeForce RTX 4080 SUPER')).toBe('RTX 4080 SUPER');
		expect(pane.shortGpuName('NVIDIA GeForce RTX 4080 SUPER', true)).toBe('RTX 4080 S');
		expect(pane.shortGpuName('NVIDIA GeForce RTX 3060 Laptop GPU', true)).toBe('RTX 3060 Laptop');
		expect(pane.shortGpuName('Tesla P100-PCIE-16GB')).toBe('Tesla P100-PCIE-16GB');
	});
});

describe('GPU processes in another PID namespace', () => {
	test('a line says how many are not matched to notebooks, instead of a guess; none, no line', () => {
		const gpu = status([desktop]);
		const [first] = gpu.processes;
		const plain = pane.wideLines(gpu, {}, 90, 20).map((line) => line.map((s) => s.text).join(''));
		expect(plain.join('\n')).not.toContain('PID namespace');
		const foreign = {...gpu, foreignPids: [first!.pid]};
		const lines = pane
			.wideLines(foreign, {}, 90, 20)
			.map((line) => line.map((s) => s.text).join(''));
		expect(lines.at(-1)).toBe(
			'1 GPU process is in another PID namespace (a container?): not matched to notebooks',
		);
		// The process row itself stays, under its command: nothing is guessed onto a kernel.
		expect(lines.join('\n')).toContain(String(first!.pid));
		expect(pane.foreignNote([1, 2])).toBe(
			'2 GPU processes are in another PID namespace (a container?): not matched to notebooks',
		);
		expect(pane.foreignNote([])).toBeNull();
	});

	test('the note keeps its row when the process table is cut short', () => {
		const gpu = {...status([desktop]), foreignPids: [1]};
		const rows = 3 + 2; // one GPU block, then room for the header and one row only
		const lines = pane.wideLines(gpu, {}, 90, rows).map((line) => line.map((s) => s.text).join(''));
		expect(lines).toHaveLength(rows);
		expect(lines.at(-1)).toMatch(/^1 GPU process is in another PID namespace/);
	});
});
