import {memo} from 'react';
import {Box} from 'ink';
import {maskTokens} from '../core/events.js';
import {textWidth, truncate} from '../core/format.js';
import {sanitizeLine} from '../core/sanitize.js';
import {useTheme} from '../theme.js';
import {Line} from './line.js';
import {Panel} from './panel.js';

/** Lines that match the filter (case-insensitive substring); all of them when it is empty. */
export function filterLogs(logs: readonly string[], filter: string): readonly string[] {
	if (!filter) return logs;
	const needle = filter.toLowerCase();
	return logs.filter((line) => line.toLowerCase().includes(needle));
}

/**
 * The slice of lines to show: `scroll` lines up from the newest, clamped so the window stays
 * full when there is enough to fill it.
 */
export function visibleLogs(
	lines: readonly string[],
	scroll: number,
	count: number,
): {lines: readonly string[]; scroll: number} {
	if (count <= 0) return {lines: [], scroll: 0};
	const clamped = Math.max(0, Math.min(scroll, lines.length - count));
	const end = lines.length - clamped;
	return {lines: lines.slice(Math.max(0, end - count), end), scroll: clamped};
}

/** `Log  jupyter · following`, `· scrolled`, `· filter: x`. */
export function logTitle(scrolled: boolean, filter: string, editing: boolean): string {
	const parts = ['Log  jupyter', scrolled ? 'scrolled' : 'following'];
	if (filter || editing) parts.push(`filter: ${filter}${editing ? '▏' : ''}`);
	return parts.join(' · ');
}

type Props = {
	readonly logs: readonly string[];
	readonly filter: string;
	readonly editing: boolean;
	readonly scroll: number;
	readonly width: number;
	/** Rows, borders (or the compact separator) included. */
	readonly height: number;
	readonly compact: boolean;
	readonly focused: boolean;
	/** Said instead of `no log lines yet`: why there are none, where they could come from. */
	readonly hint?: string | null;
};

/**
 * Memoised, like the Footer: an idle dashboard redraws each second for the clock and the GPUs, and
 * the log's props change only with a line, a scroll, a filter or a resize.
 */
export const LogPane = memo(function LogPane({
	logs,
	filter,
	editing,
	scroll,
	width,
	height,
	compact,
	focused,
	hint = null,
}: Props) {
	const theme = useTheme();
	const count = Math.max(0, compact ? height - 1 : height - 2);
	const matching = filterLogs(logs, filter);
	const view = visibleLogs(matching, scroll, count);
	const title = logTitle(scroll > 0, filter, editing);
	const empty =
		logs.length === 0
			? (hint ?? 'no log lines yet')
			: matching.length === 0
				? `no lines match “${filter}”`
				: null;
	const body = (
		<>
			{empty && count > 0 ? (
				<Line segments={[{text: `${compact ? ' ' : ''}${empty}`, dim: true}]} />
			) : null}
			{view.lines.map((line, index) => (
				// Masked again here: a line must never put a token on screen, whoever stored it.
				<Line
					key={index}
					segments={[{text: `${compact ? ' ' : ''}${maskTokens(sanitizeLine(line))}`}]}
				/>
			))}
		</>
	);
	if (compact) {
		const label = ` ${truncate(title.replace('Log  ', 'log · '), Math.max(0, width - 6))} `;
		const rule = `${focused ? '›' : ' '}─${label}${'─'.repeat(Math.max(0, width - 2 - textWidth(label)))}`;
		return (
			<Box flexDirection="column" width={width} height={height} flexShrink={0} overflowY="hidden">
				<Line segments={[{text: rule, accent: focused, dim: !focused && theme.color}]} />
				{body}
			</Box>
		);
	}

	return (
		<Panel title={title} width={width} height={height} focused={focused}>
			{body}
		</Panel>
	);
});
