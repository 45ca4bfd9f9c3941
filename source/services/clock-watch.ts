import {EventEmitter} from 'node:events';
import os from 'node:os';
import {performance} from 'node:perf_hooks';

/** Options for {@link ClockWatch}; the clocks are injectable for tests. */
export type ClockWatchOptions = {
	/** How often to compare the clocks (default 1000 ms). */
	readonly intervalMs?: number;
	/** Drift that counts as a jump (default 5000 ms). */
	readonly thresholdMs?: number;
	/** Wall clock (default Date.now): jumps on suspend/resume and on clock changes. */
	readonly wallNow?: () => number;
	/** Monotonic clock (default performance.now): does not advance while suspended. */
	readonly monotonicNow?: () => number;
	/** A fingerprint of the network setup (default: the non-internal addresses of os.networkInterfaces). */
	readonly network?: () => string;
};

/** The non-internal addresses, sorted: changes when Wi-Fi switches, a VPN comes up, a cable is pulled. */
export function networkFingerprint(): string {
	const addresses: string[] = [];
	for (const [name, list] of Object.entries(os.networkInterfaces())) {
		for (const info of list ?? []) if (!info.internal) addresses.push(`${name}/${info.address}`);
	}
	return addresses.sort().join(',');
}

type ClockWatchEvents = {jump: [driftMs: number]; network: []};

/**
 * Notices a suspend/resume (or a clock change) by comparing the wall clock with the monotonic one:
 * event-loop lag moves both alike, a suspend moves only the wall clock. Emits `jump` with the
 * drift, so hops can check their links and retry at once instead of waiting out stale timers.
 * Emits `network` when the machine's addresses change (Wi-Fi switch, VPN), for the same reason.
 */
export class ClockWatch extends EventEmitter<ClockWatchEvents> {
	readonly #intervalMs: number;
	readonly #thresholdMs: number;
	readonly #wallNow: () => number;
	readonly #monotonicNow: () => number;
	readonly #network: () => string;
	#lastNetwork = '';
	#timer: NodeJS.Timeout | undefined;
	#lastWall = 0;
	#lastMonotonic = 0;

	constructor(options: ClockWatchOptions = {}) {
		super();
		this.#intervalMs = options.intervalMs ?? 1000;
		this.#thresholdMs = options.thresholdMs ?? 5000;
		this.#wallNow = options.wallNow ?? Date.now;
		this.#monotonicNow = options.monotonicNow ?? (() => performance.now());
		this.#network = options.network ?? networkFingerprint;
	}

	/** Start comparing the clocks; idempotent. The timer never keeps the process alive. */
	start(): void {
		if (this.#timer) return;
		this.#lastWall = this.#wallNow();
		this.#lastMonotonic = this.#monotonicNow();
		this.#lastNetwork = this.#network();
		this.#timer = setInterval(() => this.check(), this.#intervalMs);
		this.#timer.unref();
	}

	/** Compare the clocks now (the timer calls this); emits `jump` when they drifted apart. */
	check(): void {
		const wall = this.#wallNow();
		const monotonic = this.#monotonicNow();
		const drift = wall - this.#lastWall - (monotonic - this.#lastMonotonic);
		this.#lastWall = wall;
		this.#lastMonotonic = monotonic;
		if (Math.abs(drift) > this.#thresholdMs) this.emit('jump', drift);
		const network = this.#network();
		if (network !== this.#lastNetwork) {
			this.#lastNetwork = network;
			this.emit('network');
		}
	}

	/** Whether the timer runs. */
	get running(): boolean {
		return this.#timer !== undefined;
	}

	/** Stop the timer; listeners stay attached. */
	dispose(): void {
		if (this.#timer) clearInterval(this.#timer);
		this.#timer = undefined;
	}
}

let shared: ClockWatch | undefined;
let subscribers = 0;

/** The process-wide watch behind {@link onClockJump}. */
export function sharedClockWatch(): ClockWatch {
	shared ??= new ClockWatch();
	return shared;
}

/**
 * Subscribe to the process-wide clock watch (one timer however many hops): `listener` runs on a
 * clock jump (with the drift) and on a network change (drift 0). Returns the unsubscribe
 * function; the timer stops with the last subscriber.
 */
export function onClockJump(listener: (driftMs: number) => void): () => void {
	const watch = sharedClockWatch();
	const onNetwork = () => listener(0);
	watch.on('jump', listener);
	watch.on('network', onNetwork);
	if (subscribers++ === 0) watch.start();
	let active = true;
	return () => {
		if (!active) return;
		active = false;
		watch.off('jump', listener);
		watch.off('network', onNetwork);
		if (--subscribers === 0) watch.dispose();
	};
}
