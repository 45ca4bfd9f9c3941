import net from 'node:net';
import type {Client, ClientChannel} from 'ssh2';
import type {BackoffPolicy} from '../core/backoff.js';
import {HopError} from '../core/classify-error.js';
import type {HopStatus} from '../core/types.js';
import {SshHop, type SshHopOptions} from './ssh-hop.js';

/** Options of {@link ReverseTunnel}; times in milliseconds. */
export type ReverseTunnelOptions = Pick<
	SshHopOptions,
	| 'label'
	| 'knownHostsFile'
	| 'otherKnownHostsFiles'
	| 'hashKnownHosts'
	| 'hostKeyNames'
	| 'acceptNew'
	| 'confirmHostKey'
	| 'auth'
	| 'keepaliveMs'
	| 'keepaliveCount'
> & {
	readonly relay: {readonly host: string; readonly port: number; readonly username: string};
	/** The port on the relay's loopback that leads to our sshd (`--relay-port`). */
	readonly relayPort: number;
	/** Our own sshd on 127.0.0.1 (`--ssh-port`). */
	readonly sshPort: number;
	/** How often the end-to-end probe runs once ready (default 30 000, like autossh's monitor). */
	readonly probeIntervalMs?: number;
	/** How long the probe waits for the banner (default 10 000). */
	readonly probeTimeoutMs?: number;
	readonly connectTimeoutMs?: number;
	readonly backoff?: BackoffPolicy;
	/** Hop status patches for the store (`{type: 'hop', hop: 'reverse', patch}`). */
	readonly onStatus: (patch: Partial<Omit<HopStatus, 'hop' | 'label'>>) => void;
};

/** The message users see when the relay still holds the port for a dead session (SPEC "Stale port"). */
export function stalePortMessage(relayPort: number): string {
	return `port ${relayPort} still held on the relay by an old session — retrying; fix on the relay: set ClientAliveInterval 15 / ClientAliveCountMax 3 in sshd_config so dead sessions are dropped`;
}

async function forwardIn(client: Client, port: number): Promise<void> {
	return new Promise((resolve, reject) => {
		try {
			client.forwardIn('localhost', port, (error) => {
				if (error) reject(error);
				else resolve();
			});
		} catch (error) {
			reject(error instanceof Error ? error : new Error(String(error)));
		}
	});
}

async function forwardOut(client: Client, port: number): Promise<ClientChannel> {
	return new Promise((resolve, reject) => {
		try {
			client.forwardOut('127.0.0.1', 0, 'localhost', port, (error, channel) => {
				if (error) reject(error);
				else {
					channel.on('error', () => {});
					resolve(channel);
				}
			});
		} catch (error) {
			reject(error instanceof Error ? error : new Error(String(error)));
		}
	});
}

/**
 * Connect through the relay to its `localhost:<port>` and read what comes back first, for at most
 * `timeoutMs`: through our own forward that is our sshd's banner.
 */
async function readThrough(
	client: Client,
	port: number,
	timeoutMs: number,
): Promise<{opened: false; error: Error} | {opened: true; text: string; closed: boolean}> {
	let channel: ClientChannel;
	try {
		channel = await forwardOut(client, port);
	} catch (error) {
		return {opened: false, error: error instanceof Error ? error : new Error(String(error))};
	}

	return new Promise((resolve) => {
		let text = '';
		let done = false;
		const finish = (closed: boolean) => {
			if (done) return;
			done = true;
			clearTimeout(timer);
			channel.removeAllListeners('data');
			channel.destroy();
			resolve({opened: true, text, closed});
		};

		const timer = setTimeout(() => finish(false), timeoutMs);
		channel.on('data', (chunk: Buffer) => {
			text += chunk.toString('latin1');
			if (text.includes('\n') || text.length > 255) finish(false);
		});
		channel.on('close', () => finish(true));
		channel.on('end', () => finish(true));
	});
}

/**
 * The end-to-end check (autossh's monitor): relay port → our forward → our sshd, read its banner
 * back. Throws a classified error when that does not work.
 */
export async function probeEndToEnd(
	client: Client,
	relayPort: number,
	sshPort: number,
	timeoutMs: number,
): Promise<void> {
	const result = await readThrough(client, relayPort, timeoutMs);
	if (!result.opened)
		throw new HopError({
			kind: /prohibit/i.test(result.error.message) ? 'forbidden' : 'closed',
			message: `end-to-end probe: the relay could not connect to its localhost:${relayPort} (${result.error.message})`,
		});
	if (result.text.startsWith('SSH-')) return;
	throw new HopError({
		kind: result.closed ? 'closed' : 'timeout',
		message: result.closed
			? `end-to-end probe: localhost:${relayPort} on the relay closed without an SSH banner — is sshd running on 127.0.0.1:${sshPort} (--ssh-port)?`
			: `end-to-end probe: no SSH banner back through the relay's port ${relayPort} within ${Math.round(timeoutMs / 1000)} s`,
	});
}

/** Why forwardIn was refused: a port held by someone (dead session or live tunnel), or a policy. */
async function refusalError(client: Client, relayPort: number, cause: Error): Promise<HopError> {
	const look = await readThrough(client, relayPort, 1500);
	if (!look.opened)
		return new HopError(
			{
				kind: 'forbidden',
				message: `the relay refused to listen on localhost:${relayPort} (${cause.message}) — is remote forwarding allowed there (AllowTcpForwarding, PermitListen in sshd_config, permitlisten= in authorized_keys)?`,
			},
			{cause},
		);
	if (look.text.startsWith('SSH-'))
		return new HopError(
			{
				kind: 'port-in-use',
				message: `port ${relayPort} on the relay is in use by another live tunnel (another GPU host?) — retrying; give this one another --relay-port`,
			},
			{cause},
		);
	return new HopError({kind: 'port-in-use', message: stalePortMessage(relayPort)}, {cause});
}

/**
 * Pipe a forwarded connection to our sshd, both ways with backpressure; either side closing or
 * failing ends both.
 */
function bridge(channel: ClientChannel, socket: net.Socket, onClose: () => void): void {
	let closed = false;
	const close = () => {
		if (closed) return;
		closed = true;
		channel.destroy();
		socket.destroy();
		onClose();
	};

	channel.on('error', close);
	socket.on('error', close);
	channel.on('close', close);
	socket.on('close', close);
	channel.pipe(socket);
	socket.pipe(channel);
}

/**
 * The GPU host's reverse tunnel: an SSH hop to the relay whose session asks the relay to listen on
 * `localhost:<relayPort>` (like `ssh -R 19506:localhost:22`) and bridges what arrives to our sshd.
 * Ready only when the relay accepted the forward and the end-to-end probe read our banner back; a
 * refused forward drops the session and retries (ExitOnForwardFailure semantics), saying why.
 */
export class ReverseTunnel {
	readonly hop: SshHop;
	readonly #o: ReverseTunnelOptions;
	#connections = 0;

	constructor(options: ReverseTunnelOptions) {
		this.#o = options;
		this.hop = new SshHop({
			name: 'reverse',
			label: options.label,
			host: options.relay.host,
			port: options.relay.port,
			username: options.relay.username,
			knownHostsFile: options.knownHostsFile,
			otherKnownHostsFiles: options.otherKnownHostsFiles,
			hashKnownHosts: options.hashKnownHosts,
			hostKeyNames: options.hostKeyNames,
			acceptNew: options.acceptNew,
			confirmHostKey: options.confirmHostKey,
			auth: options.auth,
			keepaliveMs: options.keepaliveMs,
			keepaliveCount: options.keepaliveCount,
			connectTimeoutMs: options.connectTimeoutMs,
			backoff: options.backoff,
			onStatus: options.onStatus,
			setup: async (client, signal) => this.#setup(client, signal),
		});
	}

	/** Forwarded connections open now (the probe's included while it runs). */
	get connections(): number {
		return this.#connections;
	}

	start(): void {
		this.hop.start();
	}

	/** Reconnect now, skipping the backoff (`r`). */
	reconnectNow(): void {
		this.hop.reconnectNow();
	}

	async dispose(): Promise<void> {
		await this.hop.dispose();
	}

	async #setup(client: Client, signal: AbortSignal): Promise<void> {
		const {relayPort, sshPort} = this.#o;
		client.on('tcp connection', (_info, accept, reject) => {
			if (signal.aborted) {
				reject();
				return;
			}

			const socket = net.connect({host: '127.0.0.1', port: sshPort});
			socket.setNoDelay(true);
			const refuse = () => reject();
			socket.once('error', refuse);
			socket.once('connect', () => {
				socket.off('error', refuse);
				const channel = accept();
				this.#connections++;
				bridge(channel, socket, () => {
					this.#connections--;
				});
			});
		});

		try {
			await forwardIn(client, relayPort);
		} catch (error) {
			throw await refusalError(
				client,
				relayPort,
				error instanceof Error ? error : new Error(String(error)),
			);
		}

		const timeoutMs = this.#o.probeTimeoutMs ?? 10_000;
		await probeEndToEnd(client, relayPort, sshPort, timeoutMs);
		if (signal.aborted) return;

		// Keep probing while this session lives; a failed probe drops it and the hop reconnects.
		let timer: NodeJS.Timeout | undefined;
		const schedule = () => {
			timer = setTimeout(() => {
				probeEndToEnd(client, relayPort, sshPort, timeoutMs).then(
					() => {
						if (!signal.aborted) schedule();
					},
					(error: unknown) => {
						if (signal.aborted) return;
						// The hop classifies and reports the error, then the close drops the session.
						client.emit('error', error);
						client.destroy();
					},
				);
			}, this.#o.probeIntervalMs ?? 30_000);
			timer.unref();
		};

		schedule();
		signal.addEventListener('abort', () => clearTimeout(timer), {once: true});
	}
}
