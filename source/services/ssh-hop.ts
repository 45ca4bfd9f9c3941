import {EventEmitter} from 'node:events';
import net from 'node:net';
import {performance} from 'node:perf_hooks';
import type {Duplex} from 'node:stream';
import ssh2 from 'ssh2';
import type {Client, ConnectConfig} from 'ssh2';
import type {BackoffPolicy} from '../core/backoff.js';
import {classifyError, HopError} from '../core/classify-error.js';
import {hostKeyAlgorithmOrder} from '../core/host-key-algorithms.js';
import {
	initialHopMachine,
	parentDownError,
	statusOf,
	transition,
	waitingForParent,
	type HopEffect,
	type HopEvent,
	type HopMachineState,
	type HopPlace,
} from '../core/hop-machine.js';
import {knownKeyTypes, type KnownHostsEntry} from '../core/known-hosts.js';
import type {WorkaroundObject} from '../core/events.js';
import {pinnedHostKeyAlgorithms} from '../core/pins.js';
import type {ClassifiedError, HopName, HopState, HopStatus} from '../core/types.js';
import {onClockJump} from './clock-watch.js';
import {coalesceWrites} from './coalesced-writes.js';
import {verifyHostKey, type HostKeyCheckOptions, type HostKeyVerified} from './host-key-check.js';
import {KeepaliveWatchdog} from './keepalive-watchdog.js';
import {loadKnownHosts} from './known-hosts-file.js';
import {
	createAuthSession,
	tildify,
	type AuthSession,
	type KeyCache,
	type SshAuthOptions,
} from './ssh-auth.js';
import {probeTcp, readsSshBanner, startProbeLoop, type TcpProbeLoop} from './tcp-probe.js';
import * as ssh2Ping from './workarounds/ssh2-ping.js';
import {widenChannelWindow} from './workarounds/ssh2-window.js';

// Moved out along the module's seams; re-exported so importers keep their names.
export {hostKeyAlgorithmOrder, keyTypeLabel} from '../core/host-key-algorithms.js';
export type {HostKeyVerified} from './host-key-check.js';
export {extraChannelWindow, widenChannelWindow} from './workarounds/ssh2-window.js';

/** Everything one hop needs; see SPEC "Reconnect" and "Security". */
export type SshHopOptions = HostKeyCheckOptions & {
	readonly name: HopName;
	/** What the user reads: `relay.example.org:22`, `p507 (via :19506)`. */
	readonly label: string;
	/** Its place in a chain: the hops after it name it while it is down. */
	readonly place?: HopPlace;
	readonly host: string;
	readonly port: number;
	readonly username: string;
	/**
	 * Second hop: its socket comes from the parent hop via
	 * `parent.client.forwardOut('127.0.0.1', 0, viaTarget.host, viaTarget.port)` — `localhost` and
	 * the relay port, as `ssh -J` does.
	 */
	readonly via?: SshHop;
	readonly viaTarget?: {readonly host: string; readonly port: number};
	/** Read after `knownHostsFile`, never written: further user files, then the global ones. */
	readonly otherKnownHostsFiles?: readonly string[];
	readonly auth: SshAuthOptions;
	/** Interval of our own keepalive, in ms (SPEC `--keepalive` × 1000). */
	readonly keepaliveMs: number;
	/** Intervals of total silence before the link is declared lost. */
	readonly keepaliveCount: number;
	/**
	 * ssh2-ping's verdict (default: this install's ssh2, probed once). Off, ssh2's public
	 * keepaliveInterval sends the keepalives and the RTT is not measured; tests pass the verdict
	 * on a fake future ssh2.
	 */
	readonly pingWorkaround?: WorkaroundObject;
	/**
	 * Runs after auth, before 'ready' (the GPU host's reverse tunnel uses it for forwardIn and its
	 * probe); a throw drops the session and retries, or stops if the error is terminal.
	 */
	readonly setup?: (client: Client, signal: AbortSignal) => Promise<void>;
	/** The caller dispatches it to the store: `{type: 'hop', hop: name, patch}`. */
	readonly onStatus: (patch: Partial<Omit<HopStatus, 'hop' | 'label'>>) => void;
	/** TCP connect + SSH handshake + auth + setup must finish within this (default max(keepalive × count, 15 s)); time spent in prompts does not count. */
	readonly connectTimeoutMs?: number;
	/** How often the relay is knocked while waiting (default 1000 ms). */
	readonly probeIntervalMs?: number;
	readonly backoff?: BackoffPolicy;
};

type SshHopEvents = {
	ready: [client: Client];
	down: [];
};

type Attempt = {
	readonly epoch: number;
	readonly client: Client;
	readonly abort: AbortController;
	readonly auth: AuthSession;
	sock: Duplex | null;
	/** performance.now() of the last byte received: any traffic is life (OpenSSH semantics). */
	lastInbound: number;
	promptsOpen: number;
	connectTimer: NodeJS.Timeout | undefined;
	forceCloseTimer: NodeJS.Timeout | undefined;
	closed: boolean;
	readonly closedPromise: Promise<void>;
	markClosed: () => void;
};

/**
 * One SSH connection kept alive: a new ssh2 Client per attempt, host keys verified against
 * known_hosts, our own keepalive that counts any inbound byte as life, retry at once then backoff,
 * a TCP probe that cuts the wait short, and a second hop that follows its parent. Decisions are in
 * core/hop-machine.ts; this class only runs their effects.
 */
export class SshHop extends EventEmitter<SshHopEvents> {
	readonly #o: SshHopOptions;
	readonly #keyCache: KeyCache = new Map();
	#m: HopMachineState;
	#attempt: Attempt | null = null;
	#ready: Client | null = null;
	#keepalive: {readonly epoch: number; readonly watchdog: KeepaliveWatchdog} | null = null;
	#retryTimer: NodeJS.Timeout | undefined;
	#stableTimer: NodeJS.Timeout | undefined;
	#probe: TcpProbeLoop | null = null;
	#rttMs: number | null = null;
	#hostKeyVerified: HostKeyVerified | null = null;
	#lastStatus = '';
	#queue: HopEvent[] = [];
	#draining = false;
	#unsubscribeClock: (() => void) | null = null;
	/** waitReady callers: called with the client on ready, with null on dispose. */
	readonly #waiters = new Set<(client: Client | null) => void>();
	readonly #onParentReady = () => this.#dispatch({type: 'parent-ready', now: Date.now()});
	readonly #onParentDown = () => this.#dispatch({type: 'parent-down', error: this.#parentDown()});

	constructor(options: SshHopOptions) {
		super();
		if (options.via && !options.viaTarget)
			throw new Error('SshHop: `via` needs `viaTarget` (the relay-side host and port)');
		this.#o = options;
		this.#m = initialHopMachine({hasParent: Boolean(options.via), policy: options.backoff});
	}

	/** Its place in the chain, where it was given one. */
	get place(): HopPlace | null {
		return this.#o.place ?? null;
	}

	/** The connected client, only while ready. */
	get client(): Client | null {
		return this.#ready;
	}

	get state(): HopState {
		return this.#m.phase;
	}

	/** The latest attempt's host key, once verified; null before (or when it was refused). */
	get hostKeyVerified(): HostKeyVerified | null {
		return this.#hostKeyVerified;
	}

	/** Start connecting (or, for a second hop, wait for the parent); idempotent. */
	start(): void {
		if (this.#m.started || this.#m.phase === 'closed') return;
		this.#unsubscribeClock = onClockJump(() =>
			this.#dispatch({type: 'clock-jump', now: Date.now()}),
		);
		const parent = this.#o.via;
		if (parent) {
			parent.on('ready', this.#onParentReady);
			parent.on('down', this.#onParentDown);
			if (parent.client) this.#dispatch({type: 'parent-ready', now: Date.now()});
		}
		this.#dispatch({type: 'start'});
	}

	/** Retry now, skipping the backoff; also from `failed` (after the user fixed a key). */
	reconnectNow(): void {
		this.#dispatch({type: 'reconnect-now', now: Date.now()});
	}

	/**
	 * Resolve with the ready client, waiting up to `ms`; null on timeout or dispose. The listener
	 * is removed however it settles.
	 */
	async waitReady(ms: number): Promise<Client | null> {
		if (this.#ready) return this.#ready;
		if (this.#m.phase === 'closed') return null;
		return new Promise((resolve) => {
			const waiter = (client: Client | null) => {
				clearTimeout(timer);
				this.#waiters.delete(waiter);
				resolve(client);
			};
			const timer = setTimeout(() => waiter(null), ms);
			this.#waiters.add(waiter);
		});
	}

	/** Close the connection and stop every timer; resolves once the socket is gone (2 s at most). */
	async dispose(): Promise<void> {
		const attempt = this.#attempt;
		this.#dispatch({type: 'dispose'});
		this.#unsubscribeClock?.();
		this.#unsubscribeClock = null;
		this.#o.via?.off('ready', this.#onParentReady);
		this.#o.via?.off('down', this.#onParentDown);
		clearTimeout(this.#retryTimer);
		clearTimeout(this.#stableTimer);
		this.#probe?.dispose();
		this.#stopKeepalive();
		for (const waiter of [...this.#waiters]) waiter(null);
		if (attempt && !attempt.closed) {
			let timer: NodeJS.Timeout | undefined;
			await Promise.race([
				attempt.closedPromise,
				new Promise<void>((resolve) => {
					timer = setTimeout(resolve, 2000);
				}),
			]);
			clearTimeout(timer);
		}
		this.removeAllListeners();
	}

	#dispatch(event: HopEvent): void {
		this.#queue.push(event);
		if (this.#draining) return;
		this.#draining = true;
		try {
			for (let next = this.#queue.shift(); next; next = this.#queue.shift()) {
				const {state, effects} = transition(this.#m, next);
				this.#m = state;
				for (const effect of effects) this.#run(effect);
				this.#publish();
			}
		} finally {
			this.#draining = false;
		}
	}

	#publish(): void {
		const patch = {...statusOf(this.#m), rttMs: this.#m.phase === 'ready' ? this.#rttMs : null};
		const key = JSON.stringify(patch);
		if (key === this.#lastStatus) return;
		this.#lastStatus = key;
		this.#o.onStatus(patch);
	}

	#run(effect: HopEffect): void {
		switch (effect.type) {
			case 'connect': {
				void this.#connect(effect.epoch);
				break;
			}
			case 'destroy': {
				this.#destroyAttempt();
				break;
			}
			case 'schedule-retry': {
				clearTimeout(this.#retryTimer);
				this.#retryTimer = setTimeout(
					() => this.#dispatch({type: 'retry-due', epoch: effect.epoch, now: Date.now()}),
					effect.ms,
				);
				break;
			}
			case 'cancel-retry': {
				clearTimeout(this.#retryTimer);
				this.#retryTimer = undefined;
				break;
			}
			case 'start-probe': {
				this.#probe?.dispose();
				this.#probe = startProbeLoop({
					knock: async () => this.#knock(),
					intervalMs: this.#o.probeIntervalMs ?? 1000,
					onAnswer: () => this.#dispatch({type: 'probe-ok', epoch: effect.epoch, now: Date.now()}),
					onFail: () => this.#dispatch({type: 'probe-failed', epoch: effect.epoch}),
				});
				break;
			}
			case 'stop-probe': {
				this.#probe?.dispose();
				this.#probe = null;
				break;
			}
			case 'start-keepalive': {
				this.#startKeepalive(effect.epoch);
				break;
			}
			case 'stop-keepalive': {
				this.#stopKeepalive();
				break;
			}
			case 'schedule-stable': {
				clearTimeout(this.#stableTimer);
				this.#stableTimer = setTimeout(
					() => this.#dispatch({type: 'stable', epoch: effect.epoch}),
					effect.ms,
				);
				this.#stableTimer.unref();
				break;
			}
			case 'check': {
				this.#checkNow(effect.epoch);
				break;
			}
			case 'emit-ready': {
				const attempt = this.#attempt;
				if (!attempt) break;
				this.#ready = attempt.client;
				for (const waiter of [...this.#waiters]) waiter(attempt.client);
				this.emit('ready', attempt.client);
				break;
			}
			case 'emit-down': {
				this.#ready = null;
				this.#rttMs = null;
				clearTimeout(this.#stableTimer);
				this.emit('down');
				break;
			}
		}
	}

	/**
	 * One knock at the far side: the first hop's TCP port, or (second hop) the reverse port
	 * through the parent, each answering with an SSH banner. Cheap: no key exchange.
	 */
	async #knock(): Promise<boolean> {
		const o = this.#o;
		if (!o.via || !o.viaTarget) return probeTcp({host: o.host, port: o.port, banner: true});
		try {
			return await readsSshBanner(await this.#openSocket());
		} catch {
			return false;
		}
	}

	#where(): string {
		return `${this.#o.host}:${this.#o.port}`;
	}

	#error(epoch: number, error: ClassifiedError): void {
		this.#dispatch({type: 'error', epoch, error});
	}

	#closed(attempt: Attempt): void {
		if (attempt.closed) return;
		attempt.closed = true;
		clearTimeout(attempt.connectTimer);
		clearTimeout(attempt.forceCloseTimer);
		attempt.abort.abort();
		attempt.markClosed();
		const wasReady = this.#m.phase === 'ready' && this.#m.epoch === attempt.epoch;
		this.#dispatch({
			type: 'closed',
			epoch: attempt.epoch,
			now: Date.now(),
			random: Math.random(),
			fallback: {
				kind: 'closed',
				message: wasReady
					? `connection to ${this.#o.label} was closed by the server or the network`
					: `connection to ${this.#o.label} closed before it was ready`,
			},
		});
		if (this.#attempt === attempt) this.#attempt = null;
	}

	async #connect(epoch: number): Promise<void> {
		const o = this.#o;
		let resolveClosed!: () => void;
		const closedPromise = new Promise<void>((resolve) => {
			resolveClosed = resolve;
		});
		const abort = new AbortController();
		const client = new ssh2.Client();
		const attempt: Attempt = {
			epoch,
			client,
			abort,
			auth: createAuthSession({
				username: o.username,
				where: this.#where(),
				cache: o.auth.keyCache ?? this.#keyCache,
				signal: abort.signal,
				auth: {
					...o.auth,
					askSecret:
						o.auth.askSecret &&
						((message, echo) => this.#prompt(attempt, o.auth.askSecret!(message, echo))),
				},
			}),
			sock: null,
			lastInbound: performance.now(),
			promptsOpen: 0,
			connectTimer: undefined,
			forceCloseTimer: undefined,
			closed: false,
			closedPromise,
			markClosed: resolveClosed,
		};
		this.#attempt = attempt;
		this.#hostKeyVerified = null;
		const stale = () => this.#attempt !== attempt || attempt.closed;

		client.on('error', (err: Error & {level?: string}) => {
			if (err.level === 'agent') {
				attempt.auth.note(`ssh-agent: ${err.message}`);
				return;
			}
			if (err.level === 'client-authentication') {
				// ssh2 also reports a failed signature this way and goes on with the next key;
				// only the final verdict is an error, and it names everything that was tried.
				if (/all configured authentication methods failed/i.test(err.message))
					this.#error(epoch, attempt.auth.failure());
				else attempt.auth.note(err.message);
				return;
			}
			this.#dispatch({
				type: 'error',
				epoch,
				error: classifyError(err, {host: o.host, port: o.port}),
				fromServer: true,
			});
		});
		// Key exchange is done and the host key verified: from here on what the server says is
		// authenticated, and an auth verdict may be final (see the hop machine).
		client.on('handshake', () => this.#dispatch({type: 'host-key-verified', epoch}));
		client.on('close', () => this.#closed(attempt));
		client.on('ready', () => void this.#onAuthenticated(attempt));

		this.#armConnectTimer(attempt);

		let entries: KnownHostsEntry[] = [];
		try {
			entries = await loadKnownHosts([o.knownHostsFile, ...(o.otherKnownHostsFiles ?? [])]);
		} catch (error) {
			const path = (error as NodeJS.ErrnoException).path ?? o.knownHostsFile;
			this.#error(epoch, {
				kind: 'host-key',
				message: `cannot read known_hosts ${tildify(path)}: ${(error as Error).message} — fix its permissions or pass --known-hosts FILE`,
			});
			this.#closed(attempt);
			return;
		}
		if (stale()) return;

		let sock: Duplex;
		try {
			sock = await this.#openSocket();
		} catch (error) {
			if (!stale()) {
				this.#error(
					epoch,
					classifyError(error, {
						host: o.viaTarget?.host ?? o.host,
						port: o.viaTarget?.port ?? o.port,
					}),
				);
				this.#closed(attempt);
			}
			return;
		}
		if (stale()) {
			sock.on('error', () => {});
			sock.destroy();
			return;
		}
		attempt.sock = sock;
		if (o.via) {
			// The relay closes this channel as soon as the reverse tunnel behind it goes (a restart
			// of `gpujup host`): ssh2 would not notice until keepalives ran out, so go now.
			const gone = () => {
				if (stale() || abort.signal.aborted) return;
				this.#error(epoch, {
					kind: 'closed',
					message: `the relay closed the channel to ${o.label} — the reverse tunnel (gpujup host on the GPU host) went away`,
				});
				this.#destroyAttempt();
			};
			sock.once('end', gone);
			sock.once('close', gone);
		}

		const known = knownKeyTypes(entries, o.hostKeyNames);
		const config: ConnectConfig = {
			sock,
			username: o.username,
			// Our own timers replace ssh2's: its keepalive counts only replies, and its readyTimeout
			// would also run while the user types a passphrase. Without ssh2's ping internals its
			// keepalive sends the pings (see workarounds/ssh2-ping.ts).
			readyTimeout: 0,
			...ssh2Ping.keepaliveConfig(this.#pingActive(), o.keepaliveMs, o.keepaliveCount),
			hostVerifier: (key: Buffer, verify: (ok: boolean) => void) => {
				this.#verifyHostKey(attempt, entries, key).then(verify, (error: unknown) => {
					this.#error(epoch, classifyError(error, {host: o.host, port: o.port}));
					verify(false);
				});
			},
			authHandler: attempt.auth.handler,
		};
		// A pinned hop asks for the key type `gpujup host --pair` read, whatever known_hosts holds.
		if (o.pin) config.algorithms = {serverHostKey: [...pinnedHostKeyAlgorithms]};
		else if (known.length > 0) config.algorithms = {serverHostKey: hostKeyAlgorithmOrder(known)};
		try {
			client.connect(config);
		} catch (error) {
			this.#error(epoch, classifyError(error, {host: o.host, port: o.port}));
			sock.on('error', () => {});
			sock.destroy();
			this.#closed(attempt);
			return;
		}
		// Added after connect(): ssh2 has paused the socket, so this listener does not start the
		// flow before ssh2's own parser is attached.
		sock.on('data', () => {
			attempt.lastInbound = performance.now();
		});
	}

	/** The first hop's TCP socket, or the second hop's direct-tcpip channel through the parent. */
	async #openSocket(): Promise<Duplex> {
		const o = this.#o;
		if (!o.via || !o.viaTarget) {
			const sock = net.connect({host: o.host, port: o.port});
			sock.setNoDelay(true);
			return sock;
		}
		const parent = o.via.client;
		if (!parent) throw new HopError(this.#parentDown());
		const target = o.viaTarget;
		return new Promise((resolve, reject) => {
			try {
				parent.forwardOut('127.0.0.1', 0, target.host, target.port, (err, channel) => {
					if (err) {
						reject(err);
						return;
					}
					channel.on('error', () => {});
					// The second hop's whole SSH stream rides this channel: a wider window keeps
					// the pipe full (see workarounds/ssh2-window.ts).
					widenChannelWindow(channel);
					// ssh2's packets of one turn as one CHANNEL_DATA: the relay's sshd (Nagle on)
					// would hold a second small one for the first's delayed ACK.
					coalesceWrites(channel);
					resolve(channel);
				});
			} catch (error) {
				reject(new HopError(this.#parentDown(), {cause: error}));
			}
		});
	}

	/** The words for a parent that is down: which hop, where it has a place. */
	#parentDown(): ClassifiedError {
		const place = this.#o.via?.place;
		return place ? waitingForParent(place) : parentDownError;
	}

	async #prompt<T>(attempt: Attempt, question: Promise<T>): Promise<T> {
		attempt.promptsOpen++;
		try {
			return await question;
		} finally {
			attempt.promptsOpen--;
			attempt.lastInbound = performance.now();
			this.#armConnectTimer(attempt);
		}
	}

	#connectTimeoutMs(): number {
		return (
			this.#o.connectTimeoutMs ?? Math.max(this.#o.keepaliveMs * this.#o.keepaliveCount, 15_000)
		);
	}

	#armConnectTimer(attempt: Attempt): void {
		clearTimeout(attempt.connectTimer);
		if (attempt.closed || this.#m.phase !== 'connecting' || this.#m.epoch !== attempt.epoch) return;
		const ms = this.#connectTimeoutMs();
		attempt.connectTimer = setTimeout(() => {
			if (attempt.promptsOpen > 0) return; // re-armed when the prompt settles
			if (attempt.closed || this.#m.epoch !== attempt.epoch || this.#m.phase !== 'connecting')
				return;
			this.#error(attempt.epoch, {
				kind: 'timeout',
				message: `${this.#o.label} did not complete the SSH handshake within ${Math.round(ms / 1000)} s — is the link up, and is that an SSH server?`,
			});
			this.#destroyAttempt();
		}, ms);
	}

	async #verifyHostKey(
		attempt: Attempt,
		entries: KnownHostsEntry[],
		key: Buffer,
	): Promise<boolean> {
		const o = this.#o;
		const outcome = await verifyHostKey(
			{
				...o,
				confirmHostKey:
					o.confirmHostKey && ((info) => this.#prompt(attempt, o.confirmHostKey!(info))),
			},
			entries,
			key,
			() => attempt.closed,
		);
		if (outcome.ok) {
			if (this.#attempt === attempt) this.#hostKeyVerified = outcome.verified;
			return true;
		}
		if (outcome.message !== null)
			this.#error(attempt.epoch, {kind: 'host-key', message: outcome.message});
		return false;
	}

	async #onAuthenticated(attempt: Attempt): Promise<void> {
		const setup = this.#o.setup;
		if (setup) {
			try {
				await setup(attempt.client, attempt.abort.signal);
			} catch (error) {
				if (attempt.closed) return;
				this.#error(attempt.epoch, classifyError(error, {host: this.#o.host, port: this.#o.port}));
				this.#destroyAttempt();
				return;
			}
		}
		if (attempt.closed || this.#attempt !== attempt) return;
		clearTimeout(attempt.connectTimer);
		attempt.lastInbound = performance.now();
		this.#dispatch({type: 'connected', epoch: attempt.epoch, now: Date.now()});
	}

	#destroyAttempt(): void {
		const attempt = this.#attempt;
		if (!attempt || attempt.closed) return;
		attempt.abort.abort();
		clearTimeout(attempt.connectTimer);
		// client.destroy() only acts on a writable socket; destroy the socket itself as well so a
		// half-closed or never-connected one goes too.
		attempt.client.destroy();
		attempt.sock?.destroy();
		if (!attempt.sock) {
			// Still loading known_hosts or opening the channel: nothing will emit close for us.
			this.#closed(attempt);
			return;
		}
		// A channel on a dead parent may never report its close: do not wait on a dead link.
		clearTimeout(attempt.forceCloseTimer);
		attempt.forceCloseTimer = setTimeout(() => this.#closed(attempt), 2000);
	}

	#pingActive(): boolean {
		return (this.#o.pingWorkaround ?? ssh2Ping.probe()).active;
	}

	#startKeepalive(epoch: number): void {
		this.#stopKeepalive();
		const attempt = this.#attempt;
		if (!attempt || attempt.epoch !== epoch) return;
		const watchdog = new KeepaliveWatchdog({
			client: attempt.client,
			ping: this.#pingActive(),
			link: attempt,
			keepaliveMs: this.#o.keepaliveMs,
			keepaliveCount: this.#o.keepaliveCount,
			label: this.#o.label,
			onRtt: (ms) => {
				this.#rttMs = ms;
				this.#publish();
			},
			onTimeout: (error) => this.#dispatch({type: 'keepalive-timeout', epoch, error}),
		});
		this.#keepalive = {epoch, watchdog};
		watchdog.start();
	}

	#stopKeepalive(): void {
		this.#keepalive?.watchdog.stop();
		this.#keepalive = null;
	}

	/** After a clock jump: ping now and give the link a short grace to prove itself. */
	#checkNow(epoch: number): void {
		const ka = this.#keepalive;
		if (!this.#attempt || !ka || ka.epoch !== epoch) return;
		ka.watchdog.checkNow();
	}
}
