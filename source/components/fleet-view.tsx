import {Box, Text} from 'ink';
import {fleetFooterItems, fleetHelp, fleetSummary, type FleetRow} from '../core/fleet.js';
import {fit, formatMiBPair, textWidth, unknown} from '../core/format.js';
import type {Notice} from '../core/types.js';
import {
	gradeGlyph,
	gradePercent,
	hopGrade,
	jupyterGrade,
	makeTheme,
	ThemeContext,
	type Grade,
} from '../theme.js';
import {Footer} from './footer.js';
import {Line, type Segment} from './line.js';

type Props = {
	readonly rows: readonly FleetRow[];
	readonly selected: number;
	/** What the hosts' chains go through, for the header: `via relay`. */
	readonly via: string;
	readonly columns: number;
	/** Lines the view may use (the terminal's less its last). */
	readonly height: number;
	readonly color: boolean;
	readonly help: boolean;
	/** The latest notice of any host, with that host's name, or null. */
	readonly notice: {readonly host: string; readonly notice: Notice} | null;
};

/** `● relay ● p507`, a hop that is down with its state after it: `◐ p508 waiting`. */
export function hopsCell(row: FleetRow): Segment[] {
	const segments: Segment[] = [];
	for (const [index, hop] of row.hops.entries()) {
		const grade = hopGrade(hop.state);
		if (index > 0) segments.push({text: ' '});
		segments.push({text: gradeGlyph[grade], grade}, {text: ` ${hop.name}`});
		if (hop.state !== 'ready') segments.push({text: ` ${hop.state}`, grade});
	}

	return segments;
}

/** `4× 37%  8.1/96.0 GiB` (the GPUs, their mean utilisation, memory summed), or the GPU error. */
export function gpuCell(row: FleetRow): Segment[] {
	if (row.gpuError && row.gpus === 0) return [{text: row.gpuError, grade: 'bad'}];
	if (row.gpus === 0) return [{text: unknown, dim: true}];
	const memoryPercent =
		row.memoryUsedMiB !== null && row.memoryTotalMiB
			? (row.memoryUsedMiB / row.memoryTotalMiB) * 100
			: null;
	return [
		{text: `${row.gpus}× `},
		{
			text: row.utilization === null ? unknown : `${row.utilization}%`,
			grade: gradePercent(row.utilization),
		},
		{text: '  '},
		{
			text: formatMiBPair(row.memoryUsedMiB, row.memoryTotalMiB),
			grade: gradePercent(memoryPercent),
		},
	];
}

/** `2 (1 busy)`, or `–` while Jupyter is not reached. */
export function kernelsCell(row: FleetRow): Segment[] {
	if (row.jupyter === null || row.jupyter === 'unreachable') return [{text: unknown, dim: true}];
	return [{text: row.busy > 0 ? `${row.kernels} (${row.busy} busy)` : String(row.kernels)}];
}

const cellText = (segments: readonly Segment[]) => segments.map((s) => s.text).join('');

/** Pad a cell's segments to `width` columns (cut with `…` when longer). */
function padCell(segments: readonly Segment[], width: number): Segment[] {
	const text = cellText(segments);
	if (textWidth(text) <= width) return [...segments, {text: ' '.repeat(width - textWidth(text))}];
	// Too long: one plain run, cut; the grade of its first part stays.
	return [{text: fit(text, width), grade: segments[0]?.grade ?? null}];
}

/**
 * The fleet view: a row per GPU host — its hops, its GPUs (mean utilisation, memory summed), its
 * Jupyter and kernels — the selected one marked; `?` shows the keys instead. Never taller than
 * `height`: with more hosts than fit, the rows around the selection are shown.
 */
export function FleetView({rows, selected, via, columns, height, color, help, notice}: Props) {
	const theme = makeTheme(color);
	const width = Math.max(20, columns);
	const hostWidth = Math.min(24, Math.max(4, ...rows.map((row) => textWidth(row.name)))) + 2;
	const hopsWidth = Math.max(4, ...rows.map((row) => textWidth(cellText(hopsCell(row))))) + 2;
	const gpuWidth = Math.max(3, ...rows.map((row) => textWidth(cellText(gpuCell(row))))) + 2;
	const jupyterWidth =
		Math.max(7, ...rows.map((row) => textWidth(row.jupyter ?? (row.up ? 'starting' : unknown)))) +
		2;
	const summary = fleetSummary(rows);
	const summaryGrade: Grade = rows.every((row) => row.up) ? 'good' : 'warn';
	const left = ` gpujup fleet · ${rows.length} GPU hosts ${via}`;
	const right = notice
		? {
				text: `${notice.host}: ${notice.notice.text}`,
				grade: (notice.notice.level === 'info'
					? 'good'
					: notice.notice.level === 'warn'
						? 'warn'
						: 'bad') as Grade,
			}
		: {text: summary, grade: summaryGrade};
	const gap = Math.max(1, width - textWidth(left) - textWidth(right.text) - 1);
	const asking = rows.find((row) => row.asking);
	// Header, a blank line, the column titles, the rows, a blank line, the footer.
	const room = Math.max(1, height - 5 - (asking ? 1 : 0));
	const first = Math.min(Math.max(0, selected - room + 1), Math.max(0, rows.length - room));
	const shown = rows.slice(first, first + room);

	const body = help ? (
		<Box flexDirection="column">
			<Line segments={[{text: ' Fleet keys', bold: true, accent: true}]} />
			{fleetHelp.slice(0, Math.max(1, height - 4)).map((line) => (
				<Line
					key={line.keys}
					segments={[{text: `   ${line.keys.padEnd(8)}`, accent: true}, {text: line.description}]}
				/>
			))}
		</Box>
	) : (
		<Box flexDirection="column">
			<Line
				segments={[
					{text: '   '},
					...padCell([{text: 'HOST'}], hostWidth),
					...padCell([{text: 'HOPS'}], hopsWidth),
					...padCell([{text: 'GPUS'}], gpuWidth),
					...padCell([{text: 'JUPYTER'}], jupyterWidth),
					{text: 'KERNELS'},
				].map((segment) => ({...segment, dim: true}))}
			/>
			{shown.map((row, offset) => {
				const index = first + offset;
				const mark = index === selected;
				return (
					<Line
						key={row.name}
						segments={[
							{text: mark ? ' › ' : '   ', accent: mark},
							...padCell(
								[{text: row.asking ? `${row.name}?` : row.name, bold: mark, accent: mark}],
								hostWidth,
							),
							...padCell(hopsCell(row), hopsWidth),
							...padCell(gpuCell(row), gpuWidth),
							...padCell(
								[
									{
										text: row.jupyter ?? (row.up ? 'starting' : unknown),
										grade: jupyterGrade(row.jupyter),
									},
								],
								jupyterWidth,
							),
							...kernelsCell(row),
						]}
					/>
				);
			})}
		</Box>
	);

	return (
		<ThemeContext.Provider value={theme}>
			<Box flexDirection="column" width={width}>
				<Line
					segments={[
						{text: left, bold: true},
						{text: ' '.repeat(gap)},
						{text: right.text, grade: right.grade},
					]}
				/>
				<Text> </Text>
				{body}
				{asking && !help ? (
					<Line
						segments={[
							{
								text: ` ${asking.name} asks a question: select it and press enter to answer`,
								grade: 'warn',
							},
						]}
					/>
				) : null}
				<Text> </Text>
				<Footer
					role="connect"
					width={width}
					items={
						help
							? [
									{keys: '? esc', label: 'close help'},
									{keys: 'q', label: 'quit'},
								]
							: fleetFooterItems()
					}
				/>
			</Box>
		</ThemeContext.Provider>
	);
}
