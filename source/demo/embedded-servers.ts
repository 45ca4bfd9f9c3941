/**
 * The demo's two machines, as in-process ssh2 servers on loopback: a **relay** that only lets a
 * client through to `localhost:<tunnel port>` (as a relay sshd with `permitopen` would), and a
 * **GPU host** listening on that very port (so the port plays the part of the reverse tunnel's
 * end on the relay). Both accept only the demo's own ephemeral key; their host keys are ephemeral
 * too, recorded in a known_hosts of the demo's own under the names the real client looks up.
 */
import {timingSafeEqual} from 'node:crypto';
import {chmod, writeFile} from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import ssh2, {type Connection, type ServerChannel} from 'ssh2';
import {hostPatternFor} from '../core/known-hosts.js';
import type {ExecIo} from './gpu-host-commands.js';
import {generateEd25519} from '../services/ssh-keys.js';
import {dropConnection, rejectProhibited} from '../services/workarounds/ssh2-demo-server.js';

export type EmbeddedServersOptions = {
	/** A private (0700) directory for the key and known_hosts files. */
	readonly dir: string;
	/** The one user both servers accept. */
	readonly username: string;
	/** Loopback ports on the GPU host that direct-tcpip may reach (Jupyter's, `--forward`s). */
	readonly allowedPorts: () => readonly number[];
	/** Answers an exec request on the GPU host. */
	readonly exec: (command: string, io: ExecIo) => void;
};

export type EmbeddedServers = {
	/** The relay's SSH port on 127.0.0.1. */
	readonly relayPort: number;
	/** The GPU host's SSH port on 127.0.0.1: the relay-side port of the "reverse tunnel". */
	readonly tunnelPort: number;
	readonly username: string;
	/** The client's private key (OpenSSH format, 0600). */
	readonly identityFile: string;
	/** Both host keys, under `[127.0.0.1]:<relay>`, `[localhost]:<tunnel>`, `[127.0.0.1]:<tunnel>`. */
	readonly knownHostsFile: string;
	/** SSH connections open now on both servers. */
	connections(): number;
	/** Drop every connection on both servers, as a network outage would. */
	dropConnections(): void;
	/** Close both servers and everything they hold. Idempotent. */
	dispose(): Promise<void>;
};

type ParsedKey = ssh2.ParsedKey;

function parseKey(text: string): ParsedKey {
	const parsed = ssh2.utils.parseKey(text);
	if (parsed instanceof Error) throw parsed;
	return Array.isArray(parsed) ? parsed[0]! : parsed;
}

function isLoopbackName(host: string): boolean {
	return host === 'localhost' || host === '127.0.0.1' || host === '::1';
}

/** Start both servers on ephemeral loopback ports, with fresh keys written under `dir`. */
export async function startEmbeddedServers(
	options: EmbeddedServersOptions,
): Promise<EmbeddedServers> {
	const relayHostKey = generateEd25519();
	const gpuHostKey = generateEd25519();
	const clientKey = generateEd25519('gpujup-demo');
	const clientPublic = parseKey(clientKey.public);
	const clientPublicBlob = clientPublic.getPublicSSH();

	const connections = new Set<Connection>();
	const sockets = new Set<net.Socket>();
	const cleanups = new Set<() => void>();
	let disposed = false;
	let closing: Promise<void> = Promise.resolve();

	const track = (socket: net.Socket) => {
		sockets.add(socket);
		socket.on('close', () => sockets.delete(socket));
		socket.on('error', () => {});
	};

	const authenticate = (connection: Connection) => {
		connection.on('authentication', (ctx) => {
			if (ctx.method !== 'publickey' || ctx.username !== options.username) {
				ctx.reject(['publickey']);
				return;
			}
			const blob = ctx.key.data;
			const same =
				ctx.key.algo === clientPublic.type &&
				blob.length === clientPublicBlob.length &&
				timingSafeEqual(blob, clientPublicBlob);
			if (!same) {
				ctx.reject(['publickey']);
				return;
			}
			// No signature yet: the client asks whether this key would do.
			if (!ctx.signature || !ctx.blob) {
				ctx.accept();
				return;
			}
			if (clientPublic.verify(ctx.blob, ctx.signature, ctx.hashAlgo) === true) ctx.accept();
			else ctx.reject(['publickey']);
		});
	};

	const onConnection = (connection: Connection) => {
		if (disposed) {
			connection.end();
			return;
		}
		connections.add(connection);
		connection.on('error', () => {});
		connection.on('close', () => connections.delete(connection));
		authenticate(connection);
	};

	/** A direct-tcpip channel joined to a real TCP connection on 127.0.0.1:port. */
	const bridge = (channel: ServerChannel, port: number) => {
		const socket = net.connect({host: '127.0.0.1', port});
		track(socket);
		socket.setNoDelay(true);
		channel.on('error', () => socket.destroy());
		channel.on('close', () => socket.destroy());
		socket.on('close', () => channel.destroy());
		socket.pipe(channel);
		channel.pipe(socket);
	};

	const gpuHost = new ssh2.Server({hostKeys: [gpuHostKey.private]}, (connection) => {
		onConnection(connection);
		connection.on('ready', () => {
			connection.on('tcpip', (accept, reject, info) => {
				if (!isLoopbackName(info.destIP) || !options.allowedPorts().includes(info.destPort)) {
					rejectProhibited(connection, reject);
					return;
				}
				// Check the port answers first, so a closed port fails the open like sshd's does.
				const probe = net.connect({host: '127.0.0.1', port: info.destPort});
				probe.on('error', () => reject());
				probe.on('connect', () => {
					probe.destroy();
					const channel = accept();
					if (channel) bridge(channel, info.destPort);
				});
			});
			connection.on('session', (acceptSession) => {
				const session = acceptSession();
				session.on('exec', (acceptExec, _reject, info) => {
					const channel = acceptExec();
					runExec(channel, info.command);
				});
			});
		});
	});

	const runExec = (channel: ServerChannel, command: string) => {
		let closed = false;
		const listeners: Array<() => void> = [];
		const closeOnce = () => {
			if (closed) return;
			closed = true;
			cleanups.delete(closeOnce);
			for (const listener of listeners.splice(0)) listener();
		};
		cleanups.add(closeOnce);
		channel.on('error', () => {});
		// The client's guard watches its stdin: EOF means "stop", as does the channel's close.
		channel.on('end', closeOnce);
		channel.on('close', closeOnce);
		channel.resume();
		let exited = false;
		const io: ExecIo = {
			write(text) {
				if (!exited && channel.writable) channel.write(text);
			},
			writeError(text) {
				if (!exited && channel.writable) channel.stderr.write(text);
			},
			exit(code) {
				if (exited) return;
				exited = true;
				try {
					channel.exit(code);
					channel.end();
				} catch {
					// The connection is gone.
				}
			},
			onClose(listener) {
				if (closed) listener();
				else listeners.push(listener);
			},
		};
		try {
			options.exec(command, io);
		} catch (error) {
			io.writeError(`gpujup demo: ${error instanceof Error ? error.message : String(error)}\n`);
			io.exit(1);
		}
	};

	const listen = async (server: ssh2.Server): Promise<number> =>
		new Promise((resolve, reject) => {
			server.once('error', reject);
			server.listen(0, '127.0.0.1', () => {
				server.off('error', reject);
				server.on('error', () => {});
				const address = server.address();
				resolve(typeof address === 'object' && address ? address.port : 0);
			});
		});

	const tunnelPort = await listen(gpuHost);

	const relay = new ssh2.Server({hostKeys: [relayHostKey.private]}, (connection) => {
		onConnection(connection);
		connection.on('ready', () => {
			connection.on('tcpip', (accept, reject, info) => {
				// Only the tunnel's port on the relay's own loopback, as `permitopen="localhost:…"`.
				if (!isLoopbackName(info.destIP) || info.destPort !== tunnelPort) {
					rejectProhibited(connection, reject);
					return;
				}
				const channel = accept();
				if (channel) bridge(channel, tunnelPort);
			});
			// A shell on the relay is not part of the demo: sessions are refused.
		});
	});
	let relayPort: number;
	try {
		relayPort = await listen(relay);
	} catch (error) {
		gpuHost.close();
		throw error;
	}

	const identityFile = path.join(options.dir, 'id_ed25519');
	await writeFile(identityFile, clientKey.private, {mode: 0o600});
	await chmod(identityFile, 0o600);
	const line = (names: string[], publicKey: string) =>
		`${names.join(',')} ${publicKey.split(' ').slice(0, 2).join(' ')}\n`;
	const knownHostsFile = path.join(options.dir, 'known_hosts');
	await writeFile(
		knownHostsFile,
		line([hostPatternFor('127.0.0.1', relayPort)], relayHostKey.public) +
			line(
				[hostPatternFor('localhost', tunnelPort), hostPatternFor('127.0.0.1', tunnelPort)],
				gpuHostKey.public,
			),
		{mode: 0o600},
	);
	await chmod(knownHostsFile, 0o600);

	const dropConnections = () => {
		for (const cleanup of [...cleanups]) cleanup();
		for (const socket of sockets) socket.destroy();
		for (const connection of connections) dropConnection(connection);
	};

	const closeServer = async (server: ssh2.Server) =>
		new Promise<void>((resolve) => {
			server.close(() => resolve());
		});

	return {
		relayPort,
		tunnelPort,
		username: options.username,
		identityFile,
		knownHostsFile,
		connections: () => connections.size,
		dropConnections,
		async dispose() {
			if (!disposed) {
				disposed = true;
				closing = Promise.all([closeServer(gpuHost), closeServer(relay)]).then(() => {});
				dropConnections();
			}
			await closing;
		},
	};
}
