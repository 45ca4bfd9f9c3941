import {Box} from 'ink';
import type {Prompt} from '../core/types.js';
import {useTheme} from '../theme.js';
import {Line, type Segment} from './line.js';
import {Panel} from './panel.js';

/** `ssh-ed25519` → `ED25519`, `ecdsa-sha2-nistp256` → `ECDSA`, as ssh names key types. */
export function keyTypeName(keyType: string): string {
	const bare = keyType.replace(/^ssh-/, '');
	if (bare.startsWith('ecdsa')) return 'ECDSA';
	return bare.toUpperCase();
}

/** ssh's question for an unknown key, and its words when the answer was neither. */
export const hostKeyQuestion = 'Continue connecting (yes/no/[fingerprint])?';
export const hostKeyAskAgain = "Please type 'yes', 'no' or the fingerprint:";

/** The end of `text` that fits `width` columns, cut at the left with `…`. */
function tail(text: string, width: number): string {
	const chars = [...text];
	if (chars.length <= width) return text;
	return `…${chars.slice(chars.length - Math.max(0, width - 1)).join('')}`;
}

/**
 * The prompt's lines, ssh's words for host keys. `draft` is what was typed; `again` shows that a
 * host-key answer was neither yes, no nor the fingerprint; `width` is the room for a line.
 */
export function promptLines(
	prompt: Prompt,
	draft: string,
	options: {readonly again?: boolean; readonly width?: number} = {},
): Segment[][] {
	if (prompt.kind === 'host-key') {
		const question = options.again ? hostKeyAskAgain : hostKeyQuestion;
		// A pasted fingerprint is longer than the room left: show its end, where the cursor is.
		const room = (options.width ?? Number.POSITIVE_INFINITY) - question.length - 2;
		return [
			[{text: `The authenticity of host '${prompt.host}' can't be established.`}],
			[{text: `${keyTypeName(prompt.keyType)} key fingerprint is ${prompt.fingerprint}.`}],
			[
				{text: `${question} `, bold: true},
				{text: `${tail(draft, room)}▏`, accent: true},
			],
		];
	}

	const typed = prompt.echo ? draft : '•'.repeat([...draft].length);
	return [
		[{text: `${prompt.message} `}, {text: `${typed}▏`, accent: true}],
		[{text: 'Enter submits · Esc cancels', dim: true}],
	];
}

export function promptTitle(prompt: Prompt): string {
	return prompt.kind === 'host-key'
		? `Unknown host key (${prompt.hop} hop)`
		: `${prompt.hop} hop asks`;
}

/** Rows the prompt takes: its lines and a border (or a rule when compact). */
export function promptHeight(prompt: Prompt, compact: boolean): number {
	return promptLines(prompt, '').length + (compact ? 1 : 2);
}

type Props = {
	readonly prompt: Prompt;
	readonly draft: string;
	/** A host-key answer was neither yes, no nor the fingerprint: ask again. */
	readonly again?: boolean;
	readonly width: number;
	readonly compact: boolean;
};

export function PromptView({prompt, draft, again = false, width, compact}: Props) {
	const theme = useTheme();
	// The panel's border and padding, or the compact form's leading space, take up to 4 columns.
	const lines = promptLines(prompt, draft, {again, width: width - 4});
	if (compact) {
		const title = `─ ${promptTitle(prompt)} `;
		return (
			<Box flexDirection="column" width={width} height={lines.length + 1} flexShrink={0}>
				<Line
					segments={[
						{
							text: ` ${title}${'─'.repeat(Math.max(0, width - 1 - [...title].length))}`,
							grade: 'warn',
						},
					]}
				/>
				{lines.map((segments, index) => (
					<Line key={index} segments={[{text: ' '}, ...segments]} />
				))}
			</Box>
		);
	}

	return (
		<Panel
			title={promptTitle(prompt)}
			width={width}
			height={lines.length + 2}
			focused
			borderColour={theme.warn}
		>
			{lines.map((segments, index) => (
				<Line key={index} segments={segments} />
			))}
		</Panel>
	);
}
