import {Box} from 'ink';
import {formatMiB, formatMiBPair, textWidth, unknown} from '../core/format.js';
import {sanitizeLine} from '../core/sanitize.js';
import {gpuErrorFix} from '../core/nvidia-smi.js';
import type {KernelStatus} from '../core/kernels.js';
import type {GpuInfo, GpuProcess, GpuStatus, HostStats} from '../core/types.js';
import {gradePercent, makeTheme, ThemeContext, type Grade} from '../theme.js';
import {Line, type Segment} from './line.js';
import {Panel} from './panel.js';

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
	/**
	 * Colour on or off for this pane. Left out, the pane follows the dashboard's theme (which is
	 * off under NO_COLOR); glyphs and text are the same either way.
	 */
	readonly color?: boolean;
	/** The GPU host's name for the title (`p507`). */
	readonly hostLabel?: string;
	/** The notebooks' kernels: a process of one is named by its notebook. */
	readonly kernels?: readonly KernelStatus[];
};

/** pid → the notebook (or kernel) whose process tree it is in. */
export function notebookOwners(kernels: readonly KernelStatus[]): Map<number, string> {
	const owners = new Map<number, string>();
	for (const kernel of kernels)
		for (const pid of kernel.pids)
			owners.set(pid, kernel.notebook ?? `kernel ${kernel.id.slice(0, 8)}`);
	return owners;
}

const blocks = ['', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];
const sparks = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/** A bar of exactly `width` columns for `percent` (0–100) in eighths; unknown is `–` and blanks. */
export function bar(percent: number | null, width: number): string {
	if (width <= 0) return '';
	if (percent === null || !Number.isFinite(percent)) return unknown + ' '.repeat(width - 1);
	const eighths = Math.round((Math.min(100, Math.max(0, percent)) / 100) * width * 8);
	const full = Math.floor(eighths / 8);
	const text = '█'.repeat(full) + blocks[eighths % 8]!;
	return text + ' '.repeat(width - textWidth(text));
}

/** The last `width` samples (0–100) as `▁▃▅▇`, padded to `width` columns. */
export function sparkline(values: readonly number[], width: number): string {
	if (width <= 0) return '';
	const text = values
		.slice(-width)
		.map((v) => sparks[Math.round((Math.min(100, Math.max(0, v)) / 100) * 7)]!)
		.join('');
	return text + ' '.repeat(width - textWidth(text));
}

/** `NVIDIA GeForce RTX 4080 SUPER` → `RTX 4080 SUPER`; compact: `RTX 4080 S`. */
export function shortGpuName(name: string, compact = false): string {
	const short = name.replace(/^NVIDIA\s+/i, '').replace(/^GeForce\s+/i, '');
	if (!compact) return short;
	return short
		.replace(/\s+SUPER\b/, ' S')
		.replace(/\s+Laptop GPU\b/, ' Laptop')
		.replace(/\s+Ti\b/, 'Ti');
}

const percentText = (value: number | null) => (value === null ? unknown : `${Math.round(value)}%`);
const tempText = (value: number | null) => (value === null ? unknown : `${Math.round(value)}°C`);
const wattText = (value: number | null) => (value === null ? unknown : String(Math.round(value)));
const memPercent = (gpu: GpuInfo) =>
	gpu.memoryUsedMiB === null || !gpu.memoryTotalMiB
		? null
		: (gpu.memoryUsedMiB / gpu.memoryTotalMiB) * 100;
const powerPercent = (gpu: GpuInfo) =>
	gpu.powerW === null || !gpu.powerLimitW ? null : (gpu.powerW / gpu.powerLimitW) * 100;

/** Hot is a matter of degrees, not of percent. */
function tempGrade(value: number | null): Grade | null {
	if (value === null) return null;
	if (value >= 85) return 'bad';
	if (value >= 75) return 'warn';
	return 'good';
}

/** Cut a line of segments to `width` columns (glyphs here are all one column wide). */
export function fitSegments(segments: readonly Segment[], width: number): Segment[] {
	const out: Segment[] = [];
	let left = Math.max(0, width);
	for (const segment of segments) {
		if (left <= 0) break;
		const chars = [...segment.text];
		const text = chars.length <= left ? segment.text : chars.slice(0, left).join('');
		out.push({...segment, text});
		left -= textWidth(text);
	}
	return out;
}

/** Word-wrap `text` to `width` columns, at most `rows` lines (the last one cut with `…`). */
function wrap(text: string, width: number, rows: number): string[] {
	if (width <= 0 || rows <= 0) return [];
	const lines: string[] = [];
	let current = '';
	for (const word of text.split(/\s+/).filter(Boolean)) {
		const candidate = current ? `${current} ${word}` : word;
		if (textWidth(candidate) <= width) {
			current = candidate;
			continue;
		}
		if (current) lines.push(current);
		current = word;
		while (textWidth(current) > width) {
			lines.push([...current].slice(0, width).join(''));
			current = [...current].slice(width).join('');
		}
	}
	if (current) lines.push(current);
	if (lines.length <= rows) return lines;
	const kept = lines.slice(0, rows);
	const last = [...kept[rows - 1]!];
	kept[rows - 1] = `${last.slice(0, Math.max(0, width - 1)).join('')}…`;
	return kept;
}

/** The utilization cell: `MIG` for a MIG GPU (whose utilization nvidia-smi does not give). */
function utilSegment(gpu: GpuInfo, width: number): Segment {
	const text = gpu.mig ? 'MIG' : percentText(gpu.utilizationGpu);
	return {
		text: text.padStart(width),
		grade: gpu.mig ? null : gradePercent(gpu.utilizationGpu),
		accent: gpu.mig,
	};
}

/**
 * One line for a GPU, as in the 80×24 sketch:
 * `GPU0 RTX 4080 S  78% ████████▌  9.8/16.0G 61°C 212W  ▁▃▅▇█▇▆▇`. Parts drop from the right
 * (sparkline, power, bar, temperature) and the name shortens as the width shrinks.
 */
export function compactGpuLine(
	gpu: GpuInfo,
	history: readonly number[],
	width: number,
	options: {readonly tag?: string; readonly nameWidth?: number} = {},
): Segment[] {
	const name = shortGpuName(gpu.name, true);
	const nameWidth = options.nameWidth ?? Math.min(Math.max(textWidth(name), 6), 12);
	const mem = formatMiBPair(gpu.memoryUsedMiB, gpu.memoryTotalMiB).replace(' GiB', 'G');
	const head = (columns: number): Segment[] => [
		{text: `GPU${gpu.index} `, dim: true},
		{text: `${[...name].slice(0, columns).join('').padEnd(columns)}  `},
		utilSegment(gpu, 4),
	];
	const barPart: Segment[] = [
		{text: ' '},
		{text: bar(gpu.mig ? null : gpu.utilizationGpu, 9), grade: gradePercent(gpu.utilizationGpu)},
	];
	const memPart: Segment[] = [
		{text: '  '},
		{text: mem.padStart(10), grade: gradePercent(memPercent(gpu))},
	];
	const tempPart: Segment[] = [
		{text: ' '},
		{text: tempText(gpu.temperatureC).padStart(4), grade: tempGrade(gpu.temperatureC)},
	];
	const powerPart: Segment[] = [
		{text: ' '},
		{text: `${wattText(gpu.powerW)}W`.padStart(4), grade: gradePercent(powerPercent(gpu))},
	];
	const tagPart: Segment[] = options.tag ? [{text: `  ${options.tag}`, dim: true}] : [];
	const size = (segments: readonly Segment[]) =>
		segments.reduce((sum, s) => sum + textWidth(s.text), 0);
	const short = Math.min(nameWidth, 6);
	const variants = [
		[...head(nameWidth), ...barPart, ...memPart, ...tempPart, ...powerPart],
		[...head(nameWidth), ...memPart, ...tempPart, ...powerPart],
		[...head(nameWidth), ...memPart, ...tempPart],
		[...head(short), ...memPart, ...tempPart],
		[...head(short), ...memPart],
	];
	const line = variants.find((v) => size(v) + size(tagPart) <= width) ?? variants.at(-1)!;
	const room = width - size(line) - size(tagPart) - 2;
	if (room >= 4) {
		const spark = sparkline(history, Math.min(room, 16)).trimEnd();
		if (spark) line.push({text: '  '}, {text: spark, grade: gradePercent(gpu.utilizationGpu)});
	}
	return fitSegments([...line, ...tagPart], width);
}

/** The three lines of a GPU in the wide pane (UI.md's GPU sketch). */
export function gpuBlock(
	gpu: GpuInfo,
	history: readonly number[],
	width: number,
	nameWidth: number,
	indexWidth: number,
): Segment[][] {
	const name = [...shortGpuName(gpu.name)].slice(0, nameWidth).join('').padEnd(nameWidth);
	const prefix = `${String(gpu.index).padStart(indexWidth)} `;
	const indent = ' '.repeat(textWidth(prefix) + nameWidth + 2);
	const rest = width - textWidth(indent) - 5;
	// Bar, a space, the 4-column percentage, a space, the sparkline: the bar gets half of it.
	const barWidth = Math.max(4, Math.min(20, Math.floor((rest - 6) / 2)));
	const sparkWidth = Math.max(0, Math.min(60, rest - barWidth - 6));
	const utilGrade = gradePercent(gpu.utilizationGpu);
	const line1: Segment[] = [
		{text: prefix, dim: true},
		{text: name, bold: true},
		{text: '  util ', dim: true},
		{text: bar(gpu.mig ? null : gpu.utilizationGpu, barWidth), grade: utilGrade},
		{text: ' '},
		utilSegment(gpu, 4),
	];
	if (sparkWidth > 0)
		line1.push({text: ' '}, {text: sparkline(history, sparkWidth).trimEnd(), grade: utilGrade});
	const mem = memPercent(gpu);
	const line2: Segment[] = [
		{text: indent},
		{text: 'mem  ', dim: true},
		{text: bar(mem, barWidth), grade: gradePercent(mem)},
		{text: ' '},
		{text: formatMiBPair(gpu.memoryUsedMiB, gpu.memoryTotalMiB), grade: gradePercent(mem)},
		{text: ' '},
		{text: tempText(gpu.temperatureC), grade: tempGrade(gpu.temperatureC)},
	];
	const line3: Segment[] = [
		{text: indent},
		{text: 'pwr  ', dim: true},
		{
			text: `${wattText(gpu.powerW)}/${wattText(gpu.powerLimitW)} W`,
			grade: gradePercent(powerPercent(gpu)),
		},
		{text: '  fan ', dim: true},
		{text: percentText(gpu.fanPercent), grade: gradePercent(gpu.fanPercent)},
	];
	return [line1, line2, line3].map((line) => fitSegments(line, width));
}

/** Processes by GPU memory, largest first (unknown last): the table under the GPUs. */
export function processTable(
	processes: readonly GpuProcess[],
	gpus: readonly GpuInfo[],
	width: number,
	rows: number,
	owners: ReadonlyMap<number, string> = new Map(),
): Segment[][] {
	if (rows < 1 || processes.length === 0) return [];
	// No room for the table: at least say that there are processes.
	if (rows === 1) {
		const count = `${processes.length} process${processes.length === 1 ? '' : 'es'}`;
		return [[{text: `… ${count}`, dim: true}]];
	}
	const indexOf = new Map(gpus.map((gpu) => [gpu.uuid, gpu.index]));
	const sorted = [...processes].sort(
		(a, b) => (b.usedMemoryMiB ?? -1) - (a.usedMemoryMiB ?? -1) || a.pid - b.pid,
	);
	const showGpu = gpus.length > 1;
	const pidWidth = Math.max(5, ...sorted.map((p) => String(p.pid).length)) + 2;
	const userWidth =
		Math.min(12, Math.max(4, ...sorted.map((p) => textWidth(p.user ?? unknown)))) + 2;
	const memWidth = 9;
	const gpuColumn = (text: string) => (showGpu ? text.padEnd(4) : '');
	const header: Segment[] = [
		{
			text: `${gpuColumn('GPU')}${'PID'.padEnd(pidWidth)}${'USER'.padEnd(userWidth)}${'GPU MEM'.padEnd(memWidth)}COMMAND`,
			dim: true,
		},
	];
	const fits = sorted.length <= rows - 1;
	const shown = fits ? sorted : sorted.slice(0, rows - 2);
	const lines: Segment[][] = [header];
	for (const p of shown) {
		const user = [...(p.user ?? unknown)].slice(0, userWidth - 2).join('');
		lines.push([
			{text: gpuColumn(String(indexOf.get(p.gpuUuid) ?? unknown)), dim: true},
			{text: String(p.pid).padEnd(pidWidth)},
			{text: user.padEnd(userWidth)},
			{text: formatMiB(p.usedMemoryMiB).padEnd(memWidth)},
			owners.has(p.pid)
				? {text: owners.get(p.pid)!, accent: true}
				: {text: sanitizeLine(p.command) || unknown},
		]);
	}
	if (!fits) lines.push([{text: `… ${sorted.length - shown.length} more`, dim: true}]);
	return lines.map((line) => fitSegments(line, width));
}

const errorTitle = {
	'no-driver': 'no working NVIDIA driver',
	timeout: 'nvidia-smi does not answer',
	failed: 'nvidia-smi failed',
} as const;

/** What the pane says when nvidia-smi fails: its own message, then the likely fix. */
export function errorLines(
	error: NonNullable<GpuStatus['error']>,
	width: number,
	rows: number,
): Segment[][] {
	const lines: Segment[][] = [[{text: `GPU: ${errorTitle[error.kind]}`, grade: 'bad', bold: true}]];
	const fix = `fix: ${gpuErrorFix(error)}`;
	const message = wrap(sanitizeLine(error.message), width, Math.max(1, Math.floor((rows - 1) / 2)));
	lines.push(...message.map((text) => [{text}]));
	lines.push(
		...wrap(fix, width, rows - lines.length).map((text) => [{text, grade: 'warn' as const}]),
	);
	return lines.slice(0, rows).map((line) => fitSegments(line, width));
}

function title(gpu: GpuStatus | null, host: HostStats | null, hostLabel?: string): string {
	const parts: string[] = [];
	if (hostLabel) parts.push(hostLabel);
	if (gpu?.simulated) parts.push('simulated');
	if (gpu?.driverVersion) parts.push(`driver ${gpu.driverVersion}`);
	if (host) {
		parts.push(`cpu ${Math.round(host.cpuPercent)}%`);
		parts.push(
			`mem ${Math.round(host.memoryUsedMiB / 1024)}/${Math.round(host.memoryTotalMiB / 1024)} GiB`,
		);
	}
	return parts.length > 0 ? `GPUs  ${parts.join(' · ')}` : 'GPUs';
}

/** The lines inside the wide pane: `width` × at most `rows`. */
export function wideLines(
	gpu: GpuStatus | null,
	history: Readonly<Record<string, readonly number[]>>,
	width: number,
	rows: number,
	owners: ReadonlyMap<number, string> = new Map(),
): Segment[][] {
	if (rows <= 0) return [];
	if (!gpu) return [[{text: 'waiting for nvidia-smi…', grade: 'warn'}]];
	if (gpu.error) return errorLines(gpu.error, width, rows);
	if (gpu.gpus.length === 0) return [[{text: 'no GPUs reported by nvidia-smi', dim: true}]];
	const gpus = gpu.gpus;
	const lines: Segment[][] = [];
	if (gpus.length * 3 <= rows) {
		const indexWidth = Math.max(...gpus.map((g) => String(g.index).length));
		const longest = Math.max(...gpus.map((g) => textWidth(shortGpuName(g.name))));
		const nameWidth = Math.min(longest, Math.max(8, Math.floor(width / 4)));
		for (const g of gpus)
			lines.push(...gpuBlock(g, history[g.uuid] ?? [], width, nameWidth, indexWidth));
	} else {
		// Not enough room for three lines each: one line per GPU, and say how many are hidden.
		const fits = gpus.length <= rows;
		const shown = fits ? gpus : gpus.slice(0, rows - 1);
		const nameWidth = Math.min(
			12,
			Math.max(6, ...shown.map((g) => textWidth(shortGpuName(g.name, true)))),
		);
		for (const g of shown) lines.push(compactGpuLine(g, history[g.uuid] ?? [], width, {nameWidth}));
		if (!fits) lines.push([{text: `… ${gpus.length - shown.length} more GPUs`, dim: true}]);
	}
	const note = foreignNote(gpu.foreignPids ?? []);
	// The note takes the last row when the table would leave none (it says why rows lack a notebook).
	const tableRows = rows - lines.length - (note ? 1 : 0);
	lines.push(...processTable(gpu.processes, gpus, width, tableRows, owners));
	if (note) lines.push(fitSegments([{text: note, dim: true}], width));
	return lines.slice(0, rows);
}

/**
 * What the pane says of GPU processes the kernel monitor found in no process table of the GPU host
 * (another PID namespace): that they are not matched, rather than a guess. Null for none.
 */
export function foreignNote(pids: readonly number[]): string | null {
	if (pids.length === 0) return null;
	const n = pids.length;
	return `${n} GPU process${n === 1 ? ' is' : 'es are'} in another PID namespace (a container?): not matched to notebooks`;
}

/** The lines of the compact pane (no border): one per GPU, `width` × at most `rows`. */
export function compactLines(
	gpu: GpuStatus | null,
	history: Readonly<Record<string, readonly number[]>>,
	width: number,
	rows: number,
): Segment[][] {
	if (rows <= 0) return [];
	if (!gpu) return [[{text: 'GPU  '}, {text: 'waiting for nvidia-smi…', grade: 'warn'}]];
	if (gpu.error) {
		const fix = gpuErrorFix(gpu.error);
		const first: Segment[] = [
			{text: 'GPU  '},
			{text: errorTitle[gpu.error.kind], grade: 'bad'},
			{text: `: ${sanitizeLine(gpu.error.message)}`},
		];
		const lines = [first, [{text: `fix: ${fix}`, grade: 'warn' as const}]];
		return lines.slice(0, rows).map((line) => fitSegments(line, width));
	}
	if (gpu.gpus.length === 0) return [[{text: 'GPU  no GPUs reported by nvidia-smi', dim: true}]];
	const fits = gpu.gpus.length <= rows;
	const shown = fits ? gpu.gpus : gpu.gpus.slice(0, rows - 1);
	const nameWidth = Math.min(
		12,
		Math.max(6, ...shown.map((g) => textWidth(shortGpuName(g.name, true)))),
	);
	const lines = shown.map((g, i) =>
		compactGpuLine(g, history[g.uuid] ?? [], width, {
			nameWidth,
			tag: gpu.simulated && i === 0 ? 'simulated' : '',
		}),
	);
	if (!fits) lines.push([{text: `… ${gpu.gpus.length - shown.length} more GPUs`, dim: true}]);
	return lines;
}

/**
 * The GPU pane: per GPU its name, utilization bar and sparkline, memory, temperature, power and
 * fan, then the processes by GPU memory; in `compact` mode one line per GPU. Never wider than
 * `width` nor taller than `height`.
 */
export function GpuPane({
	gpu,
	history,
	host,
	width,
	height,
	compact,
	focused,
	color,
	hostLabel,
	kernels = [],
}: GpuPaneProps) {
	let pane;
	if (compact) {
		// One column for the focus mark, as the other compact panes have.
		const lines = compactLines(gpu, history, width - 1, height);
		pane = (
			<Box
				width={width}
				height={Math.min(height, lines.length)}
				flexDirection="column"
				flexShrink={0}
			>
				{lines.map((segments, index) => (
					<Line
						key={index}
						segments={[{text: focused && index === 0 ? '›' : ' ', accent: true}, ...segments]}
					/>
				))}
			</Box>
		);
	} else {
		// The panel's border and padding take two columns each side, the title and bottom rows.
		const lines = wideLines(gpu, history, width - 4, height - 2, notebookOwners(kernels));
		pane = (
			<Panel title={title(gpu, host, hostLabel)} width={width} height={height} focused={focused}>
				{lines.map((segments, index) => (
					<Line key={index} segments={segments} />
				))}
			</Panel>
		);
	}
	if (color === undefined) return pane;
	return <ThemeContext.Provider value={makeTheme(color)}>{pane}</ThemeContext.Provider>;
}
