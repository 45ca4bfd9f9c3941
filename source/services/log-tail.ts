import {closeSync, openSync, readSync, statSync} from 'node:fs';
import {StringDecoder} from 'node:string_decoder';
import type {Client, ClientChannel} from 'ssh2';
import {LogLineAssembler} from '../core/log-lines.js';
import {shCommand, shellQuote} from '../core/shell.js';

/** On first attach, only this much of an existing log is read back. */
const initialBacklogBytes = 32_768;
const newline = 0x0a;

/**
 * `tail -F` of a log file on the GPU host over an exec channel (no agent there: `--jupyter-log`).
 * It resumes after a reconnect from the byte offset just past the last whole line it passed on, so
 * no line is shown twice, none is lost while the hop was down, and a line (or a character) cut by
 * the drop is read again whole. Bytes are counted as they come; text is decoded with a streaming
 * decoder, so a character split across chunks stays one character.
 */
export class RemoteLogTail {
	#offset: number | null = null;
	#channel: ClientChannel | null = null;
	readonly #lines = new LogLineAssembler();

	constructor(
		private readonly options: {
			readonly path: string;
			readonly onLines: (lines: string[]) => void;
			readonly onError?: (message: string) => void;
		},
	) {}

	/** Byte offset in the file just past the last whole line passed on; null before the first. */
	get offset(): number | null {
		return this.#offset;
	}

	/** The second hop is ready: follow from where we were (or the log's recent end). */
	attach(client: Client): void {
		this.detach();
		const file = shellQuote(this.options.path);
		// A first look starts one byte before the recent end and skips through the first newline:
		// the lines shown are whole (the byte before may itself end a line).
		const start =
			this.#offset === null
				? `s=$(wc -c < ${file} 2>/dev/null || echo 0); o=$((s > ${initialBacklogBytes} ? s - ${initialBacklogBytes} - 1 : 0)); printf 'OFFSET %s\\n' "$o"; tail -c +$((o + 1)) -F ${file}`
				: `printf 'OFFSET %s\\n' ${this.#offset}; tail -c +${this.#offset + 1} -F ${file}`;
		// The wrapper ends tail when the channel's stdin closes, so no tail outlives the session.
		const command = shCommand(`${start} & p=$!; cat >/dev/null; kill $p 2>/dev/null`);
		client.exec(command, (error, channel) => {
			if (error) {
				this.options.onError?.(`cannot tail ${this.options.path}: ${error.message}`);
				return;
			}

			this.#channel = channel;
			// What a dropped channel left unfinished is read again from #offset.
			this.#lines.reset();
			const decoder = new StringDecoder('utf8');
			/** The first line says where the tail starts; it may come in pieces. */
			let header: Buffer | null = Buffer.alloc(0);
			/** File offset of the next byte to arrive. */
			let position = 0;
			let skipFirst = false;
			channel.on('error', () => {
				// The hop reports the loss.
			});
			channel.on('data', (chunk: Buffer) => {
				let data = chunk;
				if (header !== null) {
					header = Buffer.concat([header, chunk]);
					const end = header.indexOf(newline);
					if (end === -1) return;
					const match = /^OFFSET (\d+)$/.exec(header.subarray(0, end).toString('latin1'));
					position = match ? Number(match[1]) : 0;
					skipFirst = this.#offset === null && position > 0;
					if (this.#offset === null) this.#offset = position;
					data = header.subarray(end + 1);
					header = null;
				}

				if (skipFirst) {
					const end = data.indexOf(newline);
					if (end === -1) {
						position += data.length;
						return;
					}

					position += end + 1;
					this.#offset = position;
					data = data.subarray(end + 1);
					skipFirst = false;
				}

				const last = data.lastIndexOf(newline);
				if (last !== -1) this.#offset = position + last + 1;
				position += data.length;
				const lines = this.#lines.push(decoder.write(data));
				if (lines.length > 0) this.options.onLines(lines);
			});
			channel.stderr.on('data', (chunk: Buffer) => {
				const message = chunk.toString('utf8').trim();
				if (message) this.options.onError?.(message);
			});
		});
	}

	detach(): void {
		this.#channel?.end();
		this.#channel?.destroy();
		this.#channel = null;
	}
}

const tailChunkBytes = 256 * 1024;

/** Options of {@link FileLogTail}. */
export type FileLogTailOptions = {
	readonly path: string;
	/** Applied to every line before it is passed on (tokens out). */
	readonly mask: (line: string) => string;
	readonly onLines: (lines: string[]) => void;
};

/** Where the log is read from, and the text not yet a whole line. */
type TailState = {
	offset: number;
	ino: number;
	skipFirst: boolean;
	readonly decoder: StringDecoder;
	readonly lines: LogLineAssembler;
};

/**
 * A local log file followed by polling (`read()` on a timer): the file belongs to another process
 * (Jupyter's log), which may rotate or truncate it. Lines come out whole, masked.
 */
export class FileLogTail {
	readonly #options: FileLogTailOptions;

	#state: TailState;
	#lastLine: string | undefined;

	constructor(options: FileLogTailOptions) {
		this.#options = options;
		this.#state = this.#newState(0, -1, false);
	}

	/** The last line passed on, if any. */
	get lastLine(): string | undefined {
		return this.#lastLine;
	}

	/** Follow the log from its end (a new start) or from its last few KB (adoption). */
	start(fromRecent: boolean): void {
		let size = 0;
		let ino = -1;
		try {
			const stat = statSync(this.#options.path);
			size = stat.size;
			ino = stat.ino;
		} catch {
			// Not there yet.
		}

		const offset = fromRecent ? Math.max(0, size - 8192) : size;
		this.#state = this.#newState(offset, ino, fromRecent && offset > 0);
		this.read();
	}

	/**
	 * Where the log is read from, and the text not yet a whole line. `skipFirst`: the offset may be
	 * mid-line (adoption), so what comes before the first newline is dropped.
	 */
	#newState(offset: number, ino: number, skipFirst: boolean): TailState {
		return {
			offset,
			ino,
			skipFirst,
			decoder: new StringDecoder('utf8'),
			// Progress bars (`\r`) kept in their last state, runaway lines cut: no line can outgrow
			// what a laptop accepts (the control protocol's line limit).
			lines: new LogLineAssembler({mask: this.#options.mask}),
		};
	}

	/** Emit the log's new complete lines, masked. The file is polled: it belongs to Jupyter. */
	read(): void {
		let stat;
		try {
			stat = statSync(this.#options.path);
		} catch {
			return;
		}

		if (stat.ino !== this.#state.ino || stat.size < this.#state.offset) {
			// Rotated or truncated: start over at its beginning.
			this.#state = this.#newState(0, stat.ino, false);
		}

		const tail = this.#state;
		if (stat.size <= tail.offset) return;
		const length = Math.min(stat.size - tail.offset, tailChunkBytes);
		const buffer = Buffer.alloc(length);
		let read = 0;
		try {
			const fd = openSync(this.#options.path, 'r');
			try {
				read = readSync(fd, buffer, 0, length, tail.offset);
			} finally {
				closeSync(fd);
			}
		} catch {
			return;
		}

		tail.offset += read;
		let text = tail.decoder.write(buffer.subarray(0, read));
		if (tail.skipFirst) {
			const newline = text.indexOf('\n');
			if (newline === -1) return;
			text = text.slice(newline + 1);
			tail.skipFirst = false;
		}

		const lines = tail.lines.push(text).filter((line) => line.length > 0);
		if (lines.length === 0) return;
		this.#lastLine = lines.at(-1);
		this.#options.onLines(lines);
	}
}
