/**
 * The GPU host's own CPU load and memory, for `gpujup host` (served to laptops with the GPUs).
 * systeminformation reads /proc here; it spawns nothing for these two calls on Linux.
 */
import * as si from 'systeminformation';
import type {HostStats} from '../core/types.js';

/** Options for {@link startHostStats}. */
export type HostStatsOptions = {
	readonly intervalMs: number;
	readonly onStats: (stats: HostStats) => void;
	/** Called when a reading fails (it is retried at the next interval). */
	readonly onError?: (error: unknown) => void;
};

const mib = (bytes: number) => Math.round(bytes / 1_048_576);

/**
 * Sample every `intervalMs` (the first one at once). A slow reading never overlaps the next: the
 * next one is scheduled when it ends. Memory "used" is what htop calls used: without buffers and
 * page cache (`active`), so a box with a large cache does not look full.
 */
export function startHostStats(options: HostStatsOptions): {dispose(): void} {
	let disposed = false;
	let timer: NodeJS.Timeout | undefined;
	const tick = async () => {
		try {
			const [load, mem] = await Promise.all([si.currentLoad(), si.mem()]);
			if (disposed) return;
			options.onStats({
				cpuPercent: Math.round(load.currentLoad * 10) / 10,
				memoryUsedMiB: mib(mem.active),
				memoryTotalMiB: mib(mem.total),
			});
		} catch (error: unknown) {
			if (!disposed) options.onError?.(error);
		}
		if (!disposed) timer = setTimeout(() => void tick(), options.intervalMs);
	};
	void tick();
	return {
		dispose() {
			disposed = true;
			if (timer) clearTimeout(timer);
		},
	};
}
