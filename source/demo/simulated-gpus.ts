/**
 * The demo's simulated GPUs: a deterministic function of a seed and the time since the demo began,
 * shaped like a training run (utilization oscillating with noise and short input-pipeline stalls,
 * memory ramping up then flat, temperature and fan lagging the load, power following the load
 * under its limit). Pure: no timers, no I/O; the demo's GPU host turns it into nvidia-smi's CSV.
 */

/** One simulated card: fixed facts. */
export type SimulatedCard = {
	readonly index: number;
	readonly uuid: string;
	readonly name: string;
	readonly busId: string;
	readonly memoryTotalMiB: number;
	readonly powerLimitW: number;
	readonly idlePowerW: number;
	/** Passively cooled cards (SXM) have no fan: nvidia-smi says `[N/A]`. */
	readonly hasFan: boolean;
	/** `Disabled` on a MIG-capable card, `[N/A]` on one without MIG. */
	readonly migMode: string;
	/** Phase offset of its load curve, in ms. */
	readonly phaseMs: number;
	/** Period of its load oscillation, in ms. */
	readonly periodMs: number;
};

/** One simulated compute process: fixed facts and the memory it settles at. */
export type SimulatedProcess = {
	readonly pid: number;
	readonly gpuIndex: number;
	/** What nvidia-smi's `process_name` shows (the executable). */
	readonly processName: string;
	/** What `ps -o args=` shows. */
	readonly args: string;
	readonly memoryMiB: number;
	/** Memory reaches `memoryMiB` this long after the demo starts. */
	readonly rampMs: number;
};

/** One sample of one card, as nvidia-smi would report it (before formatting). */
export type GpuSample = {
	readonly card: SimulatedCard;
	readonly utilizationGpu: number;
	readonly utilizationMemory: number;
	readonly memoryUsedMiB: number;
	readonly temperatureC: number;
	readonly powerW: number;
	/** Null for a card without a fan. */
	readonly fanPercent: number | null;
	readonly smClockMHz: number;
	readonly pstate: string;
};

export type ProcessSample = {
	readonly process: SimulatedProcess;
	readonly gpuUuid: string;
	readonly usedMemoryMiB: number;
};

export const simulatedDriverVersion = '550.54.15';
/** Memory the CUDA context and driver take on a card with any process on it. */
const contextMiB = 312;

/** A 32-bit integer hash (murmur3's finalizer) of a few integers: the source of all "noise". */
function hash(...values: number[]): number {
	let h = 0x9e_37_79_b9;
	for (const value of values) {
		h = Math.imul(h ^ (value | 0), 0x85_eb_ca_6b);
		h ^= h >>> 13;
		h = Math.imul(h, 0xc2_b2_ae_35);
		h ^= h >>> 16;
	}
	return h >>> 0;
}

/** Uniform in [0, 1) for the given integers. */
function unit(...values: number[]): number {
	return hash(...values) / 2 ** 32;
}

/** Smooth value noise in [-1, 1]: random values at whole steps, eased in between. */
function smoothNoise(seed: number, channel: number, t: number): number {
	const i = Math.floor(t);
	const f = t - i;
	const a = unit(seed, channel, i) * 2 - 1;
	const b = unit(seed, channel, i + 1) * 2 - 1;
	const ease = f * f * (3 - 2 * f);
	return a + (b - a) * ease;
}

function clamp(value: number, low: number, high: number): number {
	return Math.min(high, Math.max(low, value));
}

function uuidFor(seed: number, index: number): string {
	const hex = [0, 1, 2, 3]
		.map((part) => hash(seed, index, part).toString(16).padStart(8, '0'))
		.join('');
	return `GPU-${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/**
 * One notebook's kernel on the simulated machine: what the demo's Jupyter stand-in lists over REST
 * and the demo GPU host's process table shows (core/kernels.ts joins them as it joins real ones).
 */
export type SimulatedKernel = {
	readonly id: string;
	readonly notebook: string;
	readonly state: 'busy' | 'idle';
	/** How long before the demo started the kernel entered `state` (its `last_activity`). */
	readonly sinceBeforeStartMs: number;
	/** The kernel's process: `ipykernel_launcher -f …/kernel-<id>.json`. */
	readonly pid: number;
	/** Its children (DataLoader workers): CPU and memory, no GPU memory of their own. */
	readonly childPids: readonly number[];
};

/** The simulated machine: two cards, the processes on them, the notebooks' kernels. */
export type SimulatedMachine = {
	readonly seed: number;
	readonly cards: readonly SimulatedCard[];
	readonly processes: readonly SimulatedProcess[];
	readonly kernels: readonly SimulatedKernel[];
	/** The Jupyter server's pid (the kernels' parent). */
	readonly jupyterPid: number;
};

/** The connection file a kernel's command line names. */
export const kernelFile = (id: string) =>
	`/home/demo/.local/share/jupyter/runtime/kernel-${id}.json`;

/** The demo's machine for `seed`: a GeForce and a data-centre card, each labelled as simulated. */
export function createSimulatedMachine(seed = 507): SimulatedMachine {
	const cards: SimulatedCard[] = [
		{
			index: 0,
			uuid: uuidFor(seed, 0),
			name: 'NVIDIA GeForce RTX 4090 (simulated)',
			busId: '00000000:01:00.0',
			memoryTotalMiB: 24_564,
			powerLimitW: 450,
			idlePowerW: 24,
			hasFan: true,
			migMode: '[N/A]',
			phaseMs: 0,
			periodMs: 23_000,
		},
		{
			index: 1,
			uuid: uuidFor(seed, 1),
			name: 'NVIDIA A100-SXM4-80GB (simulated)',
			busId: '00000000:41:00.0',
			memoryTotalMiB: 81_920,
			powerLimitW: 400,
			idlePowerW: 58,
			hasFan: false,
			migMode: 'Disabled',
			phaseMs: 7000,
			periodMs: 31_000,
		},
	];
	const base = 40_000 + (hash(seed, 99) % 20_000);
	const minute = 60_000;
	const kernels: SimulatedKernel[] = [
		{
			id: 'c0f1e2d3-4b5a-4697-8a1b-2c3d4e5f6a7b',
			notebook: 'finetune/llama-7b-lora.ipynb',
			state: 'busy',
			sinceBeforeStartMs: 41 * minute,
			pid: base + 911,
			childPids: [base + 915, base + 916, base + 917, base + 918],
		},
		{
			id: '5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9',
			notebook: 'eval/attention-maps.ipynb',
			state: 'idle',
			sinceBeforeStartMs: 192 * minute,
			pid: base + 388,
			childPids: [],
		},
		{
			id: '9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d',
			notebook: 'scratch.ipynb',
			state: 'idle',
			sinceBeforeStartMs: 12 * minute,
			pid: base + 402,
			childPids: [],
		},
	];
	const kernelArgs = (k: SimulatedKernel) =>
		`/usr/bin/python3 -m ipykernel_launcher -f ${kernelFile(k.id)}`;
	const processes: SimulatedProcess[] = [
		{
			pid: base + 123,
			gpuIndex: 0,
			processName: 'python',
			args: 'python train.py --model resnet50 --batch-size 256 --lr 3e-4 --amp',
			memoryMiB: 18_944,
			rampMs: 12_000,
		},
		{
			pid: base + 388,
			gpuIndex: 0,
			processName: '/usr/bin/python3',
			args: kernelArgs(kernels[1]!),
			memoryMiB: 3_482,
			rampMs: 3000,
		},
		{
			pid: base + 911,
			gpuIndex: 1,
			processName: '/usr/bin/python3',
			args: kernelArgs(kernels[0]!),
			memoryMiB: 61_372,
			rampMs: 20_000,
		},
	];
	return {seed, cards, processes, kernels, jupyterPid: base + 300};
}

/** Memory a process holds `elapsedMs` after the start: a ramp, then flat with allocator jitter. */
function processMemory(machine: SimulatedMachine, p: SimulatedProcess, elapsedMs: number): number {
	const ramp = clamp(elapsedMs / p.rampMs, 0, 1);
	const eased = 1 - (1 - ramp) ** 3;
	const jitter =
		ramp >= 1 ? Math.round(smoothNoise(machine.seed, p.pid, elapsedMs / 4000) * 48) : 0;
	return Math.max(64, Math.round(64 + (p.memoryMiB - 64) * eased) + jitter);
}

/** Utilization (0–100) of a card at a time: a training curve with noise and pipeline stalls. */
function utilizationAt(machine: SimulatedMachine, card: SimulatedCard, t: number): number {
	const phase = ((t + card.phaseMs) / card.periodMs) * 2 * Math.PI;
	let util = 80 + 14 * Math.sin(phase) + 6 * smoothNoise(machine.seed, card.index, t / 900);
	// Every ~40 s the data loader or a checkpoint stalls the card for a couple of seconds.
	const stallSlot = Math.floor((t + card.phaseMs) / 40_000);
	const inSlot = (t + card.phaseMs) % 40_000;
	if (inSlot > 36_000 && unit(machine.seed, card.index, stallSlot) < 0.7)
		util = 12 + 10 * unit(machine.seed, card.index, t >> 8);
	// The first seconds: the job is still loading.
	util *= clamp(t / 4000, 0.05, 1);
	return Math.round(clamp(util, 0, 100));
}

/** The load a card has "felt" lately (a 20 s average): what temperature and fan follow. */
function recentLoad(machine: SimulatedMachine, card: SimulatedCard, t: number): number {
	let sum = 0;
	const steps = 10;
	for (let i = 0; i < steps; i++) sum += utilizationAt(machine, card, Math.max(0, t - i * 2000));
	return sum / steps;
}

/** Every card's values `elapsedMs` after the demo started. */
export function sampleGpus(machine: SimulatedMachine, elapsedMs: number): GpuSample[] {
	const t = Math.max(0, elapsedMs);
	return machine.cards.map((card) => {
		const util = utilizationAt(machine, card, t);
		const load = recentLoad(machine, card, t);
		const onCard = machine.processes.filter((p) => p.gpuIndex === card.index);
		const used = Math.min(
			card.memoryTotalMiB,
			(onCard.length > 0 ? contextMiB : 0) +
				onCard.reduce((sum, p) => sum + processMemory(machine, p, t), 0),
		);
		const temperatureC = Math.round(
			clamp(34 + load * 0.42 + 1.5 * smoothNoise(machine.seed, 100 + card.index, t / 3000), 25, 92),
		);
		const powerNoise = 0.04 * smoothNoise(machine.seed, 200 + card.index, t / 700);
		const powerW =
			Math.round(
				clamp(
					card.idlePowerW +
						(card.powerLimitW * 0.97 - card.idlePowerW) * (util / 100) * (1 + powerNoise),
					card.idlePowerW * 0.9,
					card.powerLimitW,
				) * 100,
			) / 100;
		const fanPercent = card.hasFan
			? Math.round(clamp(30 + (temperatureC - 45) * 1.8, 30, 100))
			: null;
		return {
			card,
			utilizationGpu: util,
			utilizationMemory: Math.round(
				clamp(util * 0.55 + 4 * smoothNoise(machine.seed, 300 + card.index, t / 1100), 0, 100),
			),
			memoryUsedMiB: used,
			temperatureC,
			powerW,
			fanPercent,
			smClockMHz: util > 5 ? 2520 - Math.round((temperatureC - 40) * 4) : 210,
			pstate: util > 5 ? 'P2' : 'P8',
		};
	});
}

/** Every process's memory `elapsedMs` after the demo started, in nvidia-smi's order (by GPU). */
export function sampleProcesses(machine: SimulatedMachine, elapsedMs: number): ProcessSample[] {
	const t = Math.max(0, elapsedMs);
	return machine.processes.map((process) => ({
		process,
		gpuUuid: machine.cards[process.gpuIndex]?.uuid ?? '',
		usedMemoryMiB: processMemory(machine, process, t),
	}));
}
