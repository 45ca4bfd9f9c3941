import {spawn} from 'node:child_process';

/** OSC 52: the terminal (local, over SSH, in tmux with `set-clipboard on`) sets its clipboard. */
export function osc52(text: string): string {
	return `\u001B]52;c;${Buffer.from(text, 'utf8').toString('base64')}\u0007`;
}

/** tmux's passthrough form, so the outer terminal gets it even without `set-clipboard`. */
export function tmuxPassthrough(sequence: string): string {
	return `\u001BPtmux;${sequence.replaceAll('\u001B', '\u001B\u001B')}\u001B\\`;
}

/** A local clipboard tool for when a display exists; the text goes on its stdin, never argv. */
function systemClipboardCommand(env: NodeJS.ProcessEnv): [string, string[]] | null {
	if (process.platform === 'darwin') return ['pbcopy', []];
	if (env['WAYLAND_DISPLAY']) return ['wl-copy', []];
	if (env['DISPLAY']) return ['xclip', ['-selection', 'clipboard']];
	return null;
}

/**
 * Copies text every way that may reach the user's clipboard. Never throws: a headless box just
 * gets the escape sequences.
 */
export function copyToClipboard(
	text: string,
	out: NodeJS.WritableStream = process.stdout,
	env: NodeJS.ProcessEnv = process.env,
): void {
	const sequence = osc52(text);
	out.write(sequence);
	if (env['TMUX']) out.write(tmuxPassthrough(sequence));
	const command = systemClipboardCommand(env);
	if (!command) return;
	try {
		const child = spawn(command[0], command[1], {stdio: ['pipe', 'ignore', 'ignore']});
		child.on('error', () => {
			// No such tool: OSC 52 already went out.
		});
		child.stdin.on('error', () => {});
		child.stdin.end(text);
	} catch {
		// As above.
	}
}
