import {Box} from 'ink';
import type {KernelStatus} from '../core/kernels.js';
import {fit, formatDuration, formatMiB, textWidth, truncate, unknown} from '../core/format.js';
import type {GpuInfo} from '../core/types.js';
import type {Grade} from '../theme.js';
import {Line, type Segment} from './line.js';
import {Panel} from './panel.js';

/** An idle kernel holding GPU memory this long gets a hint (never an action). */
export const idleHintMs = 60 * 60 * 1000;

const stateGrade: Readonly<Record<KernelStatus['state'], Grade>> = {
	busy: 'warn',
	idle: 'good',
	starting: 'warn',
	dead: 'bad',
};

/** `1: 22.1 GiB`, GPUs by index; `–` for none. */
export function gpuMemoryText(kernel: KernelStatus, gpus: readonly GpuInfo[]): string {
	const parts = Object.entries(kernel.gpuMemoryMiB)
		.map(([uuid, mib]) => ({index: gpus.find((g) => g.uuid === uuid)?.index ?? null, mib}))
		.sort((a, b) => (a.index ?? 99) - (b.index ?? 99))
		.map(({index, mib}) => `${index ?? '?'}: ${formatMiB(mib)}`);
	return parts.length > 0 ? parts.join(' ') : unknown;
}

/** `busy 41m`. */
export function stateText(kernel: KernelStatus, now: number): string {
	return `${kernel.state} ${formatDuration(now - kernel.since)}`;
}

/** `idle 3h12m, holds 22.1 GiB on GPU 1 — x shuts it down`, or null when nothing is worth saying. */
export function kernelHint(
	kernel: KernelStatus,
	gpus: readonly GpuInfo[],
	now: number,
): string | null {
	if (kernel.state === 'dead') return 'dead — K restarts it, x removes it';
	const held = Object.values(kernel.gpuMemoryMiB).reduce((sum, mib) => sum + mib, 0);
	if (kernel.state !== 'idle' || held === 0 || now - kernel.since < idleHintMs) return null;
	const on = Object.keys(kernel.gpuMemoryMiB)
		.map((uuid) => gpus.find((g) => g.uuid === uuid)?.index ?? '?')
		.join(', ');
	return `idle ${formatDuration(now - kernel.since)}, holds ${formatMiB(held)} on GPU ${on} — x shuts it down`;
}

/** The y/N question of `K` and `x`; the shut-down one names the GPU memory it frees. */
export function kernelQuestion(
	kernel: KernelStatus,
	action: 'restart' | 'shutdown',
	gpus: readonly GpuInfo[],
): string {
	const name = kernel.notebook ?? `kernel ${kernel.id.slice(0, 8)}`;
	if (action === 'restart') return `Restart the kernel of ${name}? Its variables are lost. [y/N]`;
	const frees = Object.entries(kernel.gpuMemoryMiB)
		.filter(([, mib]) => mib > 0)
		.map(([uuid, mib]) => ({index: gpus.find((g) => g.uuid === uuid)?.index ?? null, mib}))
		.sort((a, b) => (a.index ?? 99) - (b.index ?? 99))
		.map(({index, mib}) => `${formatMiB(mib)} on GPU ${index ?? '?'}`);
	return `Shut down ${name}?${frees.length > 0 ? ` frees ${frees.join(', ')}` : ''} [y/N]`;
}

const percent = (value: number | null) => (value === null ? unknown : `${Math.round(value)}%`);

/** The wide pane's lines: a header row, then one row a kernel (the selected one marked). */
export function notebookLines(
	kernels: readonly KernelStatus[],
	gpus: readonly GpuInfo[],
	now: number,
	width: number,
	selected: number,
): Segment[][] {
	if (kernels.length === 0) return [[{text: 'no kernels running', dim: true}]];
	// The other columns: marker 2, space 1, kernel 9, state 13, GPU 18, CPU 6, RSS up to 8.
	const notebookWidth = Math.max(12, Math.min(36, width - 57));
	const header: Segment[] = [
		{
			text: `  ${fit('NOTEBOOK', notebookWidth)} ${fit('KERNEL', 9)}${fit('STATE', 13)}${fit('GPU MEM', 18)}${fit('CPU', 6)}RSS`,
			dim: true,
		},
	];
	const rows = kernels.flatMap((kernel, index): Segment[][] => {
		const hint = kernelHint(kernel, gpus, now);
		const row: Segment[] = [
			{text: index === selected ? '▸ ' : '  ', accent: true},
			{text: `${fit(kernel.notebook ?? `(kernel ${kernel.id.slice(0, 8)})`, notebookWidth)} `},
			{text: fit(kernel.name, 9)},
			{text: fit(stateText(kernel, now), 13), grade: stateGrade[kernel.state]},
			{text: fit(gpuMemoryText(kernel, gpus), 18)},
			{text: fit(percent(kernel.cpuPercent), 6)},
			{text: formatMiB(kernel.rssMiB)},
		];
		if (!hint) return [row];
		const used = row.reduce((sum, segment) => sum + textWidth(segment.text), 0);
		// Beside the row when it fits, else on a line of its own under it (never cut off).
		if (used + 2 + textWidth(hint) <= width)
			return [[...row, {text: `  ${hint}`, grade: 'warn' as const}]];
		return [row, [{text: `    ${hint}`, grade: 'warn' as const}]];
	});
	return [header, ...rows];
}

/** The 80×24 form: `resnet.ipynb busy 41m 22.1G`, one line a kernel. */
export function compactNotebookLine(
	kernel: KernelStatus,
	gpus: readonly GpuInfo[],
	now: number,
	width: number,
): Segment[] {
	const name = (kernel.notebook ?? kernel.id.slice(0, 8)).split('/').pop() ?? '';
	const held = Object.values(kernel.gpuMemoryMiB).reduce((sum, mib) => sum + mib, 0);
	return [
		{text: ` ${truncate(name, Math.max(8, width - 30))} `},
		{text: stateText(kernel, now), grade: stateGrade[kernel.state]},
		{text: held > 0 ? `  ${formatMiB(held)}` : ''},
		...(gpus.length > 0 && held > 0
			? [{text: ` (${gpuMemoryText(kernel, gpus)})`, dim: true}]
			: []),
	];
}

type Props = {
	readonly kernels: readonly KernelStatus[];
	readonly gpus: readonly GpuInfo[];
	readonly hostName: string;
	readonly now: number;
	readonly width: number;
	readonly height: number;
	readonly focused: boolean;
	readonly selected: number;
};

export function NotebooksPane({
	kernels,
	gpus,
	hostName,
	now,
	width,
	height,
	focused,
	selected,
}: Props) {
	const lines = notebookLines(kernels, gpus, now, width - 4, selected).slice(
		0,
		Math.max(0, height - 2),
	);
	const title = `Notebooks  ${hostName} · ${kernels.length} kernel${kernels.length === 1 ? '' : 's'}`;
	return (
		<Panel title={title} width={width} height={height} focused={focused}>
			<Box flexDirection="column">
				{lines.map((segments, index) => (
					<Line key={index} segments={segments} />
				))}
			</Box>
		</Panel>
	);
}
