import {EventEmitter} from 'node:events';
import type {Duplex} from 'node:stream';
import {decodeReply, type ControlReplies} from '../core/control-decode.js';
import {
	encodeLine,
	parseServerLine,
	protocolVersion,
	splitLines,
	type ControlArgs,
	type ControlOp,
	type ControlRequest,
} from '../core/control-protocol.js';
import type {JsonEvent} from '../core/events.js';

/** An error reply from the other side, or a line that breaks the protocol. */
export class ControlError extends Error {
	constructor(message: string) {
		super(message);
		this.name = 'ControlError';
	}
}

/** A reply whose result is not of its op's shape: the message names the field. */
export class ControlReplyError extends ControlError {
	constructor(message: string) {
		super(message);
		this.name = 'ControlReplyError';
	}
}

/** The ops that take no arguments besides the deadline. */
export type PlainOp = Exclude<ControlOp, 'subscribe' | 'kernel-action'>;

type Pending = {
	/** Decode the result and resolve, or reject when it is not of the op's shape. */
	readonly settle: (result: unknown) => void;
	readonly reject: (error: Error) => void;
	readonly timer: NodeJS.Timeout;
};

type AgentEvents = {
	event: [JsonEvent];
	/** A line that was dropped (malformed, unknown), in words; at most one per {@link noteIntervalMs}. */
	dropped: [string];
	close: [Error | null];
};

/** A flood of bad lines makes one note per this long, counting the rest. */
export const noteIntervalMs = 10_000;

/**
 * One connection to a control socket over any stream (a local Unix socket, or an SSH
 * stream-local channel to the GPU host's `gpujup host`), speaking the versioned JSON lines of core/control-protocol.ts:
 * requests with replies, and one subscription whose events arrive as `event`.
 */
export class ControlConnection extends EventEmitter<AgentEvents> {
	#nextId = 1;
	#buffer = '';
	#closed = false;
	readonly #pending = new Map<number, Pending>();
	#lastNoteAt = Number.NEGATIVE_INFINITY;
	#unreported = 0;
	#lastDropped = '';
	#noteTimer: NodeJS.Timeout | undefined;

	constructor(private readonly stream: Duplex) {
		super();
		stream.setEncoding('utf8');
		stream.on('data', (chunk: string) => {
			this.#read(chunk);
		});
		stream.on('error', (error: Error) => {
			this.#close(error);
		});
		stream.on('close', () => {
			this.#close(null);
		});
		// The other side is done (an SSH channel may only report EOF until we close our half too).
		stream.on('end', () => {
			this.close();
		});
	}

	/**
	 * Sends one request and resolves its result, decoded by the op's guard (core/control-decode.ts);
	 * rejects on an error reply or a result of another shape ({@link ControlError}), a close or the
	 * deadline.
	 */
	async request<Op extends PlainOp>(op: Op, timeoutMs?: number): Promise<ControlReplies[Op]>;
	async request(
		op: 'subscribe',
		timeoutMs?: number,
		args?: ControlArgs['subscribe'],
	): Promise<ControlReplies['subscribe']>;
	async request(
		op: 'kernel-action',
		timeoutMs: number,
		args: ControlArgs['kernel-action'],
	): Promise<ControlReplies['kernel-action']>;
	async request<Op extends ControlOp>(
		op: Op,
		timeoutMs = 5000,
		args: ControlArgs[ControlOp] = {},
	): Promise<ControlReplies[Op]> {
		if (this.#closed) throw new Error('the control connection is closed');
		const id = this.#nextId++;
		// The one place a request is put together; the overloads above pair each op with its args.
		const request = {v: protocolVersion, id, op, ...args} as ControlRequest;
		return new Promise((resolve, reject) => {
			const timer = setTimeout(() => {
				this.#pending.delete(id);
				reject(new Error(`no answer to "${op}" within ${timeoutMs} ms`));
			}, timeoutMs);
			this.#pending.set(id, {
				settle(result) {
					const decoded = decodeReply(op, result);
					if (decoded.ok) resolve(decoded.value);
					else reject(new ControlReplyError(decoded.message));
				},
				reject,
				timer,
			});
			this.stream.write(encodeLine(request));
		});
	}

	close(): void {
		this.stream.destroy();
		this.#close(null);
	}

	#read(chunk: string): void {
		const split = splitLines(this.#buffer, chunk);
		if (!split) {
			this.stream.destroy();
			this.#close(new Error('the agent sent a line that is too long'));
			return;
		}

		this.#buffer = split.rest;
		for (const line of split.lines) {
			const parsed = parseServerLine(line);
			if (parsed.kind === 'invalid') {
				this.stream.destroy();
				this.#close(new ControlError(parsed.message));
				return;
			}

			if (parsed.kind === 'dropped') {
				this.#drop(parsed.message);
				continue;
			}

			if (parsed.kind === 'event') {
				// A listener's bug must not throw into the stream (ssh2's data path would end the hop).
				try {
					this.emit('event', parsed.event);
				} catch (error) {
					this.#drop(`a ${parsed.event.type} event it could not use (${String(error)})`);
				}

				continue;
			}

			const id = parsed.reply.id;
			const pending = id === null ? undefined : this.#pending.get(id);
			if (!pending) continue;
			this.#pending.delete(id!);
			clearTimeout(pending.timer);
			if (parsed.reply.ok) pending.settle(parsed.reply.result);
			else pending.reject(new ControlError(parsed.reply.error));
		}
	}

	/** Drop a line with a note, rate-limited: the first at once, then a count per interval. */
	#drop(message: string): void {
		const now = Date.now();
		if (now - this.#lastNoteAt >= noteIntervalMs) {
			this.#lastNoteAt = now;
			this.emit('dropped', `dropped ${message}`);
			return;
		}

		this.#unreported++;
		this.#lastDropped = message;
		this.#noteTimer ??= setTimeout(
			() => {
				this.#noteTimer = undefined;
				const count = this.#unreported;
				this.#unreported = 0;
				this.#lastNoteAt = Date.now();
				this.emit(
					'dropped',
					`dropped ${count} more malformed message${count === 1 ? '' : 's'} (the last: ${this.#lastDropped})`,
				);
			},
			this.#lastNoteAt + noteIntervalMs - now,
		);
		this.#noteTimer.unref();
	}

	#close(error: Error | null): void {
		if (this.#closed) return;
		this.#closed = true;
		clearTimeout(this.#noteTimer);
		for (const pending of this.#pending.values()) {
			clearTimeout(pending.timer);
			pending.reject(error ?? new Error('the connection closed without an answer'));
		}

		this.#pending.clear();
		this.emit('close', error);
	}
}
