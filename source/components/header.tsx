import {Box, Text} from 'ink';
import type {AppState, StoredNotification} from '../core/app-state.js';
import {formatDuration, secondsUntil, textWidth, truncate} from '../core/format.js';
import {visibleNotice} from '../core/notice.js';
import {hopGrade, useTheme, type Grade} from '../theme.js';
import {Line, type Segment} from './line.js';
import {downHop, hopName} from './path-pane.js';

/** How long a notification stays in the header (it stays in the log). */
export const notificationTtlMs = 8000;

/** The header's notification now: `✓ Cell finished: train/resnet.ipynb`, or null. */
export function headerNotification(
	notifications: readonly StoredNotification[],
	now: number,
): Segment | null {
	const last = notifications.at(-1);
	if (!last || now - last.at > notificationTtlMs || now < last.at - 1000) return null;
	const look: Record<string, {glyph: string; grade: Grade}> = {
		'cell-done': {glyph: '✓', grade: 'good'},
		'kernel-died': {glyph: '✗', grade: 'bad'},
		'job-ended': {glyph: '✗', grade: 'bad'},
	};
	const {glyph, grade} = look[last.kind] ?? {glyph: '↻', grade: 'warn'};
	return {text: `${glyph} ${last.title}`, grade};
}

/** `all hops up · 2h13m`, or what is down: `relay lost · retry in 3 s`. */
export function headerStatus(
	state: AppState,
	now: number,
	compact: boolean,
): {text: string; grade: Grade} {
	if (state.hops.length === 0) return {text: 'starting…', grade: 'warn'};
	const down = downHop(state.hops);
	if (!down) {
		const since = Math.max(...state.hops.map((hop) => hop.readySince ?? now));
		const what = state.role === 'host' ? 'tunnel up' : compact ? 'hops up' : 'all hops up';
		return {text: `${what} · ${formatDuration(now - since)}`, grade: 'good'};
	}

	const name = hopName(down, state);
	const retry =
		(down.state === 'waiting' || down.state === 'lost') && down.retryAt !== null
			? ` · retry in ${secondsUntil(down.retryAt, now)} s`
			: '';
	const word = down.state === 'waiting' ? 'down' : down.state;
	return {
		text: `${name} ${word}${down.state === 'connecting' ? '…' : ''}${retry}`,
		grade: hopGrade(down.state),
	};
}

/**
 * The header's name for the GPU host: its own (from `hostname`, once reached), else `GPU host` with
 * how far the chain got, never the user name or a made-up host. At 80 columns the word is left to
 * the status on the right, which names the hop that is down.
 */
export function headerTitle(state: AppState, compact: boolean): string {
	if (state.title || state.role === 'host') return state.title;
	const host = state.hops.find((hop) => hop.hop === 'host');
	if (compact || !host || host.state === 'ready') return 'GPU host';
	return `GPU host (${host.state === 'failed' ? 'failed' : 'not reached yet'})`;
}

type Props = {
	readonly state: AppState;
	readonly now: number;
	readonly width: number;
	readonly compact: boolean;
};

export function Header({state, now, width, compact}: Props) {
	const theme = useTheme();
	const status = headerStatus(state, now, compact);
	const notice = visibleNotice(state.notice, now);
	const right: Segment[] = [];
	const notification = notice ? null : headerNotification(state.notifications, now);
	if (notification) right.push(notification, {text: ' · '});
	if (notice) {
		right.push(
			{
				text: notice.text,
				grade: notice.level === 'info' ? 'good' : notice.level === 'warn' ? 'warn' : 'bad',
			},
			{text: ' · '},
		);
	}

	right.push(
		{text: status.text, grade: status.grade},
		{text: ' · '},
		{text: '?', accent: true},
		{text: ' help '},
	);
	const rightWidth = Math.min(
		width,
		right.reduce((sum, s) => sum + textWidth(s.text), 0),
	);
	const leftWidth = Math.max(0, width - rightWidth);
	const left = truncate(
		` gpujup${compact ? ' ' : '  '}${[headerTitle(state, compact), state.subtitle].filter(Boolean).join(' ')}`,
		Math.max(0, leftWidth - 1),
	);
	return (
		<Box width={width} height={1} flexShrink={0}>
			<Box width={leftWidth} flexShrink={0}>
				<Text wrap="truncate-end" bold={theme.color}>
					<Text color={theme.accent}>{left.slice(0, 7)}</Text>
					{left.slice(7)}
				</Text>
			</Box>
			<Box width={rightWidth} flexShrink={0} justifyContent="flex-end">
				<Line segments={right} />
			</Box>
		</Box>
	);
}
