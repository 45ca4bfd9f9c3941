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
