/**
 * Log text → lines, as a terminal would show them: `\r` returns to the start of the line and
 * what follows overwrites it (progress bars), and a line is never held or passed on longer than a
 * bound, so one runaway line cannot grow a buffer without limit or break a JSON-lines peer. Pure.
 */

/** Longest line kept, in characters (UTF-16 units); the rest is dropped and the cut marked. */
export const maxLogLineChars = 8192;

/** Room kept past the bound so that a mask (a token) can see a whole word before the cut. */
const slackChars = 256;

/** What a cut line ends with. */
export function lineCutMarker(maxChars: number): string {
	return ` … [gpujup: line cut at ${maxChars} characters]`;
}

/** Options of {@link LogLineAssembler}. */
export type LogLineOptions = {
	/** Default {@link maxLogLineChars}. */
	readonly maxChars?: number;
	/** Applied to each whole line before it is cut (token masking). */
	readonly mask?: (line: string) => string;
};

/**
 * Assembles decoded text into lines. `push` returns the lines the text completed; the unfinished
 * one waits for the next push, bounded.
 */
export class LogLineAssembler {
	readonly #max: number;
	readonly #mask: (line: string) => string;
	#line = '';
	#cursor = 0;
	#cut = false;

	constructor(options: LogLineOptions = {}) {
		this.#max = options.maxChars ?? maxLogLineChars;
		this.#mask = options.mask ?? ((line) => line);
	}

	/** Feeds `text`; returns every line it ended (`\n`), each in its last state. */
	push(text: string): string[] {
		const lines: string[] = [];
		const breaks = /[\r\n]/g;
		let start = 0;
		for (let match = breaks.exec(text); match; match = breaks.exec(text)) {
			this.#write(text.slice(start, match.index));
			start = match.index + 1;
			if (match[0] === '\n') lines.push(this.#take());
			else this.#cursor = 0;
		}

		this.#write(text.slice(start));
		return lines;
	}

	/** Forgets the unfinished line (the text will be read again from its start). */
	reset(): void {
		this.#line = '';
		this.#cursor = 0;
		this.#cut = false;
	}

	/** Writes at the cursor, overwriting what a `\r` went back over; keeps at most max + slack. */
	#write(segment: string): void {
		if (segment === '') return;
		const room = this.#max + slackChars - this.#cursor;
		if (room <= 0) {
			this.#cut = true;
			return;
		}

		let piece = segment;
		if (piece.length > room) {
			piece = piece.slice(0, room);
			this.#cut = true;
		}

		const line = this.#line;
		this.#line = line.slice(0, this.#cursor) + piece + line.slice(this.#cursor + piece.length);
		this.#cursor += piece.length;
	}

	#take(): string {
		let line = this.#mask(this.#line);
		if (this.#cut || line.length > this.#max) {
			let end = this.#max;
			// Never split a surrogate pair.
			const code = line.charCodeAt(end - 1);
			if (code >= 0xd8_00 && code <= 0xdb_ff) end -= 1;
			line = line.slice(0, end) + lineCutMarker(this.#max);
		}

		this.reset();
		return line;
	}
}
