/**
 * Each command narrows its Config once, where it starts: parseCli leaves `relay` and `slurm`
 * nullable (`url`, `status`, `demo` and `pair` may run without a relay; only `--slurm` has Slurm
 * settings), and a command that dials the relay takes a RelayConfig, one with `--slurm` a
 * SlurmConfig, so nothing after needs to check again.
 */
import {ConfigError} from './errors.js';
import type {Config, RelayConfig, SlurmConfig} from './types.js';

/** The config with its relay, or null when none is configured. */
export function withRelay(config: Config): RelayConfig | null {
	const {relay} = config;
	return relay ? {...config, relay} : null;
}

/**
 * The config of a command that dials the relay. parseCli refuses connect, doctor and host
 * without one; a fleet's host whose table names no relay is refused here.
 */
export function needRelay(config: Config): RelayConfig {
	const relayed = withRelay(config);
	if (relayed) return relayed;
	const which = config.fleetName ? ` (host ${config.fleetName})` : '';
	throw new ConfigError(
		`--relay: required for "${config.command}"${which}; give --relay [user@]host[:port] (or GPUJUP_RELAY, or relay = "…" in the config file), or an ~/.ssh/config alias: gpujup ALIAS`,
	);
}

/** With `--slurm`: the config with its Slurm settings; null without. */
export function withSlurm(config: RelayConfig): SlurmConfig | null {
	const {slurm} = config;
	return slurm ? {...config, slurm} : null;
}
