/**
 * A notification in the user's terminal: the bell, then OSC 9 (iTerm2, WezTerm, Windows Terminal,
 * kitty) and OSC 777 (foot, VTE terminals, rxvt), each also in tmux's passthrough form inside
 * tmux. A terminal that knows neither ignores them.
 */
import {sanitizeLine} from '../core/sanitize.js';
import {tmuxPassthrough} from './clipboard.js';

/** The sequences for one notification; their text has no control byte and no `;` in the title. */
export function notificationSequences(title: string, body: string): string[] {
	const cleanTitle = sanitizeLine(title).replaceAll(';', ',').slice(0, 200);
	const cleanBody = sanitizeLine(body).slice(0, 500);
	return [
		`\u001B]9;${cleanTitle}: ${cleanBody}\u0007`,
		`\u001B]777;notify;${cleanTitle};${cleanBody}\u0007`,
	];
}

export function notifyTerminal(
	title: string,
	body: string,
	out: NodeJS.WritableStream = process.stdout,
	env: NodeJS.ProcessEnv = process.env,
): void {
	out.write('\u0007');
	for (const sequence of notificationSequences(title, body)) {
		out.write(sequence);
		if (env['TMUX']) out.write(tmuxPassthrough(sequence));
	}
}
