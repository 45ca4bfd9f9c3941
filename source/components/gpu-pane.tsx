import {Box, Text} from 'ink';
import type {GpuStatus, HostStats} from '../core/types.js';

export type GpuPaneProps = {
	readonly gpu: GpuStatus | null;
	/** Utilization history per GPU uuid (core/app-state.ts). */
	readonly history: Readonly<Record<string, readonly number[]>>;
	readonly host: HostStats | null;
	readonly width: number;
	/** Rows this pane may use, borders included. */
	readonly height: number;
	/** One line per GPU, for 80×24. */
	readonly compact: boolean;
	readonly focused: boolean;
};

// Placeholder owned by the GPU telemetry work (issue 4), which replaces it.
export function GpuPane({gpu}: GpuPaneProps) {
	return (
		<Box>
			<Text>{gpu ? `${gpu.gpus.length} GPU(s)` : 'GPUs: waiting for data'}</Text>
		</Box>
	);
}
