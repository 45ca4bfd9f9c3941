import net from 'node:net';
import type {Client, ClientChannel} from 'ssh2';
import {HopError} from '../core/classify-error.js';
import type {ForwardStatus} from '../core/types.js';
import {widenChannelWindow} from './workarounds/ssh2-window.js';

/** How long a client may take to read the rest of an answer after the far side closed. */
const closeGraceMs = 10_000;

/** The hop a forward rides on: only what the forward needs from an SshHop. */
export type ForwardHop = {
	readonly client: Client | null;
	waitReady(ms: number): Promise<Client | null>;
};

export type LocalForwardOptions = {
	/** Port on 127.0.0.1; 0 picks a free one. */
	readonly port: number;
	/** Where the far end of the hop connects to (the GPU host's loopback). */
	readonly remoteHost: string;
	readonly remotePort: number;
	/** `jupyter`, `tensorboard`, `6006`… */
	readonly label: string;
	readonly hop: ForwardHop;
	/** How long a new connection waits for a hop that is down before it is closed (default 10 s). */
	readonly waitMs?: number;
	readonly onStatus: (forward: ForwardStatus) => void;
};

export type LocalForward = {
	/** The port actually bound (useful with port 0). */
	readonly port: number;
	/** Stop listening and close every connection; never waits on a dead link. */
	dispose(): Promise<void>;
};

/**
 * `ssh -L 127.0.0.1:port:remoteHost:remotePort` that outlives reconnects: the listener stays on
 * the same port while the hop comes and goes, and each new connection opens a direct-tcpip
 * channel on whatever client is ready at that moment (waiting up to `waitMs` for one).
 */
export async function startLocalForward(o: LocalForwardOptions): Promise<LocalForward> {
	const waitMs = o.waitMs ?? 10_000;
	const sockets = new Set<net.Socket>();
	let state: ForwardStatus['state'] = 'listening';
	let port = o.port;

	const report = () =>
		o.onStatus({
			local: `127.0.0.1:${port}`,
			remote: `${o.remoteHost}:${o.remotePort}`,
			state,
			connections: sockets.size,
			label: o.label,
		});

	const bridge = (socket: net.Socket, channel: ClientChannel) => {
		channel.on('error', () => socket.destroy());
		channel.on('close', () => {
			// The far side is done: let what it sent reach the client first (pipe() has ended the
			// socket after its last byte), but never wait long on a client that does not read.
			if (socket.destroyed) return;
			socket.end();
			socket.once('finish', () => socket.destroy());
			setTimeout(() => socket.destroy(), closeGraceMs).unref();
		});
		socket.on('close', () => channel.destroy());
		// pipe() gives backpressure both ways and forwards EOF each way on its own: a client that
		// sends FIN after its request still gets the answer (the server is half-open, as ssh -L).
		socket.pipe(channel);
		channel.pipe(socket);
		socket.resume();
	};

	const onConnection = (socket: net.Socket) => {
		socket.setNoDelay(true);
		// Hold the client's first bytes until a channel exists to carry them.
		socket.pause();
		sockets.add(socket);
		report();
		socket.on('error', () => socket.destroy());
		socket.on('close', () => {
			sockets.delete(socket);
			if (state === 'listening') report();
		});
		void (async () => {
			const client = o.hop.client ?? (await o.hop.waitReady(waitMs));
			if (!client || socket.destroyed || state === 'closed') {
				socket.destroy();
				return;
			}
			try {
				client.forwardOut(
					'127.0.0.1',
					socket.remotePort ?? 0,
					o.remoteHost,
					o.remotePort,
					(err, channel) => {
						if (err || socket.destroyed || state === 'closed') {
							// A refused channel (nothing listens there, or forbidden) closes its socket.
							channel?.destroy();
							socket.destroy();
							return;
						}
						// ssh2's fixed 2 MiB window costs most of the throughput over two hops (see workarounds/ssh2-window.ts).
						widenChannelWindow(channel);
						bridge(socket, channel);
					},
				);
			} catch {
				// The client died between waitReady and here.
				socket.destroy();
			}
		})();
	};

	const server = net.createServer({allowHalfOpen: true}, onConnection);
	await new Promise<void>((resolve, reject) => {
		const onError = (error: NodeJS.ErrnoException) => {
			server.off('listening', onListening);
			if (error.code === 'EADDRINUSE') {
				reject(
					new HopError(
						{
							kind: 'port-in-use',
							message: `127.0.0.1:${o.port} is already in use (another gpujup or an ssh -L?) — choose another with --local-port N, or --local-port 0 to pick a free one`,
						},
						{cause: error},
					),
				);
			} else {
				reject(
					new HopError(
						{
							kind: 'forbidden',
							message: `cannot listen on 127.0.0.1:${o.port} (${error.code ?? error.message}) — choose another with --local-port N`,
						},
						{cause: error},
					),
				);
			}
		};
		const onListening = () => {
			server.off('error', onError);
			resolve();
		};
		server.once('error', onError);
		server.once('listening', onListening);
		server.listen({host: '127.0.0.1', port: o.port, exclusive: true});
	});
	server.on('error', () => {});
	const address = server.address();
	port = typeof address === 'object' && address ? address.port : o.port;
	report();

	return {
		port,
		async dispose() {
			if (state === 'closed') return;
			state = 'closed';
			const closed = new Promise<void>((resolve) => {
				server.close(() => resolve());
			});
			for (const socket of sockets) socket.destroy();
			sockets.clear();
			await closed;
			report();
		},
	};
}
