import {performance} from 'node:perf_hooks';
import type {ClassifiedError} from '../core/types.js';
import {sendPing} from './workarounds/ssh2-ping.js';

/** The link a watchdog watches: `lastInbound` is performance.now() of the last byte received. */
export type WatchedLink = {
	lastInbound: number;
};

export type KeepaliveWatchdogOptions = {
	/** The ssh2 client the keepalives are sent on. */
	readonly client: unknown;
	/**
	 * Send our pings (ssh2-ping active). False: ssh2's public keepalive sends them and only the
	 * deadline runs here, so no RTT is reported.
	 */
	readonly ping: boolean;
	readonly link: WatchedLink;
	/** Interval of our keepalive, in ms (SPEC `--keepalive` × 1000). */
	readonly keepaliveMs: number;
	/** Intervals of total silence before the link is declared lost. */
	readonly keepaliveCount: number;
	/** What the user reads in the timeout message. */
	readonly label: string;
	/** A keepalive's round trip, in ms (0.1 ms steps). */
	readonly onRtt: (ms: number) => void;
	/** Nothing at all received for keepalive × count: the link is down. Called once at most. */
	readonly onTimeout: (error: ClassifiedError) => void;
};

/**
 * Our own keepalive for one ready connection: a ping every interval, which also measures the RTT
 * (ssh2's public keepalive sends them instead where its internals moved), and a deadline that
 * counts any inbound byte as life (OpenSSH semantics), so a slow but healthy download is never cut.
 */
export class KeepaliveWatchdog {
	readonly #o: KeepaliveWatchdogOptions;
	#interval: NodeJS.Timeout | undefined;
	#deadline: NodeJS.Timeout | undefined;
	#pingOutstanding = false;
	#stopped = false;

	constructor(options: KeepaliveWatchdogOptions) {
		this.#o = options;
	}

	start(): void {
		if (this.#o.ping) this.#interval = setInterval(() => this.#ping(), this.#o.keepaliveMs);
		this.#armDeadline();
		// Measure the RTT at once instead of one interval later.
		this.#ping();
	}

	stop(): void {
		this.#stopped = true;
		clearInterval(this.#interval);
		clearTimeout(this.#deadline);
	}

	/** After a clock jump: ping now and give the link a short grace to prove itself. */
	checkNow(): void {
		if (this.#stopped) return;
		const limit = this.#o.keepaliveMs * this.#o.keepaliveCount;
		const grace = Math.min(limit, Math.max(2 * this.#o.keepaliveMs, 3000));
		this.#o.link.lastInbound = performance.now();
		this.#pingOutstanding = false;
		this.#ping();
		this.#armDeadline(grace);
	}

	/** Declare the link lost only after keepalive × count with nothing at all received. */
	#armDeadline(limitMs?: number): void {
		clearTimeout(this.#deadline);
		const link = this.#o.link;
		const limit = limitMs ?? this.#o.keepaliveMs * this.#o.keepaliveCount;
		const armedAt = performance.now();
		const remaining = link.lastInbound + limit - armedAt;
		if (remaining > 0) {
			// A shortened limit (after a clock jump) lasts only until the link shows life again.
			this.#deadline = setTimeout(
				() => this.#armDeadline(link.lastInbound > armedAt ? undefined : limitMs),
				remaining + 1,
			);
			return;
		}
		if (this.#stopped) return;
		const seconds = (limit / 1000).toFixed(limit < 10_000 ? 1 : 0);
		this.#o.onTimeout({
			kind: 'timeout',
			message: `nothing received from ${this.#o.label} for ${seconds} s (keepalive ${this.#o.keepaliveMs / 1000} s × ${this.#o.keepaliveCount}) — the link is down`,
		});
	}

	#ping(): void {
		if (!this.#o.ping || this.#stopped || this.#pingOutstanding) return;
		const sent = performance.now();
		this.#pingOutstanding = true;
		const ok = sendPing(this.#o.client, () => {
			this.#pingOutstanding = false;
			if (this.#stopped) return;
			this.#o.onRtt(Math.round((performance.now() - sent) * 10) / 10);
		});
		if (!ok) this.#pingOutstanding = false;
	}
}
