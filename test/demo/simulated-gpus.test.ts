import {describe, expect, it} from 'vitest';
import {
	createSimulatedMachine,
	sampleGpus,
	sampleProcesses,
} from '../../source/demo/simulated-gpus.js';

describe('simulated GPUs', () => {
	const machine = createSimulatedMachine(507);

	it('labels every card as simulated and gives each a stable GPU- uuid', () => {
		expect(machine.cards.map((c) => c.name)).toEqual([
			'NVIDIA GeForce RTX 4090 (simulated)',
			'NVIDIA A100-SXM4-80GB (simulated)',
		]);
		for (const card of machine.cards)
			expect(card.uuid).toMatch(/^GPU-[\da-f]{8}(?:-[\da-f]{4}){3}-[\da-f]{12}$/);
		expect(createSimulatedMachine(507).cards.map((c) => c.uuid)).toEqual(
			machine.cards.map((c) => c.uuid),
		);
		expect(createSimulatedMachine(8).cards[0]!.uuid).not.toBe(machine.cards[0]!.uuid);
	});

	it('is a pure function of seed and time', () => {
		expect(sampleGpus(machine, 12_345)).toEqual(sampleGpus(createSimulatedMachine(507), 12_345));
	});

	it('stays within physical ranges over ten simulated minutes', () => {
		for (let t = 0; t <= 600_000; t += 250) {
			for (const s of sampleGpus(machine, t)) {
				expect(s.utilizationGpu).toBeGreaterThanOrEqual(0);
				expect(s.utilizationGpu).toBeLessThanOrEqual(100);
				expect(Number.isInteger(s.utilizationGpu)).toBe(true);
				expect(s.memoryUsedMiB).toBeGreaterThanOrEqual(0);
				expect(s.memoryUsedMiB).toBeLessThanOrEqual(s.card.memoryTotalMiB);
				expect(s.temperatureC).toBeGreaterThanOrEqual(25);
				expect(s.temperatureC).toBeLessThanOrEqual(92);
				expect(s.powerW).toBeGreaterThan(0);
				expect(s.powerW).toBeLessThanOrEqual(s.card.powerLimitW);
				if (s.card.hasFan) {
					expect(s.fanPercent).toBeGreaterThanOrEqual(30);
					expect(s.fanPercent).toBeLessThanOrEqual(100);
				} else {
					expect(s.fanPercent).toBeNull();
				}
			}
		}
	});

	it('moves: utilization and power change from second to second, and span a training-like range', () => {
		const utils = new Set<number>();
		const powers = new Set<number>();
		for (let t = 10_000; t < 70_000; t += 1000) {
			const [first] = sampleGpus(machine, t);
			utils.add(first!.utilizationGpu);
			powers.add(first!.powerW);
		}
		expect(utils.size).toBeGreaterThan(15);
		expect(powers.size).toBeGreaterThan(15);
		expect(Math.max(...utils)).toBeGreaterThanOrEqual(85);
		expect(Math.min(...utils)).toBeLessThanOrEqual(70);
	});

	it('ramps memory up, then holds it nearly flat; power and temperature follow the load', () => {
		const at = (t: number) => sampleGpus(machine, t)[1]!;
		expect(at(0).memoryUsedMiB).toBeLessThan(at(10_000).memoryUsedMiB);
		expect(at(10_000).memoryUsedMiB).toBeLessThan(at(30_000).memoryUsedMiB);
		expect(Math.abs(at(60_000).memoryUsedMiB - at(120_000).memoryUsedMiB)).toBeLessThan(200);
		// At start the job is loading: low load, cool and near idle power.
		expect(at(0).utilizationGpu).toBeLessThan(20);
		expect(at(0).powerW).toBeLessThan(at(60_000).powerW);
		expect(at(0).temperatureC).toBeLessThan(at(60_000).temperatureC);
	});

	it('puts each process on its card, with the card memory covering its processes', () => {
		const t = 45_000;
		const processes = sampleProcesses(machine, t);
		expect(processes.map((p) => p.process.args)).toContainEqual(
			expect.stringContaining('train.py'),
		);
		expect(processes.map((p) => p.process.args)).toContainEqual(
			expect.stringContaining('ipykernel_launcher'),
		);
		for (const gpu of sampleGpus(machine, t)) {
			const sum = processes
				.filter((p) => p.gpuUuid === gpu.card.uuid)
				.reduce((a, p) => a + p.usedMemoryMiB, 0);
			expect(sum).toBeGreaterThan(0);
			expect(gpu.memoryUsedMiB).toBeGreaterThan(sum);
		}
	});
});
