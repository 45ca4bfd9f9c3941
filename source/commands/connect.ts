import {needRelay, withSlurm} from '../config/narrow.js';
import type {RelayConfig} from '../config/types.js';
import {connectStore, runConnect} from '../wiring/connect.js';
import {runSlurmConnect, slurmStore} from '../wiring/slurm.js';
import {chainVia, configSources, relayAsTyped} from '../wiring/ssh-options.js';
import {runSession} from '../shell/session.js';

/** `gpujup` / `gpujup connect`. */
export async function runConnectCommand(config: RelayConfig): Promise<number> {
	// Several GPU hosts (`gpujup A B`, `[fleet.<alias>]`): one relay connection, the fleet view.
	if (config.fleet && config.fleet.length > 1) {
		const {runFleetCommand} = await import('../shell/fleet-session.js');
		return runFleetCommand(config, config.fleet.map(needRelay));
	}

	const slurm = withSlurm(config);
	if (slurm) {
		const store = slurmStore(slurm, {configFile: configSources(slurm)});
		return runSession({
			config: slurm,
			store,
			socket: 'connect',
			start: async (asker) => runSlurmConnect(slurm, store, asker),
		});
	}

	const store = connectStore(config, {
		subtitle: config.hostAlias ? chainVia(config) : `via ${relayAsTyped(config.relay)}`,
		configFile: configSources(config),
	});
	return runSession({
		config,
		store,
		socket: 'connect',
		start: async (asker) => runConnect(config, store, asker),
	});
}
