import path from 'node:path';
import type {Config, RelayConfig} from '../config/types.js';
import type {AppAction, AppState} from '../core/app-state.js';
import type {Store} from '../core/store.js';
import {connectStore, runConnect, type ConnectHandle} from './connect.js';
import {HopPool} from './hop-pool.js';
import {
	chainVia,
	configSources,
	profileDir,
	relayAsTyped,
	type AskerFactory,
} from './ssh-options.js';

/** One GPU host of a fleet: its name, its own Config and store (the panes of its dashboard). */
export type FleetHost = {
	readonly name: string;
	readonly config: RelayConfig;
	readonly store: Store<AppState, AppAction>;
};

/** A running fleet: one session per host, the hops before the GPU hosts shared. */
export type FleetHandle = {
	readonly hosts: ReadonlyArray<{readonly name: string; readonly handle: ConnectHandle}>;
	/** How many connections the hosts share (one relay: 1). */
	readonly sharedConnections: number;
	dispose(): Promise<void>;
};

/** The fleet's hosts (`config.fleet`, each with its relay), each with a single `gpujup ALIAS`'s store. */
export function fleetHosts(members: readonly RelayConfig[]): FleetHost[] {
	return members.map((host) => ({
		name: host.fleetName ?? host.hostAlias ?? 'host',
		config: host,
		store: connectStore(host, {
			subtitle: host.hostAlias ? chainVia(host) : `via ${relayAsTyped(host.relay)}`,
			configFile: configSources(host),
		}),
	}));
}

/** Where a fleet host's control socket is: `${stateDir}/<profile>/fleet/<name>.sock`. */
export function fleetSocketPath(config: Config, name: string): string {
	// An alias is a host name (letters, digits, `.`, `-`, `_`); anything else is spelled out.
	const file = /^[\w.-]+$/.test(name) ? name : encodeURIComponent(name);
	return path.join(profileDir(config), 'fleet', `${file}.sock`);
}

/** The directory of the fleet's sockets, for `status` and `url` to find a running fleet. */
export function fleetSocketDir(config: Config): string {
	return path.join(profileDir(config), 'fleet');
}

/**
 * `gpujup A B …`: one `runConnect` per GPU host over one shared relay connection (every hop the
 * hosts' chains have in common is one ssh2 Client: the GPU hosts' hops go over its forwardOut),
 * each host with its own chain tail, local port, store and handle. A host that cannot start
 * (its local port taken) stops the whole fleet, as it would stop `gpujup ALIAS`.
 */
export async function runFleet(
	hosts: readonly FleetHost[],
	askers: ReadonlyMap<string, AskerFactory>,
): Promise<FleetHandle> {
	const pool = new HopPool();
	const started: Array<{name: string; handle: ConnectHandle}> = [];
	const dispose = async () => {
		await Promise.all(started.map(async ({handle}) => handle.dispose()));
		await pool.dispose();
	};

	try {
		for (const host of hosts) {
			const asker = askers.get(host.name) ?? (() => ({}));
			const handle = await runConnect(host.config, host.store, asker, pool);
			started.push({name: host.name, handle});
		}
	} catch (error) {
		await dispose();
		throw error;
	}

	return {hosts: started, sharedConnections: pool.size, dispose};
}
