import {Text} from 'ink';
import {gradeColour, useTheme, type Grade} from '../theme.js';

/** A run of text with one style; a line is a list of them. */
export type Segment = {
	readonly text: string;
	readonly grade?: Grade | null;
	readonly accent?: boolean;
	readonly dim?: boolean;
	readonly bold?: boolean;
};

type Props = {readonly segments: readonly Segment[]};

/** One terminal line: styled segments, cut at the pane's edge, never wrapped. */
export function Line({segments}: Props) {
	const theme = useTheme();
	return (
		<Text wrap="truncate-end">
			{segments.map((s, index) => (
				<Text
					key={index}
					color={s.accent ? theme.accent : gradeColour(theme, s.grade ?? null)}
					dimColor={theme.dim && Boolean(s.dim)}
					bold={theme.color && Boolean(s.bold)}
				>
					{s.text}
				</Text>
			))}
		</Text>
	);
}
