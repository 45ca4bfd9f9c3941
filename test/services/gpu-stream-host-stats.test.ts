/** The GPU host's own load and memory, shown beside its GPUs (services/host-stats.ts). */
import os from 'node:os';
import {expect, test} from 'vitest';
import type {HostStats} from '../../source/core/types.js';
import {startHostStats} from '../../source/services/host-stats.js';
import {waitFor} from '../helpers/wait-for.js';

test('startHostStats: CPU load and memory of this machine, repeatedly, until disposed', async () => {
	const readings: HostStats[] = [];
	const errors: unknown[] = [];
	const stats = startHostStats({
		intervalMs: 100,
		onStats: (s) => readings.push(s),
		onError: (e) => errors.push(e),
	});
	try {
		await waitFor(() => readings.length >= 3, {message: 'three readings'});
	} finally {
		stats.dispose();
	}
	expect(errors).toEqual([]);
	const totalMiB = Math.round(os.totalmem() / 1_048_576);
	for (const reading of readings) {
		expect(reading.cpuPercent).toBeGreaterThanOrEqual(0);
		expect(reading.cpuPercent).toBeLessThanOrEqual(100);
		// The same /proc/meminfo as Node's own view, to the MiB.
		expect(Math.abs(reading.memoryTotalMiB - totalMiB)).toBeLessThanOrEqual(1);
		expect(reading.memoryUsedMiB).toBeGreaterThan(0);
		expect(reading.memoryUsedMiB).toBeLessThanOrEqual(reading.memoryTotalMiB);
	}
});
