import {Box} from 'ink';
import {formatAgo, formatDuration, unknown} from '../core/format.js';
import {describeServers} from '../core/jupyter-runtime.js';
import type {JupyterStatus} from '../core/types.js';
import {jupyterGrade} from '../theme.js';
import {Line, type Segment} from './line.js';
import {Panel} from './panel.js';

/**
 * The URL as the screen shows it. The store never holds the token; a running Jupyter has one,
 * so the screen says so with `•••` (the copy key is the way to get it).
 */
export function displayUrl(jupyter: JupyterStatus): string {
	if (!jupyter.url) return unknown;
	if (jupyter.state !== 'running') return jupyter.url;
	const base = jupyter.url.split('?')[0]!;
	return `${base}?token=•••`;
}

function show(value: number | null): string {
	return value === null ? unknown : String(value);
}

function uptime(jupyter: JupyterStatus, now: number): string {
	return jupyter.startedAt === null ? unknown : formatDuration(now - jupyter.startedAt);
}

function lastActivity(jupyter: JupyterStatus, now: number): string {
	if (!jupyter.lastActivity) return unknown;
	const at = Date.parse(jupyter.lastActivity);
	return Number.isNaN(at) ? unknown : formatAgo(at, now);
}

/** Where the facts come from: `adopted · via agent`. */
function originNote(jupyter: JupyterStatus | null, source: string | null): string {
	// `gpujup host · via gpujup host` says one thing twice.
	const origin = jupyter?.origin === source ? null : jupyter?.origin;
	return [origin, source ? `via ${source}` : null].filter(Boolean).join(' · ');
}

/** The wide pane's lines. */
export function jupyterLines(
	jupyter: JupyterStatus | null,
	source: string | null,
	now: number,
): Segment[][] {
	if (!jupyter) {
		const note = originNote(null, source);
		return [
			[{text: 'waiting for Jupyter…', grade: 'warn'}],
			...(note ? [[{text: note, dim: true}]] : []),
		];
	}

	const lines: Segment[][] = [
		[
			{text: jupyter.state, grade: jupyterGrade(jupyter.state), bold: true},
			{
				text: `  pid ${show(jupyter.pid)}  up ${uptime(jupyter, now)}  restarts ${jupyter.restarts}`,
			},
		],
		[{text: 'url  ', dim: true}, {text: displayUrl(jupyter)}],
		[
			{
				text: `kernels ${show(jupyter.kernels)} · last activity ${lastActivity(jupyter, now)}`,
			},
		],
	];
	const note = originNote(jupyter, source);
	if (jupyter.message) lines.push([{text: jupyter.message, grade: jupyterGrade(jupyter.state)}]);
	// Several servers on the GPU host: which ones, so the user can pick with --jupyter-port.
	if (jupyter.servers && jupyter.servers.length > 1)
		lines.push([{text: 'servers ', dim: true}, {text: describeServers(jupyter.servers)}]);
	if (note) lines.push([{text: note, dim: true}]);
	return lines;
}

/** The 80-column line: `jupyter running · 2 kernels · up 3d4h`. */
export function jupyterLine(jupyter: JupyterStatus | null, now: number): Segment[] {
	if (!jupyter) return [{text: 'jupyter '}, {text: 'waiting…', grade: 'warn'}];
	const parts = [
		jupyter.kernels === null
			? `${unknown} kernels`
			: `${jupyter.kernels} kernel${jupyter.kernels === 1 ? '' : 's'}`,
		`up ${uptime(jupyter, now)}`,
	];
	if (jupyter.restarts > 0) parts.push(`restarts ${jupyter.restarts}`);
	if (jupyter.message) parts.push(jupyter.message);
	return [
		{text: 'jupyter '},
		{text: jupyter.state, grade: jupyterGrade(jupyter.state)},
		{text: ` · ${parts.join(' · ')}`},
	];
}

type Props = {
	readonly jupyter: JupyterStatus | null;
	readonly source: string | null;
	readonly now: number;
	readonly width: number;
	readonly height: number;
	readonly compact: boolean;
	readonly focused: boolean;
};

export function JupyterPane({jupyter, source, now, width, height, compact, focused}: Props) {
	if (compact) {
		return (
			<Box width={width} height={height} flexShrink={0}>
				<Line
					segments={[{text: focused ? '›' : ' ', accent: true}, ...jupyterLine(jupyter, now)]}
				/>
			</Box>
		);
	}

	return (
		<Panel title="Jupyter" width={width} height={height} focused={focused}>
			{jupyterLines(jupyter, source, now).map((segments, index) => (
				<Line key={index} segments={segments} />
			))}
		</Panel>
	);
}
