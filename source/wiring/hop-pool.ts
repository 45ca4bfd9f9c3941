import type {ChainHop} from '../config/types.js';
import type {HopStatus} from '../core/types.js';
import type {SshHop} from '../services/ssh-hop.js';

/** What a hop reports: the status patch every SshHop publishes whole on each change. */
type HopPatch = Partial<Omit<HopStatus, 'hop' | 'index' | 'name'>>;

/**
 * The hops that several chains share: a fleet's GPU hosts behind one relay reach it over one
 * connection. A hop is shared when the chain up to it is the same (host, port and user of every
 * hop so far); each chain sharing it hears its status in its own store. The pool, not the chain,
 * starts and disposes a shared hop.
 */
export class HopPool {
	readonly #hops = new Map<
		string,
		{hop: SshHop; listeners: Array<(patch: HopPatch) => void>; last: HopPatch | null}
	>();

	/**
	 * The shared hop for `prefix` (the chain up to and including it), made with `make` the first
	 * time; `listener` hears every status from now on, the latest one at once.
	 */
	hop(
		prefix: readonly ChainHop[],
		make: (onStatus: (patch: HopPatch) => void) => SshHop,
		listener: (patch: HopPatch) => void,
	): SshHop {
		const key = JSON.stringify(prefix.map((hop) => [hop.host, hop.port, hop.user]));
		let entry = this.#hops.get(key);
		if (!entry) {
			const created: {
				hop?: SshHop;
				listeners: Array<(patch: HopPatch) => void>;
				last: HopPatch | null;
			} = {listeners: [], last: null};
			created.hop = make((patch) => {
				created.last = patch;
				for (const hear of created.listeners) hear(patch);
			});
			// Every chain over it listens for its ready and down.
			created.hop.setMaxListeners(0);
			entry = created as {hop: SshHop; listeners: typeof created.listeners; last: HopPatch | null};
			this.#hops.set(key, entry);
		}

		entry.listeners.push(listener);
		if (entry.last) listener(entry.last);
		return entry.hop;
	}

	/** Whether `hop` is the pool's (the chain must neither start nor dispose it alone). */
	owns(hop: SshHop): boolean {
		for (const entry of this.#hops.values()) if (entry.hop === hop) return true;
		return false;
	}

	/** How many connections the pool holds. */
	get size(): number {
		return this.#hops.size;
	}

	/** Start every shared hop (each waits for the one before it). */
	start(): void {
		for (const {hop} of this.#hops.values()) hop.start();
	}

	/** Dispose the shared hops, the last made first (a hop after the one it runs over). */
	async dispose(): Promise<void> {
		for (const {hop} of [...this.#hops.values()].reverse()) await hop.dispose();
		this.#hops.clear();
	}
}
