import {randomBytes} from 'node:crypto';
import {chmodSync, lstatSync, unlinkSync} from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type {AppAction, AppState} from '../core/app-state.js';
import {errnoOf} from '../core/classify-error.js';
import {
	encodeLine,
	parseRequest,
	protocolVersion,
	splitLines,
	type ControlOp,
	type ControlRequest,
	type ControlResults,
	type ControlToken,
} from '../core/control-protocol.js';
import {diffEvents, gpuEvent, kernelObject, statusObject, type JsonEvent} from '../core/events.js';
import type {KernelAction} from '../core/kernels.js';
import type {Store} from '../core/store.js';
import type {ControlReplies} from '../core/control-decode.js';
import {ControlConnection, ControlReplyError, type PlainOp} from './control-connection.js';
import {ensurePrivateDir} from './private-file.js';
import {workaroundsInUse} from './workarounds/index.js';

/** What the socket's operations do; the role wires them to its services. */
export type ControlHandlers = {
	/** The Jupyter token and the port it is valid on (as seen from this machine), null when unknown. */
	readonly token: () => ControlToken | null;
	readonly restartJupyter: () => Promise<void>;
	readonly reconnect: () => void;
	/** `gpujup host --stop-jupyter` while a host runs; absent where there is no Jupyter to stop. */
	readonly stopJupyter?: () => Promise<{readonly pid: number | null}>;
	/** Interrupt, restart or shut down a kernel; resolves what was done, in words. */
	readonly kernelAction?: (id: string, action: KernelAction) => Promise<string>;
};

export type ControlServerOptions = {
	/** Socket path (`${stateDir}/<profile>/host.sock`); its directory is made 0700. */
	readonly path: string;
	readonly store: Store<AppState, AppAction>;
	readonly handlers: ControlHandlers;
	/** Who serves, for `status` and the "already running" message (default `host`). */
	readonly role?: string;
	/** Default `default`. */
	readonly profile?: string;
};

export type ControlServer = {
	readonly path: string;
	/** Close every connection and remove the socket file. */
	dispose(): Promise<void>;
};

/** A subscriber this far behind is dropped rather than buffered without bound. */
const maxBacklogBytes = 8 * 1024 * 1024;

/** Thrown when another live gpujup already serves the socket path. */
export class AlreadyRunningError extends Error {
	readonly pid: number | null;
	constructor(message: string, pid: number | null) {
		super(message);
		this.name = 'AlreadyRunningError';
		this.pid = pid;
	}
}

/** An `ok: false` reply, as the client sees it. */
export {ControlError, ControlReplyError} from './control-connection.js';

/**
 * Make room for our socket: refuse when a live process answers on `socketPath`, remove a stale
 * socket file left by one that died.
 */
async function claimPath(socketPath: string, role: string, profile: string): Promise<void> {
	let isSocket: boolean;
	try {
		isSocket = lstatSync(socketPath).isSocket();
	} catch {
		return;
	}

	if (!isSocket)
		throw new Error(
			`${socketPath} exists and is not a socket: remove it or choose another profile`,
		);
	try {
		const status = await requestControl(socketPath, 'status', 3000);
		const pid = status.pid;
		throw new AlreadyRunningError(
			`gpujup ${status.role ?? role} is already running for profile ${status.profile ?? profile}${pid === null ? '' : ` (pid ${pid})`}`,
			pid,
		);
	} catch (error) {
		if (error instanceof AlreadyRunningError) throw error;
		// A gpujup answered, with a status of another shape (another version): it runs all the same.
		if (error instanceof ControlReplyError)
			throw new AlreadyRunningError(
				`gpujup ${role} is already running for profile ${profile}`,
				null,
			);
		const code = errnoOf(error);
		if (code !== 'ECONNREFUSED' && code !== 'ENOENT')
			throw new AlreadyRunningError(
				`another process holds ${socketPath} but does not answer (${error instanceof Error ? error.message : String(error)}); remove the file if no gpujup ${role} runs for profile ${profile}`,
				null,
			);
	}

	try {
		unlinkSync(socketPath);
	} catch {
		// Gone meanwhile.
	}
}

async function listenPrivate(server: net.Server, socketPath: string): Promise<void> {
	// The socket is born 0600 (umask) so there is no moment where others could connect.
	let previous: number | null = null;
	try {
		previous = process.umask(0o177);
	} catch {
		// Worker threads cannot change the umask; the 0700 directory and the chmod below still hold.
	}

	try {
		await new Promise<void>((resolve, reject) => {
			server.once('error', reject);
			server.listen(socketPath, () => {
				server.off('error', reject);
				resolve();
			});
		});
	} finally {
		if (previous !== null) process.umask(previous);
	}

	chmodSync(socketPath, 0o600);
}

/**
 * Serve the control socket: versioned JSON lines (see `core/control-protocol.ts`). Refuses to
 * start when another gpujup answers on the path, naming its pid.
 */
export async function startControlServer(options: ControlServerOptions): Promise<ControlServer> {
	const role = options.role ?? 'host';
	const profile = options.profile ?? 'default';
	const socketPath = path.resolve(options.path);
	const dir = path.dirname(socketPath);
	ensurePrivateDir(dir);
	await claimPath(socketPath, role, profile);

	const connections = new Set<net.Socket>();
	// Tells a re-subscribing client whether the log it has came from this run.
	const instance = randomBytes(8).toString('hex');
	const server = net.createServer((socket) => {
		connections.add(socket);
		serveConnection(socket, options, role, profile, instance);
		socket.on('close', () => connections.delete(socket));
	});
	await listenPrivate(server, socketPath);
	const inode = lstatSync(socketPath).ino;

	return {
		path: socketPath,
		async dispose() {
			const closed = new Promise<void>((resolve) => server.close(() => resolve()));
			for (const socket of connections) socket.destroy();
			await closed;
			try {
				// Only our own file: a successor may already have replaced it.
				if (lstatSync(socketPath).ino === inode) unlinkSync(socketPath);
			} catch {
				// Already gone.
			}
		},
	};
}

function serveConnection(
	socket: net.Socket,
	options: ControlServerOptions,
	role: string,
	profile: string,
	instance: string,
): void {
	socket.setEncoding('utf8');
	let buffer = '';
	let unsubscribe: (() => void) | null = null;
	const send = (line: string) => {
		if (socket.destroyed) return;
		if (socket.writableLength > maxBacklogBytes) {
			socket.destroy();
			return;
		}

		socket.write(line);
	};

	const reply = <Op extends ControlOp>(
		request: {readonly id: number; readonly op: Op},
		result: ControlResults[Op],
	) => send(encodeLine({v: protocolVersion, id: request.id, ok: true, result}));
	const fail = (id: number | null, error: string) =>
		send(encodeLine({v: protocolVersion, id, ok: false, error}));

	const handle = async (request: ControlRequest): Promise<void> => {
		switch (request.op) {
			case 'status': {
				reply(request, {
					...statusObject(options.store.getSnapshot()),
					workarounds: workaroundsInUse(),
					pid: process.pid,
					role,
					profile,
				});
				return;
			}

			case 'token': {
				const token = options.handlers.token();
				if (token) reply(request, token);
				else fail(request.id, 'Jupyter is not running: no token to give');
				return;
			}

			case 'reconnect': {
				options.handlers.reconnect();
				reply(request, null);
				return;
			}

			case 'restart-jupyter': {
				await options.handlers.restartJupyter();
				reply(request, null);
				return;
			}

			case 'stop-jupyter': {
				if (!options.handlers.stopJupyter) {
					fail(request.id, `gpujup ${role} has no Jupyter to stop`);
					return;
				}

				reply(request, await options.handlers.stopJupyter());
				return;
			}

			case 'kernels': {
				const state = options.store.getSnapshot();
				reply(request, {
					kernels: state.kernels.map(kernelObject),
					gpus: state.gpu ? gpuEvent(state.gpu).gpus : [],
				});
				return;
			}

			case 'kernel-action': {
				if (!options.handlers.kernelAction) {
					fail(request.id, `gpujup ${role} watches no kernels`);
					return;
				}

				const message = await options.handlers.kernelAction(request.kernel, request.action);
				reply(request, {message});
				return;
			}

			case 'subscribe': {
				if (unsubscribe) {
					fail(request.id, 'already subscribed');
					return;
				}

				const first = options.store.getSnapshot();
				reply(request, {instance, logSeq: first.logSeq, notifySeq: first.notifySeq});
				// A client coming back (host-hop reconnect) already has the lines up to its seq.
				const back = request.logAfter?.instance === instance ? request.logAfter : undefined;
				let skipUpTo = back?.seq ?? 0;
				let previous: AppState | null = null;
				const push = () => {
					const next = options.store.getSnapshot();
					const at = new Date().toISOString();
					const events = diffEvents(previous, next);
					// The log events are the newest lines, in order, ending at `logSeq`; the notify
					// events the newest notifications, ending at `notifySeq`.
					let seq = next.logSeq - events.filter((e) => e.type === 'log').length;
					let notifySeq = next.notifySeq - events.filter((e) => e.type === 'notify').length;
					for (const event of events) {
						if (event.type === 'log' && ++seq <= skipUpTo) continue;
						const line =
							event.type === 'log'
								? {...event, seq, at}
								: event.type === 'notify'
									? {...event, seq: ++notifySeq, at}
									: {...event, at};
						send(encodeLine({v: protocolVersion, event: line}));
					}

					// Back after missing some: the notifications it has not had, as news.
					if (!previous && back?.notifySeq !== undefined)
						for (const {seq: noteSeq, at: _at, ...note} of next.notifications)
							if (noteSeq > back.notifySeq)
								send(
									encodeLine({
										v: protocolVersion,
										event: {type: 'notify', ...note, seq: noteSeq, at},
									}),
								);

					skipUpTo = 0;
					previous = next;
				};

				push();
				unsubscribe = options.store.subscribe(push);
			}
		}
	};

	socket.on('data', (chunk: string) => {
		const split = splitLines(buffer, chunk);
		if (!split) {
			fail(null, 'line too long');
			socket.end();
			return;
		}

		buffer = split.rest;
		for (const line of split.lines) {
			const parsed = parseRequest(line);
			if (!parsed.ok) {
				send(encodeLine(parsed.reply));
				continue;
			}

			handle(parsed.request).catch((error: unknown) => {
				fail(parsed.request.id, error instanceof Error ? error.message : String(error));
			});
		}
	});
	socket.on('error', () => {
		// A client that went away; 'close' follows.
	});
	socket.on('close', () => {
		unsubscribe?.();
		unsubscribe = null;
	});
}

/**
 * One request to the gpujup serving `socketPath`; resolves with the result, rejects with a
 * {@link ControlError} for an error reply, or the connection's error (ENOENT / ECONNREFUSED: none
 * runs).
 */
export async function requestControl<Op extends PlainOp>(
	socketPath: string,
	op: Op,
	timeoutMs = 5000,
): Promise<ControlReplies[Op]> {
	const connection = new ControlConnection(net.connect({path: socketPath}));
	try {
		return await connection.request(op, timeoutMs);
	} finally {
		connection.close();
	}
}

export type Subscription = {dispose(): void};

/**
 * Stream the events of the gpujup serving `socketPath`: first its whole state, then changes.
 * `onEnd` is called once when the stream ends (with the error, if any) but not after dispose.
 */
export function subscribeControl(
	socketPath: string,
	onEvent: (event: JsonEvent) => void,
	onEnd?: (error: Error | null) => void,
): Subscription {
	const connection = new ControlConnection(net.connect({path: socketPath}));
	let ended = false;
	const end = (error: Error | null) => {
		if (ended) return;
		ended = true;
		connection.close();
		onEnd?.(error);
	};

	// Before subscribing: the snapshot follows the reply in the same read.
	connection.on('event', onEvent);
	connection.on('close', end);
	connection.request('subscribe').catch((error: unknown) => {
		end(error instanceof Error ? error : new Error(String(error)));
	});
	return {
		dispose() {
			ended = true;
			connection.close();
		},
	};
}
