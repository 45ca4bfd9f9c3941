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

/** The prompt's lines, ssh's words for host keys. `draft` is what was typed for a secret. */
export function promptLines(prompt: Prompt, draft: string): Segment[][] {
	if (prompt.kind === 'host-key') {
		return [
			[{text: `The authenticity of host '${prompt.host}' can't be established.`}],
			[{text: `${keyTypeName(prompt.keyType)} key fingerprint is ${prompt.fingerprint}.`}],
			[{text: 'Trust it? [y/N]', bold: true}],
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
	readonly width: number;
	readonly compact: boolean;
};

export function PromptView({prompt, draft, width, compact}: Props) {
	const theme = useTheme();
	const lines = promptLines(prompt, draft);
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
