import {Box} from 'ink';
import type {Role} from '../core/app-state.js';
import {fit, textWidth} from '../core/format.js';
import {helpRows, helpSections} from '../core/keymap.js';
import {Line, type Segment} from './line.js';
import {Panel} from './panel.js';

/** Every key of the role, grouped, then the config file in use. */
export function helpLines(role: Role, configFile: string | null): Segment[][] {
	const sections = helpSections(role).map((s) => ({title: s.title, rows: helpRows(s.bindings)}));
	const keyWidth = Math.max(...sections.flatMap((s) => s.rows.map((r) => textWidth(r.keys)))) + 2;
	const lines: Segment[][] = [];
	for (const section of sections) {
		lines.push([{text: section.title, bold: true}]);
		for (const row of section.rows) {
			lines.push([{text: `  ${fit(row.keys, keyWidth)}`, accent: true}, {text: row.text}]);
		}
	}

	lines.push([
		{text: 'config  ', bold: true},
		{text: configFile ?? 'none (flags, environment and defaults)', dim: configFile === null},
	]);
	return lines;
}

type Props = {
	readonly role: Role;
	readonly configFile: string | null;
	readonly width: number;
	readonly height: number;
};

/** The `?` overlay: it takes the panes' place; what does not fit is cut, never wrapped. */
export function HelpOverlay({role, configFile, width, height}: Props) {
	const lines = helpLines(role, configFile);
	const content = lines.map((segments, index) => <Line key={index} segments={segments} />);
	if (height < lines.length + 2) {
		return (
			<Box
				flexDirection="column"
				width={width}
				height={height}
				flexShrink={0}
				overflowY="hidden"
				paddingLeft={1}
			>
				{content}
			</Box>
		);
	}

	return (
		<Panel title="Help  keys" width={width} height={height} focused>
			{content}
		</Panel>
	);
}
