import net from 'node:net';
import type {Duplex} from 'node:stream';
import ssh2, {type Client, type ClientChannel, type ParsedKey} from 'ssh2';
import type {BackoffPolicy} from '../core/backoff.js';
import {HopError} from '../core/classify-error.js';
import {fingerprintSha256} from '../core/known-hosts.js';
import {pairingKeyIndex, pinnedHostKeyAlgorithms} from '../core/pins.js';
import type {HopStatus} from '../core/types.js';
import {SshHop, type SshHopOptions} from './ssh-hop.js';
import {readBanner} from './tcp-probe.js';

/** Options of {@link ReverseTunnel}; times in milliseconds. */
export type ReverseTunnelOptions = Pick<
	SshHopOptions,
	| 'label'
	| 'knownHostsFile'
	| 'otherKnownHostsFiles'
	| 'hashKnownHosts'
	| 'hostKeyNames'
	| 'acceptNew'
	| 'pin'
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
	/**
	 * Once per session, after ready: the keys a laptop must trust (for the pairing string), or
	 * why they could not be read.
	 */
	readonly onPairingKeys?: (keys: PairingKeys | {readonly problem: string}) => void;
	/**
	 * `gpujup host --pair`: read the keys and report them, no probe loop; a port already held by a
	 * tunnel to this machine's sshd (a running `gpujup host`, or `ssh -R`) is fine.
	 */
	readonly pairOnly?: boolean;
};

/** The two keys a laptop must trust, as SHA256 fingerprints. */
export type PairingKeys = {
	/** The relay's, of the type a pinned hop asks for (from the relay's hostkeys announcement). */
	readonly relayKey: string;
	/** This machine's sshd as seen through the relay's port. */
	readonly hostKey: string;
};

/**
 * The host key an SSH server shows a client offering {@link pinnedHostKeyAlgorithms}: one key
 * exchange over `sock`, refused at the host key, so no authentication is tried and nothing is
 * logged in. Cheaper than a session, and the same key a pinned laptop will be shown.
 */
export async function readHostKey(sock: Duplex, timeoutMs: number): Promise<Buffer> {
	return new Promise((resolve, reject) => {
		const client = new ssh2.Client();
		let key: Buffer | null = null;
		let done = false;
		const finish = (error?: Error) => {
			if (done) return;
			done = true;
			clearTimeout(timer);
			client.on('error', () => {});
			client.end();
			sock.destroy();
			if (key) resolve(key);
			else reject(error ?? new Error('the server closed before it showed its host key'));
		};

		const timer = setTimeout(() => {
			finish(new Error(`no SSH host key within ${Math.round(timeoutMs / 1000)} s`));
		}, timeoutMs);
		sock.on('error', (error: Error) => finish(error));
		client.on('error', (error: Error) => finish(error));
		client.on('close', () => finish());
		try {
			client.connect({
				sock,
				username: 'gpujup-pair',
				readyTimeout: timeoutMs,
				keepaliveInterval: 0,
				algorithms: {serverHostKey: [...pinnedHostKeyAlgorithms]},
				hostVerifier: (blob: Buffer) => {
					key = Buffer.from(blob);
					setImmediate(() => finish());
					return false;
				},
			});
		} catch (error) {
			finish(error instanceof Error ? error : new Error(String(error)));
		}
	});
}

/** Of a server's announced keys, the fingerprint a pinned hop will be shown; null for none. */
function announcedFingerprint(keys: readonly ParsedKey[]): string | null {
	const key = keys[pairingKeyIndex(keys.map((k) => k.type))];
	return key ? fingerprintSha256(key.getPublicSSH()) : null;
}

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

	return {opened: true, ...(await readBanner(channel, timeoutMs))};
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
function bridge(channel: ClientChannel, socket: net.Socket): void {
	let closed = false;
	const close = () => {
		if (closed) return;
		closed = true;
		channel.destroy();
		socket.destroy();
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
			...(options.pin ? {pin: options.pin} : {}),
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

	/**
	 * The pairing keys of this session: our sshd's through the relay's port, checked against the
	 * same sshd reached directly (so a port held by another machine's tunnel is never paired), and
	 * the relay's from its hostkeys-00 announcement, else the key this hop verified.
	 */
	async #readPairingKeys(client: Client, announced: Promise<readonly ParsedKey[]>) {
		const {relayPort, sshPort} = this.#o;
		const timeoutMs = this.#o.probeTimeoutMs ?? 10_000;
		const through = await readHostKey(await forwardOut(client, relayPort), timeoutMs);
		const local = await readHostKey(net.connect({host: '127.0.0.1', port: sshPort}), timeoutMs);
		if (!through.equals(local))
			throw new HopError({
				kind: 'port-in-use',
				message: `port ${relayPort} on the relay leads to another sshd (${fingerprintSha256(through)}) than this machine's on 127.0.0.1:${sshPort} (${fingerprintSha256(local)}) — another GPU host's tunnel? Give this one another --relay-port`,
			});
		let timer: NodeJS.Timeout | undefined;
		const keys = await Promise.race([
			announced,
			new Promise<readonly ParsedKey[]>((resolve) => {
				timer = setTimeout(() => resolve([]), 3000);
			}),
		]);
		clearTimeout(timer);
		const relayKey =
			announcedFingerprint(keys) ?? this.hop.hostKeyVerified?.key.split(' ').at(-1) ?? null;
		if (!relayKey) throw new Error("the relay's host key is not known yet");
		return {relayKey, hostKey: fingerprintSha256(through)};
	}

	async #setup(client: Client, signal: AbortSignal): Promise<void> {
		const {relayPort, sshPort} = this.#o;
		// OpenSSH announces all its host keys once a session is authenticated (ssh2 checks the proof).
		const announced = new Promise<readonly ParsedKey[]>((resolve) => {
			client.once('hostkeys', resolve);
		});
		const report = this.#o.onPairingKeys;
		const readPairing = async () => {
			const keys = await this.#readPairingKeys(client, announced);
			if (!signal.aborted) report?.(keys);
		};

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
				bridge(channel, socket);
			});
		});

		try {
			await forwardIn(client, relayPort);
		} catch (error) {
			const refusal = await refusalError(
				client,
				relayPort,
				error instanceof Error ? error : new Error(String(error)),
			);
			// Pairing needs only that the port leads here, whoever holds it (readPairing checks).
			if (!this.#o.pairOnly || refusal.classified.kind !== 'port-in-use') throw refusal;
		}

		if (this.#o.pairOnly) {
			await readPairing();
			return;
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
		// Off the path to ready: a laptop waits for nothing of this.
		if (report)
			readPairing().catch((error: unknown) => {
				if (!signal.aborted) report({problem: (error as Error).message});
			});
	}
}
