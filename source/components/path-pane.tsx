import {Box} from 'ink';
import type {AppState} from '../core/app-state.js';
import {formatAgo, formatDuration, formatRtt, portOf, secondsUntil} from '../core/format.js';
import type {ForwardStatus, HopStatus} from '../core/types.js';
import {gradeGlyph, hopGrade, jupyterGrade, type Grade} from '../theme.js';
import {jobSegments} from './job-line.js';
import {Line, type Segment} from './line.js';
import {Panel} from './panel.js';

/** What a hop's sentences need of the state: the GPU host's name, and the chain. */
type NameState = Pick<AppState, 'title'> & {readonly hops?: readonly HopStatus[]};

/**
 * What the user calls a hop in sentences: the GPU host's name; `relay` for the first hop of a
 * two-hop chain; in a longer chain, each hop by the alias the user gave it (`bastion`, `login`).
 */
export function hopName(hop: HopStatus, state: NameState): string {
	if (hop.hop === 'host') return state.title || 'GPU host';
	if (hop.hop === 'jump') return hop.name;
	return state.hops?.some((other) => other.hop === 'jump') ? hop.name : 'relay';
}

function glyph(hop: HopStatus): Segment {
	const grade = hopGrade(hop.state);
	return {text: gradeGlyph[grade], grade};
}

/** The forward that leads to Jupyter: the one labelled so, else the first. */
export function jupyterForward(forwards: readonly ForwardStatus[]): ForwardStatus | undefined {
	return forwards.find((f) => f.label === 'jupyter') ?? forwards[0];
}

const gradeOrder: readonly Grade[] = ['good', 'warn', 'bad'];

function worse(a: Grade, b: Grade): Grade {
	return gradeOrder.indexOf(a) >= gradeOrder.indexOf(b) ? a : b;
}

/** The local URL as shown on the path line: no token, no trailing slash. */
function localUrl(state: AppState): string | null {
	const forward = jupyterForward(state.forwards);
	const url = state.jupyter?.url ?? (forward ? `http://${forward.local}/` : null);
	return url === null ? null : url.replace(/\/$/, '');
}

/**
 * The path line, read left to right: laptop → relay → GPU host → jupyter → local URL (connect,
 * demo), or GPU host → relay → probe (host). `compact` uses short names for 80 columns.
 */
export function pathSegments(state: AppState, compact: boolean): Segment[] {
	const link = compact ? ' ' : ' ──';
	const segments: Segment[] = [];
	if (state.role === 'host') {
		segments.push({text: state.title || 'this host', bold: true});
		for (const hop of state.hops) {
			segments.push({text: link}, glyph(hop), {
				text: ` ${compact ? hopName(hop, state) : hop.label}`,
			});
		}

		const reverse = state.hops[0];
		if (reverse) {
			const grade = hopGrade(reverse.state);
			const probe =
				reverse.state === 'ready' ? 'probe ok' : grade === 'bad' ? 'probe failed' : 'probe …';
			segments.push({text: link}, {text: gradeGlyph[grade], grade}, {text: ` ${probe}`});
		}

		return segments;
	}

	segments.push({text: 'laptop', bold: true});
	for (const hop of state.hops) {
		segments.push({text: link}, glyph(hop), {
			text: ` ${compact ? hopName(hop, state) : hop.label}`,
		});
	}

	const forward = jupyterForward(state.forwards);
	// Behind a hop that is down, Jupyter's last known state is only a memory: no green for it.
	const upstream: Grade = state.hops.every((hop) => hop.state === 'ready') ? 'good' : 'warn';
	const jupyter = worse(jupyterGrade(state.jupyter?.state ?? null), upstream);
	const port = forward ? ` :${portOf(forward.remote)}` : '';
	segments.push(
		{text: link},
		{text: gradeGlyph[jupyter], grade: jupyter},
		{text: compact ? ' jupyter' : ` jupyter${port}`},
	);
	const url = localUrl(state);
	if (url) {
		const listening: Grade = forward?.state === 'closed' ? 'bad' : 'good';
		segments.push(
			{text: compact ? '  ' : ' ──'},
			{text: compact ? '→' : '▶', grade: worse(listening, jupyter)},
			{text: ` ${url}`},
		);
	}

	const reconnects = state.hops.reduce((sum, hop) => sum + hop.reconnects, 0);
	if (compact && reconnects > 0) segments.push({text: `   rc ${reconnects}`, dim: true});
	return segments;
}

/** The first hop that is not ready, in path order: the one the user needs to hear about. */
export function downHop(hops: readonly HopStatus[]): HopStatus | undefined {
	return hops.find((hop) => hop.state !== 'ready');
}

/**
 * What is wrong with a hop and what happens next, in words:
 * `relay: lost (no reply for 15 s) · retrying in 3 s · r to retry now`.
 */
export function hopSentence(hop: HopStatus, state: NameState, now: number): string {
	const name = hopName(hop, state);
	const reason = hop.error ? ` (${hop.error.message})` : '';
	switch (hop.state) {
		case 'ready': {
			return `${name}: ready`;
		}

		case 'connecting': {
			return `${name}: connecting${hop.attempt > 1 ? ` (attempt ${hop.attempt})` : ''}…`;
		}

		case 'lost':
		case 'waiting': {
			const word = hop.state === 'lost' ? 'lost' : 'down';
			const next =
				hop.retryAt === null
					? 'reconnecting…'
					: secondsUntil(hop.retryAt, now) === 0
						? 'retrying now'
						: `retrying in ${secondsUntil(hop.retryAt, now)} s`;
			return `${name}: ${word}${reason} · ${next} · r to retry now`;
		}

		case 'failed': {
			if (!hop.error) return `${name}: failed · r to retry`;
			// A changed host key must not look retryable: the message says what to do instead.
			if (hop.error.kind === 'host-key') return `${name}: ${hop.error.message}`;
			return `${name}: ${hop.error.message} · r to retry`;
		}

		case 'closed': {
			return `${name}: closed${reason}`;
		}
	}
}

/**
 * `relay: ready  rtt 38 ms  up 2h13m  reconnects 1 (last: timeout 41m ago)`; `short` (a chain of
 * three hops or more, whose numbers share one line): `relay: ready  rtt 38 ms  rc 1`.
 */
export function hopNumbers(hop: HopStatus, state: NameState, now: number, short = false): string {
	const parts = [`${hopName(hop, state)}: ${hop.state}`, `rtt ${formatRtt(hop.rttMs)}`];
	if (short) {
		if (hop.reconnects > 0) parts.push(`rc ${hop.reconnects}`);
		return parts.join('  ');
	}

	if (hop.readySince !== null) parts.push(`up ${formatDuration(now - hop.readySince)}`);
	if (hop.reconnects > 0) {
		const last = hop.lastLoss
			? ` (last: ${hop.lastLoss.kind} ${formatAgo(hop.lastLoss.at, now)})`
			: '';
		parts.push(`reconnects ${hop.reconnects}${last}`);
	}

	return parts.join('  ');
}

/** Under the path line: the failing hop's sentence, or every hop's numbers when all are up. */
export function statusSegments(state: AppState, now: number): Segment[] {
	const down = downHop(state.hops);
	if (down) return [{text: hopSentence(down, state, now), grade: hopGrade(down.state)}];
	const short = state.hops.length > 2;
	return [
		{
			text: state.hops
				.map((hop) => hopNumbers(hop, state, now, short))
				.join(short ? '   ' : '    '),
			dim: true,
		},
	];
}

/** `forwards  19507 → jupyter (3 open)   6006 → tensorboard (0 open)` */
export function forwardSegments(forwards: readonly ForwardStatus[]): Segment[] {
	const segments: Segment[] = [{text: 'forwards', dim: true}];
	for (const forward of forwards) {
		const closed = forward.state === 'closed';
		segments.push({
			text: `  ${portOf(forward.local)} → ${forward.label} (${closed ? 'closed' : `${forward.connections} open`})`,
			grade: closed ? 'bad' : null,
		});
	}

	return segments;
}

/** Content lines of the wide path box (the layout sizes the box from this). */
export function pathLines(state: AppState): number {
	return (state.forwards.length > 0 ? 3 : 2) + (state.job ? 1 : 0);
}

type Props = {
	readonly state: AppState;
	readonly now: number;
	readonly width: number;
	readonly height: number;
	readonly compact: boolean;
	readonly focused: boolean;
};

export function PathPane({state, now, width, height, compact, focused}: Props) {
	if (compact) {
		// 80×24: one line, plus what happens next when a hop is down.
		return (
			<Box flexDirection="column" width={width} height={height} flexShrink={0}>
				<Line
					segments={[{text: focused ? '›' : ' ', accent: true}, ...pathSegments(state, true)]}
				/>
				{height > 1 && downHop(state.hops) ? (
					<Line segments={[{text: ' '}, ...statusSegments(state, now)]} />
				) : null}
				{state.job && height > (downHop(state.hops) ? 2 : 1) ? (
					<Line segments={[{text: '  '}, ...jobSegments(state.job, now)]} />
				) : null}
			</Box>
		);
	}

	return (
		<Panel title="Path" width={width} height={height} focused={focused}>
			<Line segments={pathSegments(state, false)} />
			<Line segments={statusSegments(state, now)} />
			{state.forwards.length > 0 ? <Line segments={forwardSegments(state.forwards)} /> : null}
			{state.job ? <Line segments={jobSegments(state.job, now)} /> : null}
		</Panel>
	);
}
