/**
 * A TCP proxy on 127.0.0.1 that can misbehave like a network: stall (blackhole), reset every
 * connection, throttle and add latency. Put it between a client and the relay's sshd (or any hop)
 * and point the client at `proxy.port`.
 *
 * Blackhole semantics: nothing moves either way and nothing closes — not data, not FIN, not RST.
 * Each side's socket is paused, so unread bytes stay in the kernel buffers (the sender's TCP stalls
 * as on a dead link), and anything the proxy had already read is held. Back to 'pass', everything
 * held is delivered in order (buffered, never dropped), including a close that happened meanwhile.
 * Connections accepted during a blackhole are held the same way (the upstream connect happens, but
 * no byte of the banner gets through).
 */
import net from 'node:net';

export type FaultMode = 'pass' | 'blackhole';

export type FaultProxy = {
	readonly port: number;
	readonly host: '127.0.0.1';
	readonly mode: FaultMode;
	setMode(mode: FaultMode): void;
	/** Destroy every current connection with a TCP RST on both sides. New ones are accepted. */
	resetAll(): void;
	/** Limit each direction of each connection to this rate; null removes the limit. */
	throttle(bytesPerSecond: number | null): void;
	/** One-way latency added to each direction (an RTT of 2 × ms); 0 removes it. */
	delay(ms: number): void;
	/** Connections open now. */
	readonly connections: number;
	/** Connections accepted since start. */
	readonly accepted: number;
	dispose(): Promise<void>;
};

type Item = {readonly data: Buffer | 'end' | 'destroy'; readonly due: number};

/** What one direction holds before it pauses its source, by default (see `holdBytes`). */
const defaultHoldBytes = 4 * 1024 * 1024;

type Settings = {
	mode: FaultMode;
	bytesPerSecond: number | null;
	delayMs: number;
	/** Pause the source above this many bytes held; resume below a quarter of it. */
	readonly holdBytes: number;
};

/** One direction: bytes read from `source`, queued with their due time, written to `sink`. */
class Pump {
	private readonly queue: Item[] = [];
	private queued = 0;
	private timer: NodeJS.Timeout | undefined;
	private waitingDrain = false;
	private tokens = 0;
	private lastRefill = Date.now();
	private finished = false;

	constructor(
		private readonly source: net.Socket,
		private readonly sink: net.Socket,
		private readonly settings: Settings,
	) {
		source.on('data', (chunk: Buffer) => {
			this.push(chunk);
		});
		let ended = false;
		source.on('end', () => {
			ended = true;
			this.push('end');
		});
		// A close without a clean end (RST, error) is passed on as a destroy of the other side.
		source.on('close', (hadError: boolean) => {
			if (hadError || !ended) this.push('destroy');
		});
	}

	kick(): void {
		this.updateFlow();
		this.run();
	}

	stop(): void {
		this.finished = true;
		clearTimeout(this.timer);
		this.queue.length = 0;
	}

	private push(data: Item['data']): void {
		if (this.finished) return;
		this.queue.push({data, due: Date.now() + this.settings.delayMs});
		if (Buffer.isBuffer(data)) this.queued += data.length;
		this.updateFlow();
		this.run();
	}

	/** Pause the source while blackholed or when too much is held. */
	private updateFlow(): void {
		if (this.source.destroyed) return;
		const {holdBytes} = this.settings;
		if (this.settings.mode === 'blackhole' || this.queued > holdBytes || this.waitingDrain) {
			this.source.pause();
		} else if (this.queued < holdBytes / 4) {
			this.source.resume();
		}
	}

	private run(): void {
		if (this.finished || this.waitingDrain) return;
		clearTimeout(this.timer);
		this.timer = undefined;
		while (this.queue.length > 0 && this.settings.mode === 'pass') {
			const item = this.queue[0]!;
			const now = Date.now();
			if (item.due > now) {
				this.schedule(item.due - now);
				return;
			}
			if (item.data === 'end' || item.data === 'destroy') {
				this.queue.shift();
				if (item.data === 'end') this.sink.end();
				else this.sink.destroy();
				continue;
			}
			let chunk = item.data;
			const rate = this.settings.bytesPerSecond;
			if (rate !== null) {
				this.refill(rate, now);
				if (this.tokens < 1) {
					this.schedule(
						Math.max(1, Math.ceil(((Math.min(chunk.length, 16_384) - this.tokens) / rate) * 1000)),
					);
					return;
				}
				if (chunk.length > this.tokens) {
					const part = Math.floor(this.tokens);
					this.queue[0] = {data: chunk.subarray(part), due: item.due};
					chunk = chunk.subarray(0, part);
				} else {
					this.queue.shift();
				}
				this.tokens -= chunk.length;
			} else {
				this.queue.shift();
			}
			this.queued -= chunk.length;
			if (this.sink.destroyed) continue;
			if (!this.sink.write(chunk)) {
				this.waitingDrain = true;
				this.updateFlow();
				this.sink.once('drain', () => {
					this.waitingDrain = false;
					this.kick();
				});
				return;
			}
		}
		this.updateFlow();
	}

	private refill(rate: number, now: number): void {
		// A burst of at most 50 ms worth (and at least one full-size segment) keeps the rate honest.
		const capacity = Math.max(rate * 0.05, 16_384);
		this.tokens = Math.min(capacity, this.tokens + ((now - this.lastRefill) / 1000) * rate);
		this.lastRefill = now;
	}

	private schedule(ms: number): void {
		clearTimeout(this.timer);
		this.timer = setTimeout(() => {
			this.timer = undefined;
			this.run();
		}, ms);
	}

	resetTokens(): void {
		this.tokens = 0;
		this.lastRefill = Date.now();
	}
}

type Pair = {client: net.Socket; upstream: net.Socket; pumps: Pump[]};

/** Start a fault proxy to targetHost:targetPort (default 127.0.0.1) on 127.0.0.1:<random>. */
export async function startFaultProxy(options: {
	targetPort: number;
	targetHost?: string;
	/**
	 * The most each direction holds before it stops reading (default 4 MiB). A delayed link holds
	 * rate × delay in flight: a shaped path of 1 Gbit/s and 50 ms each way needs more than 6 MB.
	 */
	holdBytes?: number;
}): Promise<FaultProxy> {
	const settings: Settings = {
		mode: 'pass',
		bytesPerSecond: null,
		delayMs: 0,
		holdBytes: options.holdBytes ?? defaultHoldBytes,
	};
	const pairs = new Set<Pair>();
	let accepted = 0;

	const server = net.createServer({pauseOnConnect: true, allowHalfOpen: true}, (client) => {
		accepted++;
		const upstream = net.connect({
			host: options.targetHost ?? '127.0.0.1',
			port: options.targetPort,
			allowHalfOpen: true,
		});
		upstream.pause();
		const pair: Pair = {client, upstream, pumps: []};
		pairs.add(pair);
		for (const socket of [client, upstream]) {
			socket.setNoDelay(true);
			socket.on('error', () => {});
		}
		pair.pumps.push(new Pump(client, upstream, settings), new Pump(upstream, client, settings));
		const forget = () => {
			if (client.destroyed && upstream.destroyed) {
				for (const pump of pair.pumps) pump.stop();
				pairs.delete(pair);
			}
		};
		client.on('close', forget);
		upstream.on('close', forget);
		for (const pump of pair.pumps) pump.kick();
	});
	server.on('error', () => {});
	await new Promise<void>((resolve, reject) => {
		server.once('error', reject);
		server.listen({host: '127.0.0.1', port: 0}, () => resolve());
	});
	const address = server.address();
	const port = typeof address === 'object' && address ? address.port : 0;

	const kickAll = () => {
		for (const pair of pairs) for (const pump of pair.pumps) pump.kick();
	};

	return {
		port,
		host: '127.0.0.1',
		get mode() {
			return settings.mode;
		},
		setMode(mode) {
			settings.mode = mode;
			kickAll();
		},
		resetAll() {
			for (const pair of pairs) {
				for (const pump of pair.pumps) pump.stop();
				for (const socket of [pair.client, pair.upstream]) {
					if (socket.destroyed) continue;
					// resetAndDestroy needs a connected TCP handle; fall back to a plain destroy.
					try {
						socket.resetAndDestroy();
					} catch {
						socket.destroy();
					}
				}
			}
			pairs.clear();
		},
		throttle(bytesPerSecond) {
			if (bytesPerSecond !== null && !(bytesPerSecond > 0))
				throw new Error('throttle: rate must be > 0 or null');
			settings.bytesPerSecond = bytesPerSecond;
			for (const pair of pairs) for (const pump of pair.pumps) pump.resetTokens();
			kickAll();
		},
		delay(ms) {
			if (!(ms >= 0)) throw new Error('delay: ms must be >= 0');
			settings.delayMs = ms;
			kickAll();
		},
		get connections() {
			return pairs.size;
		},
		get accepted() {
			return accepted;
		},
		async dispose() {
			const closed = new Promise<void>((resolve) => server.close(() => resolve()));
			for (const pair of pairs) {
				for (const pump of pair.pumps) pump.stop();
				pair.client.destroy();
				pair.upstream.destroy();
			}
			pairs.clear();
			await closed;
		},
	};
}
