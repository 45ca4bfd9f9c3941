import {Box, Text} from 'ink';
import type {ReactNode} from 'react';
import {textWidth, truncate} from '../core/format.js';
import {useTheme} from '../theme.js';

type Props = {
	/** `Path`, `Log  jupyter · following`: drawn into the top border, lazydocker style. */
	readonly title: string;
	readonly width: number;
	/** Rows, borders included. */
	readonly height: number;
	readonly focused: boolean;
	/** Border colour override (a prompt's warning). */
	readonly borderColour?: string | undefined;
	readonly children?: ReactNode;
};

/** A bordered pane whose title sits in the top border; the focused one has a coloured border. */
export function Panel({title, width, height, focused, borderColour, children}: Props) {
	const theme = useTheme();
	const colour = borderColour ?? (focused ? theme.accent : theme.border);
	const label = truncate(title, Math.max(0, width - 5));
	const fill = Math.max(0, width - 4 - textWidth(label));
	// Focus shows in the border's weight too, so it survives NO_COLOR.
	const [corner, rule, end] = focused ? ['┏', '━', '┓'] : ['┌', '─', '┐'];
	const top = label
		? `${corner} ${label} ${rule.repeat(fill)}${end}`
		: `${corner}${rule.repeat(Math.max(0, width - 2))}${end}`;
	return (
		<Box flexDirection="column" width={width} height={height} flexShrink={0}>
			<Text color={colour} bold={theme.color && focused} wrap="truncate-end">
				{top}
			</Text>
			{/* Keyed by the weight: Ink applies only the style props that changed, and a new
			    borderStyle alone puts back the top border that borderTop={false} removed (the
			    pane's first line then sits under the next one until a resize re-lays it out). */}
			<Box
				key={focused ? 'bold' : 'single'}
				borderStyle={focused ? 'bold' : 'single'}
				borderTop={false}
				borderColor={colour}
				width={width}
				height={height - 1}
				paddingX={1}
				flexDirection="column"
				overflowY="hidden"
			>
				{children}
			</Box>
		</Box>
	);
}
