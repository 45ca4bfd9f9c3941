import type {Client, ClientChannel} from 'ssh2';

/** Quotes one word for a POSIX shell. */
function shellWord(word: string): string {
	return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** Longest line kept; a runaway line is cut, not buffered without bound. */
const maxLineLength = 4096;
/** On first attach, only this much of an existing log is read back. */
const initialBacklogBytes = 32_768;

/**
 * `tail -F` of a log file on the GPU host over an exec channel (no agent there: `--jupyter-log`).
 * It resumes from the byte offset it reached after a reconnect, so no line is shown twice and
 * none is lost while the hop was down.
 */
export class RemoteLogTail {
	#offset: number | null = null;
	#channel: ClientChannel | null = null;
	#pending = '';

	constructor(
		private readonly options: {
			readonly path: string;
			readonly onLines: (lines: string[]) => void;
			readonly onError?: (message: string) => void;
		},
	) {}

	/** The second hop is ready: follow from where we were (or the log's recent end). */
	attach(client: Client): void {
		this.detach();
		const file = shellWord(this.options.path);
		// The wrapper ends tail when the channel's stdin closes, so no tail outlives the session.
		const start =
			this.#offset === null
				? `s=$(wc -c < ${file} 2>/dev/null || echo 0); o=$((s > ${initialBacklogBytes} ? s - ${initialBacklogBytes} : 0)); printf 'OFFSET %s\\n' "$o"; tail -c +$((o + 1)) -F ${file}`
				: `printf 'OFFSET %s\\n' ${this.#offset}; tail -c +${this.#offset + 1} -F ${file}`;
		const command = `sh -c '${start.replaceAll("'", `'\\''`)} & p=$!; cat >/dev/null; kill $p 2>/dev/null'`;
		client.exec(command, (error, channel) => {
			if (error) {
				this.options.onError?.(`cannot tail ${this.options.path}: ${error.message}`);
				return;
			}

			this.#channel = channel;
			this.#pending = '';
			let header: string | null = '';
			channel.on('error', () => {
				// The hop reports the loss.
			});
			channel.on('data', (chunk: Buffer) => {
				let text = chunk.toString('utf8');
				if (header !== null) {
					// The first line says where the tail starts; it may come in pieces.
					header += text;
					const newline = header.indexOf('\n');
					if (newline === -1) return;
					const match = /^OFFSET (\d+)/.exec(header.slice(0, newline));
					this.#offset = match ? Number(match[1]) : 0;
					text = header.slice(newline + 1);
					header = null;
				}

				this.#offset = (this.#offset ?? 0) + Buffer.byteLength(text);
				const pieces = (this.#pending + text).split('\n');
				this.#pending = (pieces.pop() ?? '').slice(-maxLineLength);
				const lines = pieces.map((line) => line.replace(/\r$/, '').slice(0, maxLineLength));
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
