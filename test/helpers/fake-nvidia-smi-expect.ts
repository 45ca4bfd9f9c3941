/**
 * What gpujup should make of the captures the fake replays, read straight from each capture's
 * `--format=csv` cells (with their units), independently of the parser under test.
 */
import type {GpuInfo, GpuProcess} from '../../source/core/types.js';
import {hostRows, readSource, type HostEntry} from './fake-nvidia-smi.mjs';
import {samplePath} from './nvidia-smi-samples.js';

/** The capture's own cell by header name (units and all), or undefined when it has no such column. */
export function raw(entry: HostEntry, name: string): string | undefined {
	const column = entry.header.findIndex((cell) => cell.name === name);
	return column === -1 ? undefined : entry.row[column];
}

/** `81559 MiB` → 81559, `[N/A]` → null. */
export function rawNumber(value: string | undefined): number | null {
	if (value === undefined || value.startsWith('[') || value === 'N/A') return null;
	return Number(value.split(' ')[0]);
}

/** The GpuInfo a capture row must parse to, as GPU `position` of its host. */
export function expectedGpu(entry: HostEntry, position: number): GpuInfo {
	return {
		index: position,
		uuid: raw(entry, 'uuid')!,
		name: raw(entry, 'name')!,
		busId: raw(entry, 'pci.bus_id') ?? null,
		mig: raw(entry, 'mig.mode.current') === 'Enabled',
		utilizationGpu: rawNumber(raw(entry, 'utilization.gpu')),
		memoryUsedMiB: rawNumber(raw(entry, 'memory.used')),
		memoryTotalMiB: rawNumber(raw(entry, 'memory.total')),
		temperatureC: rawNumber(raw(entry, 'temperature.gpu')),
		powerW: rawNumber(raw(entry, 'power.draw')),
		powerLimitW: rawNumber(raw(entry, 'power.limit')),
		fanPercent: rawNumber(raw(entry, 'fan.speed')),
	};
}

/** The process a capture row must parse to (before `ps` names its user). */
export function expectedProcess(entry: HostEntry): GpuProcess {
	return {
		gpuUuid: raw(entry, 'gpu_uuid')!,
		pid: Number(raw(entry, 'pid')),
		user: null,
		command: raw(entry, 'process_name')!,
		usedMemoryMiB: rawNumber(raw(entry, 'used_gpu_memory')),
	};
}

/** The GPUs and processes of a host made of `files` (sample names), in one state. */
export function expectedHost(
	files: readonly string[],
	state: 'idle' | 'load',
): {gpus: GpuInfo[]; processes: GpuProcess[]; driverVersion: string | null} {
	const host = hostRows(
		files.map((file) => readSource(samplePath(file))),
		state,
	);
	return {
		gpus: host.gpus.map((entry, i) => expectedGpu(entry, i)),
		processes: host.apps.map((entry) => expectedProcess(entry)),
		driverVersion: host.gpus[0] ? (raw(host.gpus[0], 'driver_version') ?? null) : null,
	};
}
