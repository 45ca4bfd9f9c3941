/** Fleet: several GPU hosts behind one relay (`gpujup A B`, `[fleet.<alias>]` tables). */
import {dirname} from 'node:path';
import {fleetCommands} from './argv.js';
import {type FileLayer, fileOrigin} from './config-file.js';
import {ConfigError} from './errors.js';
import type {SettingName} from './flags.js';
import {normalizeKey} from './helpers.js';
import {sshLookup} from './host-keys.js';
import {findKey} from './layers.js';
import {parseJumpEntry} from './ssh-chain.js';
import type {SshConfigOptions} from './ssh-config.js';
import type {Command, Config} from './types.js';
import type {Given} from './values.js';

/** Local ports of the hosts of a fleet are this far apart: 19507, 19517, 19527 … */
export const fleetPortStep = 10;

/** One host of a fleet, as the command line and the config file name it. */
export type FleetMember = {
	readonly name: string;
	/** Its `[fleet.<name>]` table, or null when it has none. */
	readonly table: Record<string, unknown> | null;
	readonly index: number;
	readonly count: number;
	/** Its table names a relay (`relay`, `relay-port`): a two-hop chain, not an ~/.ssh/config alias. */
	readonly viaRelay: boolean;
};

/**
 * The hosts of this run: `gpujup A B …` (connect, status), else, with no alias or `host` given,
 * every `[fleet.<alias>]` table. One host alone (an alias, or a single table) is no fleet unless
 * it has a table to apply; none: the single-host run of today.
 */
export function fleetOf(
	picked: {command: Command | 'help'; alias: string | null; more: readonly string[]},
	file: FileLayer | null,
	getTop: (name: SettingName) => Given | undefined,
	sshOptions: SshConfigOptions,
): FleetMember[] {
	const {command} = picked;
	const tables = file?.fleet ?? {};
	const isFleetCommand = fleetCommands.includes(command as Command);
	if (!isFleetCommand && command !== 'url') return [];
	let names: string[];
	if (picked.alias !== null) {
		if (command === 'url') return [];
		names = [picked.alias, ...picked.more];
	} else if (getTop('host')) {
		return [];
	} else {
		names = Object.keys(tables);
	}

	if (names.length === 0) return [];
	if (names.length === 1 && !Object.hasOwn(tables, names[0]!)) return [];
	const seen = new Set<string>();
	for (const name of names) {
		if (seen.has(name))
			throw new ConfigError(`"${name}" is named twice; give each host once (gpujup A B …)`);
		seen.add(name);
	}

	return names.map((name, index) => {
		const table = Object.hasOwn(tables, name) ? tables[name]! : null;
		const viaRelay =
			table !== null &&
			Object.keys(table).some((key) => ['relay', 'relay-port'].includes(normalizeKey(key)));
		// A typo among several hosts would be dialled as a host name of its own: say so instead.
		if (names.length > 1 && table === null && command !== 'url') {
			if (parseJumpEntry(name)?.host !== name)
				throw new ConfigError(
					`"${name}": expected an ~/.ssh/config alias or a host name (user and port go in ~/.ssh/config or [fleet.${name}])`,
				);
			const ssh = sshLookup(name, sshOptions, {origin: 'the alias', host: name});
			if (ssh.hostName === null && ssh.proxyJump === null && ssh.proxyCommand === null)
				throw new ConfigError(
					`"${name}": no Host ${name} in ~/.ssh/config and no [fleet.${name}] in ${file?.path ?? 'the config file'}; gpujup A B … takes the aliases of GPU hosts`,
				);
		}

		return {name, table, index, count: names.length, viaRelay};
	});
}

/** A setting from a fleet host's own table, named by its file, line and table. */
export function fleetGiven(
	file: FileLayer,
	member: FleetMember,
	name: SettingName,
): Given | undefined {
	if (!member.table) return undefined;
	const key = findKey(member.table, name);
	if (key === undefined) return undefined;
	return {
		value: member.table[key],
		origin: fileOrigin(file, ['fleet', member.name], key),
		baseDir: dirname(file.path),
	};
}

/**
 * A fleet host's Config: its name, and, unless its table sets them, its local ports moved by
 * {@link fleetPortStep} per host (19507, 19517, …; 0 stays 0) so no two hosts want the same one.
 */
export function fleetHostConfig(
	config: Config,
	member: FleetMember,
	get: (name: SettingName) => Given | undefined,
	own: (name: SettingName) => boolean,
): Config {
	if (member.count < 2) return config;
	const shift = member.index * fleetPortStep;
	const moved = (port: number, name: SettingName): number => {
		if (port === 0 || own(name)) return port;
		const next = port + shift;
		if (next > 65_535)
			throw new ConfigError(
				`${get(name)?.origin ?? name}: ${port} + ${shift} for the fleet's host ${member.index + 1} (${member.name}) is past 65535; give [fleet.${member.name}] a ${name} of its own`,
			);
		return next;
	};

	return {
		...config,
		fleetName: member.name,
		localPort: moved(config.localPort, 'local-port'),
		forwards: config.forwards.map((spec) => ({...spec, local: moved(spec.local, 'forward')})),
	};
}
