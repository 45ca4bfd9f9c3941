import {appendFileSync, mkdirSync, readFileSync} from 'node:fs';
import path from 'node:path';
import {parse as parseToml, TomlError} from 'smol-toml';
import {ConfigError} from '../config/resolve.js';
import {isTable, normalizeKey} from '../config/helpers.js';
import type {Config} from '../config/types.js';
import {
	PairingError,
	pairingProfileToml,
	pairingRelaySpec,
	parsePairing,
	profileHeader,
	type Pairing,
} from '../core/pairing.js';
import {tildify} from '../services/ssh-auth.js';

/** The 1-based line of the `[profiles.NAME]` header, or null (a dotted-key or inline form). */
function tableLine(text: string, name: string): number | null {
	const lines = text.split(/\r?\n/);
	for (const [index, line] of lines.entries()) {
		const header = /^\s*\[\s*profiles\s*\.\s*(.+?)\s*\]\s*(?:#.*)?$/.exec(line);
		if (header && header[1]?.replace(/^(["'])(.*)\1$/, '$2') === name) return index + 1;
	}

	return null;
}

function readConfig(file: string): string {
	try {
		return readFileSync(file, 'utf8');
	} catch (error) {
		if ((error as NodeJS.ErrnoException).code === 'ENOENT') return '';
		throw new ConfigError(`pair: cannot read ${file}: ${(error as Error).message}`);
	}
}

function parseConfig(file: string, text: string, what: string): Record<string, unknown> {
	try {
		return parseToml(text) as Record<string, unknown>;
	} catch (error) {
		const where = error instanceof TomlError ? `${file}:${error.line}` : file;
		const reason = ((error as Error).message.split('\n')[0] ?? '').replace(
			/^Invalid TOML document: /,
			'',
		);
		throw new ConfigError(`pair: ${where}: ${what}: ${reason}; nothing was written`);
	}
}

/**
 * `gpujup pair STRING [--name NAME]`: check the string, then append `[profiles.NAME]` with the
 * relay, the ports, the GPU host's user and both pins to config.toml. An existing profile of that
 * name is never replaced: the command refuses and names it.
 */
export async function runPairCommand(config: Config): Promise<number> {
	let pairing: Pairing;
	try {
		pairing = parsePairing(config.pairString ?? '');
	} catch (error) {
		if (error instanceof PairingError)
			throw new ConfigError(`pair: not a pairing string: ${error.message}`);
		throw error;
	}

	const name = config.pairName ?? pairing.relay.host;
	const file = config.configPath ?? path.join(config.home, '.config', 'gpujup', 'config.toml');
	const before = readConfig(file);
	const parsed = parseConfig(file, before, 'invalid TOML, fix it first');
	const profiles = Object.entries(parsed).find(([key]) => normalizeKey(key) === 'profiles')?.[1];
	if (profiles !== undefined && !isTable(profiles))
		throw new ConfigError(
			`pair: ${file}: "profiles" is not a table of [profiles.NAME]; nothing was written`,
		);
	if (profiles && Object.hasOwn(profiles, name)) {
		const line = tableLine(before, name);
		throw new ConfigError(
			`pair: ${profileHeader(name)} already exists in ${tildify(file)}${line === null ? '' : ` (line ${line})`}; nothing was written — give another name with --name NAME, or remove that profile first`,
		);
	}

	const table = pairingProfileToml(name, pairing, new Date());
	const separator = before === '' ? '' : before.endsWith('\n') ? '\n' : '\n\n';
	const after = parseConfig(file, before + separator + table, 'cannot add the profile');
	const written = (after['profiles'] as Record<string, unknown> | undefined)?.[name];
	if (!isTable(written) || written['host-key'] !== pairing.hostKey)
		throw new ConfigError(
			`pair: ${file}: the profile would not read back as written; nothing was written`,
		);

	mkdirSync(path.dirname(file), {recursive: true, mode: 0o700});
	// Appending keeps the file's comments, mode and symlink; a new file is 0600.
	appendFileSync(file, separator + table, {mode: 0o600});
	const profileFlag = /^[\w.-]+$/.test(name) ? name : `'${name.replaceAll("'", "'\\''")}'`;
	process.stdout.write(
		[
			`wrote ${profileHeader(name)} to ${tildify(file)}:`,
			`  relay     ${pairingRelaySpec(pairing.relay)}  pinned ${pairing.relayKey}`,
			`  GPU host  user ${pairing.hostUser}, through the relay's port ${pairing.relayPort}  pinned ${pairing.hostKey}`,
			`  Jupyter   port ${pairing.jupyterPort} on the GPU host`,
			'The first connect checks both keys against these pins and records them (hashed) in',
			'known_hosts, without asking. Connect with:',
			`  gpujup --profile ${profileFlag}`,
			'',
		].join('\n'),
	);
	return 0;
}
