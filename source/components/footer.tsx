import {memo} from 'react';
import {Box, Text} from 'ink';
import type {Role} from '../core/app-state.js';
import {footerItems, type FooterItem} from '../core/keymap.js';
import {useTheme} from '../theme.js';

type Props = {
	readonly role: Role;
	readonly width: number;
	/** Replaces the key table's items (an overlay's own keys). */
	readonly items?: readonly FooterItem[];
};

/** ` r reconnect  j restart jupyter  …  ? help  q quit`, fitted to the width from the key table. */
export const Footer = memo(function Footer({role, width, items}: Props) {
	const theme = useTheme();
	const fitted = items ? {items, gap: '  '} : footerItems(role, width - 1);
	return (
		<Box width={width} height={1} flexShrink={0}>
			<Text wrap="truncate-end">
				{' '}
				{fitted.items.map((item, index) => (
					<Text key={item.keys}>
						{index > 0 ? fitted.gap : ''}
						<Text color={theme.accent} bold={theme.color}>
							{item.keys}
						</Text>
						{` ${item.label}`}
					</Text>
				))}
			</Text>
		</Box>
	);
});
