/**
 * The one sanitiser for text that comes from a remote side: server messages, prompts, GPU and
 * process names, log lines, agent events. Applied where such text enters the store and in every
 * plain-text printer, so no escape sequence or control byte of theirs ever reaches the terminal.
 */

// CSI and OSC (ended by BEL or ST) and DCS/APC/PM/SOS strings, then any other ESC pair.
/* eslint-disable no-control-regex */
const escapeSequences =
	/\u001B\[[0-?]*[ -/]*[@-~]|\u001B[\]PX^_][^\u0007\u001B]*(?:\u0007|\u001B\\)?|\u001B[^[\]PX^_]?/g;
// C0 (tab and newline are handled first), DEL, C1 (U+0080–U+009F), and the bidi overrides that
// reorder what the terminal shows (U+202A–U+202E, U+2066–U+2069).
const controlCharacters = /[\u0000-\u001F\u007F-\u009F\u202A-\u202E\u2066-\u2069]/g;
/* eslint-enable no-control-regex */

/**
 * Make remote text fit for one line of the dashboard or a plain printer: colours and cursor moves
 * stripped, tabs as spaces, other control characters dropped, so it can never move the cursor,
 * write the clipboard (OSC 52) or wrap behind Ink's back.
 */
export function sanitizeLine(text: string): string {
	return text
		.replaceAll(escapeSequences, '')
		.replaceAll('\t', '    ')
		.replaceAll(controlCharacters, '');
}
