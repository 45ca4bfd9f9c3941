/**
 * The config file: where it is, its TOML read and checked (profiles, `[fleet.<alias>]` tables),
 * and the line of a key for messages.
 */
import {readFileSync} from 'node:fs';
import {join, resolve} from 'node:path';
import {parse as parseToml, TomlError} from 'smol-toml';
import type {Flags} from './argv.js';
import {ConfigError} from './errors.js';
import {isSettingName, type SettingName, settings} from './flags.js';
import {
	absoluteOrNull,
	closest,
	escapeRegExp,
	expandHome,
	isTable,
	flagOrVariable,
	normalizeKey,
} from './helpers.js';
import {parseJumpEntry} from './ssh-chain.js';
import {show} from './values.js';

export type FileLayer = {
	path: string;
	text: string;
	top: Record<string, unknown>;
	profile: Record<string, unknown> | null;
	profileName: string | null;
	/** `[fleet.<alias>]` tables, by alias, in the file's order. */
	fleet: Record<string, Record<string, unknown>>;
};

/** `--config FILE`, else `GPUJUP_CONFIG`, else `$XDG_CONFIG_HOME/gpujup/config.toml`. */
export function configFileLocation(
	flags: Flags,
	env: NodeJS.ProcessEnv,
	home: string,
	cwd: string,
): {path: string; explicit: {value: string; origin: string} | null} {
	const explicit = flagOrVariable(flags.config, '--config', env, 'GPUJUP_CONFIG');
	if (explicit && explicit.value === '') {
		throw new ConfigError(`${explicit.origin}: expected a file path, got ""`);
	}

	const configHome = absoluteOrNull(env.XDG_CONFIG_HOME) ?? join(home, '.config');
	const path = explicit
		? resolve(cwd, expandHome(explicit.value, home))
		: join(configHome, 'gpujup', 'config.toml');
	return {path, explicit};
}

export function loadConfigFile(
	flags: Flags,
	env: NodeJS.ProcessEnv,
	home: string,
	cwd: string,
): FileLayer | null {
	const {path, explicit} = configFileLocation(flags, env, home, cwd);

	const profileFlag = flagOrVariable(flags.profile, '--profile', env, 'GPUJUP_PROFILE');

	let text: string;
	try {
		text = readFileSync(path, 'utf8');
	} catch (error) {
		const code = (error as NodeJS.ErrnoException).code;
		if (!explicit && code === 'ENOENT') {
			if (profileFlag) {
				throw new ConfigError(
					`${profileFlag.origin}: no config file to read [profiles.${profileFlag.value}] from; create ${path} or pass --config FILE`,
				);
			}

			return null;
		}

		const why =
			code === 'ENOENT'
				? 'no such file'
				: code === 'EACCES'
					? 'permission denied'
					: (error as Error).message;
		throw new ConfigError(`${explicit?.origin ?? 'config'}: cannot read ${path}: ${why}`);
	}

	let parsed: Record<string, unknown>;
	try {
		parsed = parseToml(text) as Record<string, unknown>;
	} catch (error) {
		if (error instanceof TomlError) {
			const reason = (error.message.split('\n')[0] ?? '').replace(/^Invalid TOML document: /, '');
			throw new ConfigError(
				`${path}:${error.line}: invalid TOML: ${reason} (column ${error.column})`,
			);
		}

		throw new ConfigError(`${path}: invalid TOML: ${(error as Error).message}`);
	}

	const layer: FileLayer = {path, text, top: parsed, profile: null, profileName: null, fleet: {}};
	for (const key of Object.keys(parsed)) {
		const name = normalizeKey(key);
		if (name === 'profile' || name === 'profiles' || name === 'fleet' || isSettingName(name))
			continue;
		throw unknownKey(layer, [], key);
	}

	layer.fleet = fleetTables(layer);

	const profilesKey = Object.keys(parsed).find((key) => normalizeKey(key) === 'profiles');
	const profiles = profilesKey === undefined ? {} : parsed[profilesKey];
	if (!isTable(profiles) || !Object.values(profiles).every(isTable)) {
		throw new ConfigError(
			`${fileOrigin(layer, [], profilesKey ?? 'profiles')}: expected tables like [profiles.NAME], got ${show(profiles)}`,
		);
	}

	for (const [profileName, table] of Object.entries(profiles)) {
		for (const key of Object.keys(table as Record<string, unknown>)) {
			if (!isSettingName(normalizeKey(key)))
				throw unknownKey(layer, ['profiles', profileName], key);
		}
	}

	let selected = profileFlag;
	if (!selected) {
		const profileKey = Object.keys(parsed).find((key) => normalizeKey(key) === 'profile');
		if (profileKey !== undefined) {
			const value = parsed[profileKey];
			const origin = fileOrigin(layer, [], profileKey);
			if (typeof value !== 'string' || value === '') {
				throw new ConfigError(`${origin}: expected a profile name, got ${show(value)}`);
			}

			selected = {value, origin};
		}
	}

	if (selected) {
		const table = (profiles as Record<string, unknown>)[selected.value];
		if (!isTable(table)) {
			const names = Object.keys(profiles);
			throw new ConfigError(
				`${selected.origin}: no [profiles.${selected.value}] in ${path} (${names.length > 0 ? `it has: ${names.join(', ')}` : 'it has no profiles'})`,
			);
		}

		layer.profile = table;
		layer.profileName = selected.value;
	}

	return layer;
}

function unknownKey(file: FileLayer, table: string[], key: string): ConfigError {
	const guess = closest(normalizeKey(key), [
		...Object.keys(settings),
		...(table.length === 0 ? ['profile'] : []),
	]);
	return new ConfigError(
		`${fileLine(file, table, key)}: unknown key "${key}"${guess ? `; did you mean "${guess}"?` : ''}`,
	);
}

export function fileOrigin(file: FileLayer, table: string[], key: string): string {
	return `${fileLine(file, table, key)}: key "${key}"`;
}

/** `path:line` for a key in a table; smol-toml keeps no positions, so scan the text ourselves. */
export function fileLine(file: FileLayer, table: string[], key: string): string {
	const line = findKeyLine(file.text, table, key);
	return line === null ? file.path : `${file.path}:${line}`;
}

/** The 1-based line where `key` is set in the table `table` (dotted path), or null. */
export function findKeyLine(text: string, table: readonly string[], key: string): number | null {
	const lines = text.split(/\r?\n/);
	const wanted = table.join('.');
	let current = '';
	let fallback: number | null = null;
	const keyPattern = new RegExp(
		`^\\s*(?:"${escapeRegExp(key)}"|'${escapeRegExp(key)}'|${escapeRegExp(key)})\\s*=`,
	);
	for (const [index, line] of lines.entries()) {
		const header = /^\s*\[\s*([^\][]+?)\s*\]\s*(?:#.*)?$/.exec(line);
		if (header) {
			current = (header[1] ?? '')
				.split('.')
				.map((part) => part.trim().replace(/^["']|["']$/g, ''))
				.join('.');
			continue;
		}

		if (/^\s*\[\[/.test(line)) {
			current = '\0array';
			continue;
		}

		if (keyPattern.test(line)) {
			if (current === wanted) return index + 1;
			fallback ??= index + 1;
		}
	}

	return fallback;
}

/**
 * The keys a `[fleet.<alias>]` table may set: how to reach that GPU host and what to forward.
 * The rest (the dashboard, the GPU host's own settings, Slurm) are the run's, not a host's.
 */
export const fleetKeys: readonly SettingName[] = [
	'relay',
	'relay-port',
	'host-user',
	'jupyter-port',
	'local-port',
	'identity',
	'known-hosts',
	'accept-new',
	'keepalive',
	'keepalive-count',
	'host-key-alias',
	'forward',
	'jupyter-log',
	'nvidia-smi',
	'notify-after',
	'relay-key',
	'host-key',
];

function fleetTables(layer: FileLayer): Record<string, Record<string, unknown>> {
	const fleetKey = Object.keys(layer.top).find((key) => normalizeKey(key) === 'fleet');
	if (fleetKey === undefined) return {};
	const tables = layer.top[fleetKey];
	if (!isTable(tables) || !Object.values(tables).every(isTable))
		throw new ConfigError(
			`${fileOrigin(layer, [], fleetKey)}: expected tables like [fleet.ALIAS], got ${show(tables)}`,
		);
	for (const [alias, table] of Object.entries(tables as Record<string, Record<string, unknown>>)) {
		if (parseJumpEntry(alias)?.host !== alias)
			throw new ConfigError(
				`${fileLine(layer, ['fleet', alias], Object.keys(table)[0] ?? alias)}: [fleet.${alias}]: expected an ~/.ssh/config alias or a host name`,
			);
		for (const key of Object.keys(table)) {
			const name = normalizeKey(key);
			if (isSettingName(name) && fleetKeys.includes(name)) continue;
			const where = fileLine(layer, ['fleet', alias], key);
			if (isSettingName(name))
				throw new ConfigError(
					`${where}: "${key}" is not a per-host key; [fleet.${alias}] takes ${fleetKeys.join(', ')} (put "${key}" at the top level)`,
				);
			const guess = closest(name, fleetKeys);
			throw new ConfigError(
				`${where}: unknown key "${key}"${guess ? `; did you mean "${guess}"?` : ''}`,
			);
		}
	}

	return tables as Record<string, Record<string, unknown>>;
}
