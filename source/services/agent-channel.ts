import {EventEmitter} from 'node:events';
import type {Duplex} from 'node:stream';
import type {Client} from 'ssh2';
import {
	encodeLine,
	parseServerLine,
	protocolVersion,
	splitLines,
	type ControlOp,
	type ControlToken,
} from '../core/control-protocol.js';
import type {JsonEvent} from '../core/events.js';
import {execText} from './remote-exec.js';

type Pending = {
	readonly resolve: (result: unknown) => void;
	readonly reject: (error: Error) => void;
	readonly timer: NodeJS.Timeout;
};

type AgentEvents = {
	event: [JsonEvent];
	close: [Error | null];
};

/**
 * One connection to a control socket over any stream (here: an SSH stream-local channel to the
 * GPU host's `gpujup host`), speaking the versioned JSON lines of core/control-protocol.ts:
 * requests with replies, and one subscription whose events arrive as `event`.
 */
export class ControlConnection extends EventEmitter<AgentEvents> {
	#nextId = 1;
	#buffer = '';
	#closed = false;
	readonly #pending = new Map<number, Pending>();

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
	}

	/** Sends one request and resolves its result; rejects on an error reply, a close or the deadline. */
	async request(op: ControlOp, timeoutMs = 5000): Promise<unknown> {
		if (this.#closed) throw new Error('the agent channel is closed');
		const id = this.#nextId++;
		return new Promise((resolve, reject) => {
			const timer = setTimeout(() => {
				this.#pending.delete(id);
				reject(new Error(`gpujup host did not answer "${op}" within ${timeoutMs} ms`));
			}, timeoutMs);
			this.#pending.set(id, {resolve, reject, timer});
			this.stream.write(encodeLine({v: protocolVersion, id, op}));
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
				this.#close(new Error(parsed.message));
				return;
			}

			if (parsed.kind === 'event') {
				this.emit('event', parsed.event);
				continue;
			}

			const id = parsed.reply.id;
			const pending = id === null ? undefined : this.#pending.get(id);
			if (!pending) continue;
			this.#pending.delete(id!);
			clearTimeout(pending.timer);
			if (parsed.reply.ok) pending.resolve(parsed.reply.result);
			else pending.reject(new Error(parsed.reply.error));
		}
	}

	#close(error: Error | null): void {
		if (this.#closed) return;
		this.#closed = true;
		for (const pending of this.#pending.values()) {
			clearTimeout(pending.timer);
			pending.reject(error ?? new Error('the agent channel closed'));
		}

		this.#pending.clear();
		this.emit('close', error);
	}
}

/**
 * Where `gpujup host` keeps its socket on the GPU host for this profile, if one is there. The
 * path must be absolute for stream-local forwarding, so one exec asks the remote shell.
 */
export async function discoverAgentSocket(client: Client, profile: string): Promise<string | null> {
	const safeProfile = profile.replaceAll(/[^\w.-]/g, '_');
	const {stdout} = await execText(
		client,
		`p="\${XDG_STATE_HOME:-$HOME/.local/state}/gpujup/${safeProfile}/host.sock"; [ -S "$p" ] && printf '%s' "$p"; true`,
		{timeoutMs: 10_000},
	);
	const path = stdout.trim();
	return path.startsWith('/') ? path : null;
}

/** Opens a stream to a Unix socket on the SSH server (OpenSSH's direct-streamlocal). */
export async function openStreamLocal(client: Client, socketPath: string): Promise<Duplex> {
	return new Promise((resolve, reject) => {
		client.openssh_forwardOutStreamLocal(socketPath, (error, channel) => {
			if (error) reject(error);
			else resolve(channel);
		});
	});
}

/** What the agent gave on connect. */
export type Agent = {
	readonly connection: ControlConnection;
	readonly token: ControlToken | null;
};

/**
 * Reaches `gpujup host` through the second hop and subscribes to its events. Resolves null when
 * no agent runs there; rejects when one runs but cannot be used (the caller falls back, with a
 * note saying why).
 */
export async function connectAgent(
	client: Client,
	profile: string,
	onEvent: (event: JsonEvent) => void,
): Promise<Agent | null> {
	const socketPath = await discoverAgentSocket(client, profile);
	if (!socketPath) return null;
	const connection = new ControlConnection(await openStreamLocal(client, socketPath));
	// Before subscribing: the snapshot follows the reply in the same read.
	connection.on('event', onEvent);
	try {
		const token = (await connection.request('token')) as ControlToken | null;
		await connection.request('subscribe');
		return {connection, token: token?.token ? token : null};
	} catch (error) {
		connection.close();
		throw error;
	}
}
