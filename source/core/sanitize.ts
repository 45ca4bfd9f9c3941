/**
 * The one sanitiser for text that comes from a remote side: server messages, prompts, GPU and
 * process names, log lines, agent events. Applied where such text enters the store and in every
 * plain-text printer, so no escape sequence or control byte of theirs ever reaches the terminal.
 */

// CSI and OSC (ended by BEL or ST) and DCS/APC/PM/SOS strings, then any other ESC pair; and the
// same introduced by their 8-bit C1 forms (CSI U+009B, OSC U+009D, DCS U+0090, SOS U+0098, PM
// U+009E, APC U+009F; ST U+009C), so not even the payload of such a string is left behind.
/* eslint-disable no-control-regex */
const escapeSequences =
	/(?:\u001B\[|\u009B)[0-?]*[ -/]*[@-~]|(?:\u001B[\]PX^_]|[\u0090\u0098\u009D-\u009F])[^\u0007\u001B\u009C]*(?:\u0007|\u009C|\u001B\\)?|\u001B[^[\]PX^_]?/g;
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

/** {@link sanitizeLine} for each line of a text whose line breaks are its own (a plain printer's). */
export function sanitizeLines(text: string): string {
	return text.split('\n').map(sanitizeLine).join('\n');
}
