/**
 * argv + environment + config file + ~/.ssh/config -> Config.
 *
 * Precedence, highest first: flag > `GPUJUP_*` variable > config file ([profiles.NAME] over its
 * top level) > `~/.ssh/config`, then `/etc/ssh/ssh_config` (the relay alias; host-key settings for
 * both hops) > defaults.
 *
 * Config file: `--config FILE`, else `GPUJUP_CONFIG`, else `$XDG_CONFIG_HOME/gpujup/config.toml`
 * (`~/.config/gpujup/config.toml`). Its keys are the flag names without `--` (snake_case works
 * too); relative paths in it are relative to the file:
 *
 *   relay = "me@relay.example.org:22"   # [user@]host[:port] or an ~/.ssh/config alias
 *   relay-port = 19506                  # port on the relay's loopback to the GPU host's sshd
 *   host-user = "me"                    # user on the GPU host (default: the relay user)
 *   jupyter-port = 19508                # Jupyter on the GPU host's loopback
 *   local-port = 19507                  # laptop port, 0 picks a free one
 *   identity = ["~/.ssh/id_ed25519"]    # private keys (a string or a list)
 *   known-hosts = "~/.ssh/known_hosts"
 *   accept-new = false                  # record unknown host keys
 *   keepalive = 5                       # seconds, decimals allowed, 0.1-3600
 *   keepalive-count = 3                 # 1-100
 *   host-key-alias = "p507"             # default [localhost]:<relay-port>
 *   forward = ["6006:6006"]             # LOCAL:REMOTE (or one port for both), a string or a list
 *   jupyter-log = "/home/me/jupyter.log"   # a path on the GPU host
 *   nvidia-smi = "nvidia-smi"
 *   ssh-port = 22                       # host: local sshd behind the reverse tunnel
 *   jupyter-cmd = "jupyter lab"         # host
 *   env = "conda:tf"                    # host: conda:NAME, venv:PATH or none
 *   notebook-dir = "~/notebooks"        # host
 *   no-tui = false
 *   notify-after = 60                   # seconds a cell runs before its end notifies
 *   notify-url = "https://ntfy.sh/…"    # host: POST notifications there (keep it out of argv)
 *   tunnel-back-after = 60              # host: seconds down before the tunnel's return notifies
 *   relay-key = "SHA256:…"              # pins (`gpujup pair` writes them): the only key trusted
 *   host-key = "SHA256:…"               # for the relay / the GPU host; recorded hashed, never asked
 *   profile = "p507"                    # the profile used when neither --profile nor GPUJUP_PROFILE
 *   [profiles.p507]                     # any of the keys above, over the top level
 *   relay = "relay2"
 *   [fleet.p508]                        # a GPU host of a fleet (gpujup with no alias: all of them);
 *   jupyter-port = 19509                # its keys (fleetKeys) over the rest of the file
 *
 * Variables: `GPUJUP_` + the key upper-cased with `_` (GPUJUP_RELAY_PORT, GPUJUP_ACCEPT_NEW=1,
 * GPUJUP_NO_TUI=1); lists are comma-separated (GPUJUP_FORWARD="6006:6006,8888:8888",
 * GPUJUP_IDENTITY); GPUJUP_CONFIG and GPUJUP_PROFILE pick the file and profile; GPUJUP_JSON=1.
 * An empty variable counts as unset.
 */
import {readFileSync} from 'node:fs';
import {homedir, userInfo} from 'node:os';
import {dirname, isAbsolute, join, resolve} from 'node:path';
import {parseArgs} from 'node:util';
import {parse as parseToml, TomlError} from 'smol-toml';
import {isSha256Fingerprint} from '../core/pairing.js';
import type {HostKeyPin} from '../core/pins.js';
import {
	cliFlags,
	envVarFor,
	helpText,
	isSettingName,
	kebabCase,
	type SettingName,
	settings,
} from './flags.js';
import {
	defaultGlobalKnownHostsFiles,
	defaultSystemConfig,
	lookupSshHost,
	SshConfigError,
	sshHostName,
	type SshConfigOptions,
	type SshHostConfig,
} from './ssh-config.js';
import {
	parseJumpEntry,
	resolveSshChain,
	splitUserHostPort,
	type SshChainLink,
} from './ssh-chain.js';
import {hostPatternFor} from '../core/known-hosts.js';
import {
	type ChainHop,
	type Command,
	commands,
	type Config,
	type EnvSpec,
	type ForwardSpec,
	type HostKeyPolicy,
	type OnQuit,
	type SlurmSettings,
} from './types.js';
import {splitWords} from '../core/shell.js';
import {sbatchArgsProblem} from '../core/slurm.js';

/** Bad usage or configuration: the message names the flag, variable or file:line and key. */
export class ConfigError extends Error {
	readonly exitCode = 2;

	constructor(message: string) {
		super(message);
		this.name = 'ConfigError';
	}
}

export type CliResult =
	{kind: 'help'; text: string} | {kind: 'version'; text: string} | {kind: 'run'; config: Config};

export type ParseCliOptions = {
	/** Whether stdout is a terminal; false turns the dashboard off. Default: process.stdout.isTTY. */
	stdoutIsTty?: boolean;
	/** Home directory; default `$HOME`, else the OS's. */
	home?: string;
	/** Directory relative flag paths resolve against; default process.cwd(). */
	cwd?: string;
	/** The system ssh_config read after ~/.ssh/config; default /etc/ssh/ssh_config, null: none. */
	sshSystemConfig?: string | null;
};

export const defaults = {
	relayPort: 19506,
	jupyterPort: 19508,
	localPort: 19507,
	keepaliveS: 5,
	keepaliveCount: 3,
	notifyAfterS: 60,
	tunnelBackAfterS: 60,
	sshPort: 22,
	nvidiaSmi: 'nvidia-smi',
	relaySshPort: 22,
} as const;

/** A raw value and where it came from, for messages (`--relay-port`, `GPUJUP_X`, `file:7: key "k"`). */
type Given = {value: unknown; origin: string; baseDir: string};

type FileLayer = {
	path: string;
	text: string;
	top: Record<string, unknown>;
	profile: Record<string, unknown> | null;
	profileName: string | null;
	/** `[fleet.<alias>]` tables, by alias, in the file's order. */
	fleet: Record<string, Record<string, unknown>>;
};

/**
 * Parses the command line and resolves every setting. Returns help or version text to print, or
 * the Config to run; throws ConfigError (exit 2) for anything the user must fix.
 */
export function parseCli(
	argv: readonly string[],
	env: NodeJS.ProcessEnv,
	options: ParseCliOptions = {},
): CliResult {
	checkUnknownFlags(argv);
	const cli = parseCommandLine(argv);
	const flags = cli.flags;
	if (flags.help === true) return {kind: 'help', text: helpText()};
	if (flags.version === true) return {kind: 'version', text: cli.version};

	const picked = pickCommand(cli.input);
	const {command} = picked;
	if (command === 'help') return {kind: 'help', text: helpText()};

	const pairing = pairArguments(command, cli.input, flags);
	const home = options.home ?? nonEmpty(env.HOME) ?? homedir();
	const cwd = options.cwd ?? process.cwd();
	const localUser = nonEmpty(env.USER) ?? nonEmpty(env.LOGNAME) ?? osUser();

	// `pair` writes the file itself (it may not exist yet); --profile there names the new profile.
	const file = command === 'pair' ? null : loadConfigFile(flags, env, home, cwd);
	const layers = {flags, env, file, cwd};

	const sshOptions: SshConfigOptions = {
		home,
		localUser,
		systemPath:
			options.sshSystemConfig === undefined ? defaultSystemConfig : options.sshSystemConfig,
	};
	const fleet = fleetOf(picked, file, (name) => lookup(name, layers), sshOptions);
	/**
	 * One host's Config. In a fleet, its `[fleet.<alias>]` table comes between the environment and
	 * the rest of the file: flags and variables are for this run, the table for that host.
	 */
	const resolveHost = (member: FleetMember | null): Config => {
		const get = (name: SettingName): Given | undefined =>
			member?.table
				? (lookup(name, {...layers, file: null}) ??
					fleetGiven(file!, member, name) ??
					lookup(name, layers))
				: lookup(name, layers);
		const value = <T>(name: SettingName, fallback: T, convert: (given: Given) => T): T => {
			const given = get(name);
			return given ? convert(given) : fallback;
		};

		const hostPicked = member ? {...picked, alias: member.viaRelay ? null : member.name} : picked;
		const hostGiven = member ? undefined : get('host');
		const hostAlias = chainAlias(hostPicked, hostGiven, flags, sshOptions);
		const relayGiven = hostAlias === null ? get('relay') : undefined;
		let relay: ResolvedRelay | null = null;
		if (relayGiven) relay = resolveRelay(relayGiven, sshOptions);
		else if (hostAlias !== null) relay = chainRelay(hostAlias, sshOptions);
		// `host --stop-jupyter` acts on this machine only: no relay needed.
		else if (
			command === 'connect' ||
			(command === 'host' && !flags.stopJupyter) ||
			command === 'doctor'
		) {
			const where = file ? `, or relay = "…" in ${file.path}` : '';
			throw new ConfigError(
				`--relay: required for "${command}"; give --relay [user@]host[:port] (or GPUJUP_RELAY${where}), or an ~/.ssh/config alias: gpujup ALIAS`,
			);
		}

		const identities = value('identity', [] as string[], (given) =>
			listOf(given).map((item) => localPath(item, home)),
		);
		for (const file of relay?.identityFiles ?? []) {
			if (!identities.includes(file)) identities.push(file);
		}

		const stateHome = absoluteOrNull(env.XDG_STATE_HOME) ?? join(home, '.local', 'state');
		const noTuiGiven = get('no-tui');
		const hostKeys = {
			knownHosts: value('known-hosts', null, (given) => localPath(given, home)),
			acceptNew: value('accept-new', null, boolean),
			home,
		};
		const chain =
			relay?.links && hostAlias !== null
				? chainHops(relay.links, {
						identities,
						hostKeys,
						localUser,
						hostUser: value('host-user', null, text),
						hostKeyAlias: value('host-key-alias', null, text),
					})
				: [];
		const last = chain.at(-1);
		// From ~/.ssh/config the GPU host is the chain's last hop: its port is what `relay-port` names.
		const relayPort =
			last?.port ?? value('relay-port', defaults.relayPort, (given) => port(given, 1));
		const hostUser = last?.user ?? value('host-user', relay?.target.user ?? localUser, text);
		// The second hop is `localhost:<relay-port>` (what `ssh -J relay -p PORT localhost` resolves).
		const gpuSsh = sshLookup('localhost', {...sshOptions, port: relayPort, user: hostUser}, null);
		const gpuAlias = value('host-key-alias', null, text)?.toLowerCase() ?? null;
		const notifyUrlGiven = get('notify-url');
		const warnings: string[] = [];
		// The URL may carry a secret (an ntfy topic is one): argv is readable by every local user.
		if (notifyUrlGiven?.origin === '--notify-url')
			warnings.push(
				'--notify-url shows in `ps` to every user of this machine; put notify-url = "…" in config.toml or set GPUJUP_NOTIFY_URL instead',
			);
		const relayHostKeys: HostKeyPolicy = {
			...(chain[0]?.hostKeys ?? hostKeyPolicy(relay?.ssh ?? gpuSsh, null, hostKeys)),
			...value<{pin?: HostKeyPin}>('relay-key', {}, (given) => ({pin: hostKeyPin(given)})),
		};
		const gpuHostKeys: HostKeyPolicy = {
			...(last?.hostKeys ?? hostKeyPolicy(gpuSsh, gpuAlias, hostKeys)),
			...value<{pin?: HostKeyPin}>('host-key', {}, (given) => ({pin: hostKeyPin(given)})),
		};
		const config: Config = {
			command,
			profile: file?.profileName ?? null,
			configFile: file?.path ?? null,
			relay: relay ? relay.target : null,
			relayPort,
			// The pins are the relay's and the GPU host's: the chain's first and last hops.
			chain: chain.map((hop, index) =>
				index === chain.length - 1
					? {...hop, hostKeys: gpuHostKeys}
					: index === 0
						? {...hop, hostKeys: relayHostKeys}
						: hop,
			),
			hostAlias,
			hostUser,
			jupyterPort: value('jupyter-port', defaults.jupyterPort, (given) => port(given, 1)),
			localPort: value('local-port', defaults.localPort, (given) => port(given, 0)),
			identities,
			relayHostKeys,
			gpuHostKeys,
			keepaliveS: value('keepalive', defaults.keepaliveS, keepaliveSeconds),
			keepaliveCount: value('keepalive-count', defaults.keepaliveCount, keepaliveCount),
			forwards: value('forward', [] as ForwardSpec[], (given) => listOf(given).map(forward)),
			jupyterLog: value('jupyter-log', null, text),
			nvidiaSmi: value('nvidia-smi', defaults.nvidiaSmi, text),
			sshPort: value('ssh-port', defaults.sshPort, (given) => port(given, 1)),
			jupyterCmd: value('jupyter-cmd', null, text),
			env: value('env', {kind: 'none'} as EnvSpec, (given) => envSpec(given, home)),
			notebookDir: value('notebook-dir', cwd, (given) => localPath(given, home)),
			noTui:
				(noTuiGiven ? boolean(noTuiGiven) : false) ||
				options.stdoutIsTty === false ||
				(options.stdoutIsTty === undefined && process.stdout.isTTY !== true),
			notifyAfterS: value('notify-after', defaults.notifyAfterS, positiveNumber),
			notifyUrl: notifyUrlGiven ? httpUrl(notifyUrlGiven) : null,
			tunnelBackAfterS: value('tunnel-back-after', defaults.tunnelBackAfterS, positiveNumber),
			slurm: slurmSettings(command, get),
			warnings,
			json: flagOrEnvBoolean(flags.json, env, 'json'),
			stopJupyter: flags.stopJupyter === true,
			printSystemdUnit: flags.printSystemdUnit === true,
			...pairing,
			configPath: file?.path ?? configFileLocation(flags, env, home, cwd).path,
			home,
			stateDir: join(stateHome, 'gpujup'),
		};
		// What the host's own table set (not a flag or variable over it) is taken as written.
		const fromTable = (name: SettingName) =>
			member?.table
				? lookup(name, {...layers, file: null}) === undefined &&
					fleetGiven(file!, member, name) !== undefined
				: false;
		return member ? fleetHostConfig(config, member, get, fromTable) : config;
	};

	if (fleet.length < 2) {
		const config = resolveHost(fleet[0] ?? null);
		// `gpujup url ALIAS`: the one host of a fleet whose URL to print.
		if (command === 'url' && picked.alias !== null) config.fleetName = picked.alias;
		return {kind: 'run', config};
	}

	// `gpujup url` with a fleet: only the names, to ask each host's socket.
	if (command === 'url')
		return {kind: 'run', config: {...resolveHost(null), fleetHosts: fleet.map((m) => m.name)}};
	const hosts = fleet.map((member) => resolveHost(member));
	const config: Config = {
		...hosts[0]!,
		fleetName: null,
		fleet: hosts,
		fleetHosts: fleet.map((m) => m.name),
	};
	return {kind: 'run', config};
}

// ---------------------------------------------------------------------------------------------
// Command line

type Flags = Record<string, unknown>;

/** `node:util`'s parseArgs options for {@link cliFlags}, by their kebab-case names. */
const parseOptions = Object.fromEntries(
	Object.entries(cliFlags).map(([key, flag]) => [
		kebabCase(key),
		{
			type: flag.type,
			...('shortFlag' in flag ? {short: flag.shortFlag} : {}),
			...('isMultiple' in flag ? {multiple: true} : {}),
		},
	]),
);

const isBooleanFlag = (name: string) => parseOptions[name]?.type === 'boolean';

/** The version in package.json, read when asked (dist/source/config → the package root). */
function packageVersion(): string {
	for (const up of ['../../..', '../..']) {
		try {
			const file = new URL(`${up}/package.json`, import.meta.url);
			const json = JSON.parse(readFileSync(file, 'utf8')) as {name?: unknown; version?: unknown};
			if (json.name === 'gpujup') return String(json.version ?? 'unknown');
		} catch {
			// Not there from this layout: try the next.
		}
	}

	return 'unknown';
}

/**
 * The flags (camelCase keys, as cliFlags names them) and the words, by `node:util`'s parseArgs
 * (meow cost a fifth of the start-up). Unknown flags were refused by checkUnknownFlags already.
 * A boolean's `--no-` form sets it false; `--flag=true|false` is read as a boolean; a string flag
 * given with no value is ''; a flag that is no list given twice (but a boolean repeated) is refused.
 */
function parseCommandLine(argv: readonly string[]): {
	flags: Flags;
	input: string[];
	version: string;
} {
	const end = argv.indexOf('--');
	const options = end === -1 ? argv : argv.slice(0, end);
	const negated = new Map<string, number>();
	const args = options.filter((token, index) => {
		const match = /^--no-([^=]+)$/.exec(token);
		if (!match || !isBooleanFlag(match[1]!)) return true;
		negated.set(match[1]!, index);
		return false;
	});
	const {values, positionals, tokens} = parseArgs({
		args: end === -1 ? args : [...args, ...argv.slice(end)],
		options: parseOptions,
		strict: false,
		allowPositionals: true,
		tokens: true,
	});
	const seen = new Set<string>();
	for (const token of tokens) {
		if (token.kind !== 'option') continue;
		const option = parseOptions[token.name];
		if (!option || option.multiple || option.type === 'boolean') continue;
		if (seen.has(token.name))
			throw new ConfigError(`--${token.name}: given more than once; give it once`);
		seen.add(token.name);
	}

	const flags: Flags = {};
	for (const [name, value] of Object.entries(values)) {
		const key = camelCase(name);
		if (isBooleanFlag(name) && typeof value === 'string') {
			if (value !== 'true' && value !== 'false')
				throw new ConfigError(`--${name}: expected no value (or true/false), got "${value}"`);
			flags[key] = value === 'true';
		} else {
			flags[key] = value === true && !isBooleanFlag(name) ? '' : value;
		}
	}

	// `--no-tui` after `--tui` wins, and the other way round, as the last word always does.
	for (const [name, index] of negated) {
		const last = options.findLastIndex(
			(token) => token === `--${name}` || token.startsWith(`--${name}=`),
		);
		if (last < index) flags[camelCase(name)] = false;
	}

	return {
		flags,
		input: positionals,
		get version() {
			return packageVersion();
		},
	};
}

const longFlags = new Set<string>();
const shortFlags = new Set<string>();
for (const [key, flag] of Object.entries(cliFlags)) {
	const name = kebabCase(key);
	longFlags.add(name);
	if (flag.type === 'boolean') longFlags.add(`no-${name}`);
	if ('shortFlag' in flag) shortFlags.add(flag.shortFlag);
}

function checkUnknownFlags(argv: readonly string[]): void {
	for (const token of argv) {
		if (token === '--') return;
		// `-5` is a (bad) value for the flag before it, not a flag.
		if (!token.startsWith('-') || token === '-' || /^-\d/.test(token)) continue;
		if (token.startsWith('--')) {
			const name = token.slice(2).split('=')[0] ?? '';
			if (longFlags.has(name)) continue;
			const guess = closest(
				name,
				[...longFlags].filter((flag) => !flag.startsWith('no-') || flag === 'no-tui'),
			);
			throw new ConfigError(
				`unknown flag --${name}${guess ? `; did you mean --${guess}?` : ''} (gpujup --help lists the flags)`,
			);
		}

		const letter = token.slice(1, 2);
		if (!shortFlags.has(letter)) {
			throw new ConfigError(`unknown flag -${letter} (gpujup --help lists the flags)`);
		}
	}
}

/** Commands that take a chain: `gpujup connect ALIAS` (and `status`, `doctor`). */
const chainCommands: readonly Command[] = ['connect', 'status', 'doctor'];

/** Commands that take several hosts (`gpujup A B`, `[fleet.<alias>]` tables): a fleet. */
const fleetCommands: readonly Command[] = ['connect', 'status'];

/**
 * The command and, for `gpujup ALIAS` / `gpujup connect ALIAS`, the alias. A first word that is
 * no command is an alias, unless it is a near miss of one (`conect`): then it is only an alias
 * when `~/.ssh/config` names it (`typo` says so; the caller looks).
 */
function pickCommand(input: readonly string[]): {
	command: Command | 'help';
	alias: string | null;
	/** `gpujup A B …` (connect, status): the aliases after the first, for a fleet. */
	more: string[];
	typo: string | null;
} {
	const [first, ...rest] = input;
	if (first === undefined) return {command: 'connect', alias: null, more: [], typo: null};
	if (first === 'help') return {command: 'help', alias: null, more: [], typo: null};
	const known = (commands as readonly string[]).includes(first);
	const command = known ? (first as Command) : 'connect';
	const takesAlias = !known || chainCommands.includes(command) || command === 'url';
	const alias = known ? (takesAlias ? (rest[0] ?? null) : null) : first;
	// After `--` a word that looks like a flag is still no alias; `pair` takes the pairing string.
	let extra =
		(known && takesAlias && !alias?.startsWith('-')) || first === 'pair' ? rest.slice(1) : rest;
	if (alias?.startsWith('-') && known)
		throw new ConfigError(
			`unexpected argument "${alias}" after "${first}" (gpujup --help lists the usage)`,
		);
	if (!known && first.startsWith('-')) throw unknownCommand(first);
	// Several hosts: connect and status take a fleet of aliases (`gpujup p507 p508`).
	const more = fleetCommands.includes(command) && alias !== null ? extra : [];
	if (more.length > 0) extra = [];
	for (const word of more)
		if (word.startsWith('-'))
			throw new ConfigError(
				`unexpected argument "${word}" after "${alias}" (gpujup --help lists the usage)`,
			);
	if (extra.length > 0) {
		throw new ConfigError(
			`unexpected argument "${extra[0]}" after "${alias ?? first}" (gpujup --help lists the usage)`,
		);
	}

	return {command, alias, more, typo: known ? null : first};
}

function unknownCommand(word: string): ConfigError {
	const guess = closest(word, commands);
	return new ConfigError(
		`unknown command "${word}"${guess ? `; did you mean "${guess}"?` : ''} (commands: ${commands.join(', ')})`,
	);
}

// ---------------------------------------------------------------------------------------------
// Layers

function lookup(
	name: SettingName,
	layers: {flags: Flags; env: NodeJS.ProcessEnv; file: FileLayer | null; cwd: string},
): Given | undefined {
	const {flags, env, file, cwd} = layers;
	if (name === 'no-tui') {
		if (typeof flags.tui === 'boolean')
			return {value: !flags.tui, origin: '--no-tui', baseDir: cwd};
	} else {
		const flagValue = flags[camelCase(name)];
		const given = Array.isArray(flagValue) ? flagValue.length > 0 : flagValue !== undefined;
		if (given) return {value: flagValue, origin: `--${name}`, baseDir: cwd};
	}

	const variable = envVarFor(name);
	const envValue = env[variable];
	if (envValue !== undefined && envValue !== '') {
		const value =
			settings[name] === 'paths' || settings[name] === 'forwards' ? splitList(envValue) : envValue;
		return {value, origin: variable, baseDir: cwd};
	}

	if (!file) return undefined;
	const baseDir = dirname(file.path);
	if (file.profile && file.profileName) {
		const key = findKey(file.profile, name);
		if (key !== undefined) {
			return {
				value: file.profile[key],
				origin: fileOrigin(file, ['profiles', file.profileName], key),
				baseDir,
			};
		}
	}

	const key = findKey(file.top, name);
	if (key !== undefined) return {value: file.top[key], origin: fileOrigin(file, [], key), baseDir};
	return undefined;
}

function findKey(table: Record<string, unknown>, name: string): string | undefined {
	return Object.keys(table).find((key) => normalizeKey(key) === name);
}

function flagOrEnvBoolean(flag: unknown, env: NodeJS.ProcessEnv, name: string): boolean {
	if (typeof flag === 'boolean') return flag;
	const variable = envVarFor(name);
	const value = env[variable];
	if (value === undefined || value === '') return false;
	return boolean({value, origin: variable, baseDir: ''});
}

// ---------------------------------------------------------------------------------------------
// Config file

/** `--config FILE`, else `GPUJUP_CONFIG`, else `$XDG_CONFIG_HOME/gpujup/config.toml`. */
function configFileLocation(
	flags: Flags,
	env: NodeJS.ProcessEnv,
	home: string,
	cwd: string,
): {path: string; explicit: {path: string; origin: string} | null} {
	const explicit =
		typeof flags.config === 'string'
			? {path: flags.config, origin: '--config'}
			: nonEmpty(env.GPUJUP_CONFIG)
				? {path: env.GPUJUP_CONFIG ?? '', origin: 'GPUJUP_CONFIG'}
				: null;
	if (explicit && explicit.path === '') {
		throw new ConfigError(`${explicit.origin}: expected a file path, got ""`);
	}

	const configHome = absoluteOrNull(env.XDG_CONFIG_HOME) ?? join(home, '.config');
	const path = explicit
		? resolve(cwd, expandHome(explicit.path, home))
		: join(configHome, 'gpujup', 'config.toml');
	return {path, explicit};
}

/**
 * `pair STRING [--name NAME]` (`--profile NAME` too, as the profile is then used), and `host
 * --pair`; each flag is refused where it means nothing.
 */
function pairArguments(
	command: Command,
	input: readonly string[],
	flags: Flags,
): Pick<Config, 'pair' | 'pairString' | 'pairName'> {
	if (flags.pair === true && command !== 'host')
		throw new ConfigError(
			'--pair: only `gpujup host --pair` prints a pairing string; on the laptop run `gpujup pair STRING`',
		);
	const name = typeof flags.name === 'string' ? flags.name : null;
	if (command !== 'pair') {
		if (name !== null)
			throw new ConfigError(
				'--name: only for `gpujup pair STRING --name NAME` (use --profile NAME)',
			);
		return {pair: flags.pair === true, pairString: null, pairName: null};
	}

	const profile = typeof flags.profile === 'string' ? flags.profile : null;
	if (name !== null && profile !== null && name !== profile)
		throw new ConfigError(`--name ${name} and --profile ${profile}: give one profile name`);
	const pairName = name ?? profile;
	if (pairName?.trim() === '' || /\p{Cc}/u.test(pairName ?? ''))
		throw new ConfigError(`--name: expected a profile name, got ${show(pairName)}`);
	const pairString = input[1];
	if (pairString === undefined || pairString.trim() === '')
		throw new ConfigError(
			"pair: give the string `gpujup host --pair` printed on the GPU host, in quotes: gpujup pair 'gpujup://…'",
		);
	return {pair: false, pairString, pairName};
}

function loadConfigFile(
	flags: Flags,
	env: NodeJS.ProcessEnv,
	home: string,
	cwd: string,
): FileLayer | null {
	const {path, explicit} = configFileLocation(flags, env, home, cwd);

	const profileFlag =
		typeof flags.profile === 'string'
			? {name: flags.profile, origin: '--profile'}
			: nonEmpty(env.GPUJUP_PROFILE)
				? {name: env.GPUJUP_PROFILE ?? '', origin: 'GPUJUP_PROFILE'}
				: null;

	let text: string;
	try {
		text = readFileSync(path, 'utf8');
	} catch (error) {
		const code = (error as NodeJS.ErrnoException).code;
		if (!explicit && code === 'ENOENT') {
			if (profileFlag) {
				throw new ConfigError(
					`${profileFlag.origin}: no config file to read [profiles.${profileFlag.name}] from; create ${path} or pass --config FILE`,
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

			selected = {name: value, origin};
		}
	}

	if (selected) {
		const table = (profiles as Record<string, unknown>)[selected.name];
		if (!isTable(table)) {
			const names = Object.keys(profiles);
			throw new ConfigError(
				`${selected.origin}: no [profiles.${selected.name}] in ${path} (${names.length > 0 ? `it has: ${names.join(', ')}` : 'it has no profiles'})`,
			);
		}

		layer.profile = table;
		layer.profileName = selected.name;
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

function fileOrigin(file: FileLayer, table: string[], key: string): string {
	return `${fileLine(file, table, key)}: key "${key}"`;
}

/** `path:line` for a key in a table; smol-toml keeps no positions, so scan the text ourselves. */
function fileLine(file: FileLayer, table: string[], key: string): string {
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

// ---------------------------------------------------------------------------------------------
// Values

function fail(given: Given, expected: string): never {
	throw new ConfigError(`${given.origin}: expected ${expected}, got ${show(given.value)}`);
}

function show(value: unknown): string {
	if (typeof value === 'string') return JSON.stringify(value);
	if (value === undefined) return 'nothing';
	if (typeof value === 'bigint') return value.toString();
	if (value instanceof Date) return value.toISOString();
	return JSON.stringify(value) ?? String(value);
}

function text(given: Given): string {
	if (typeof given.value !== 'string' || given.value.trim() === '')
		fail(given, 'a non-empty string');
	return given.value;
}

/** A TOML number as is; a string only when it is plainly written digits (no hex, no `1e3`). */
function numberFrom(value: unknown, pattern: RegExp): number {
	if (typeof value === 'number') return value;
	if (typeof value === 'bigint') return Number(value);
	if (typeof value === 'string' && pattern.test(value.trim())) return Number(value.trim());
	return Number.NaN;
}

const digits = /^\d+$/;
const decimal = /^(?:\d+(?:\.\d*)?|\.\d+)$/;

function port(given: Given, min: 0 | 1): number {
	const number = numberFrom(given.value, digits);
	if (!Number.isInteger(number) || number < min || number > 65_535) {
		fail(given, min === 0 ? 'a port 0-65535 (0 picks a free one)' : 'a port 1-65535');
	}

	return number;
}

/** An http(s) URL; the message never repeats it (it may carry a secret). */
function httpUrl(given: Given): string {
	let url: URL | null = null;
	try {
		url = typeof given.value === 'string' ? new URL(given.value) : null;
	} catch {
		url = null;
	}

	if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:'))
		throw new ConfigError(
			`${given.origin}: expected an http:// or https:// URL (the value is not shown: it may hold a secret)`,
		);
	return url.href;
}

function positiveNumber(given: Given): number {
	const number = numberFrom(given.value, decimal);
	if (!Number.isFinite(number) || number <= 0) fail(given, 'a positive number');
	return number;
}

/**
 * Keepalive bounds. Below 0.1 s a healthy link flaps between ready and lost (timers and RTT are
 * of that order); above an hour × 100 nothing would ever be declared lost, and Node's timers
 * overflow past 2^31 ms (about 24.8 days) and fire at once.
 */
export const keepaliveLimits = {
	seconds: {min: 0.1, max: 3600},
	count: {min: 1, max: 100},
} as const;

function keepaliveSeconds(given: Given): number {
	const {min, max} = keepaliveLimits.seconds;
	const number = numberFrom(given.value, decimal);
	if (!Number.isFinite(number) || number < min || number > max)
		fail(given, `seconds from ${min} to ${max}`);
	return number;
}

function keepaliveCount(given: Given): number {
	const {min, max} = keepaliveLimits.count;
	const number = numberFrom(given.value, digits);
	if (!Number.isSafeInteger(number) || number < min || number > max)
		fail(given, `a whole number from ${min} to ${max}`);
	return number;
}

function boolean(given: Given): boolean {
	const {value} = given;
	if (typeof value === 'boolean') return value;
	// Only variables arrive as strings here; TOML has real booleans.
	if (typeof value === 'string' && given.origin.startsWith('GPUJUP_')) {
		const word = value.trim().toLowerCase();
		if (['1', 'true', 'yes', 'on'].includes(word)) return true;
		if (['0', 'false', 'no', 'off'].includes(word)) return false;
		fail(given, '1, 0, true, false, yes or no');
	}

	return fail(given, 'true or false');
}

function listOf(given: Given): Given[] {
	const items = Array.isArray(given.value) ? given.value : [given.value];
	return items.map((value) => ({...given, value}));
}

function forward(given: Given): ForwardSpec {
	const {value} = given;
	const expected = 'LOCAL:REMOTE ports like 6006:6006';
	if (typeof value === 'number') {
		return {local: port(given, 1), remote: port(given, 1)};
	}

	if (typeof value !== 'string') fail(given, expected);
	const match = /^\s*(\d+)\s*(?::\s*(\d+)\s*)?$/.exec(value);
	if (!match) fail(given, expected);
	const local = Number(match[1]);
	const remote = Number(match[2] ?? match[1]);
	if (local > 65_535 || remote < 1 || remote > 65_535)
		fail(given, `${expected} (local 0-65535, remote 1-65535)`);
	return {local, remote};
}

/**
 * `--slurm` and its settings (checked even without it, so a typo in a profile shows at once). A
 * string is split as a shell would (`--sbatch='--partition gpu --comment "a b"'`); the config
 * file's list is taken word for word.
 */
function slurmSettings(
	command: string,
	get: (name: SettingName) => Given | undefined,
): SlurmSettings | null {
	const sbatchGiven = get('sbatch');
	const sbatchArgs = sbatchGiven ? sbatchWords(sbatchGiven) : [];
	const onQuitGiven = get('on-quit');
	const onQuit = onQuitGiven ? onQuitValue(onQuitGiven) : 'ask';
	const nodeSshGiven = get('node-ssh-port');
	const nodeSshPort = nodeSshGiven ? port(nodeSshGiven, 1) : defaults.sshPort;
	const slurmGiven = get('slurm');
	if (!slurmGiven || !boolean(slurmGiven)) return null;
	if (command === 'host')
		throw new ConfigError(
			`${slurmGiven.origin}: is for connect (the laptop); gpujup host runs on a GPU host, and a Slurm job is started by connect --slurm`,
		);
	const envGiven = get('env');
	const notebookDirGiven = get('notebook-dir');
	return {
		sbatchArgs,
		onQuit,
		nodeSshPort,
		env: envGiven ? envSpec(envGiven, '', clusterPath) : null,
		notebookDir: notebookDirGiven ? clusterPath(notebookDirGiven) : null,
	};
}

/**
 * A path on the cluster (`--slurm`'s `--env venv:…` and `--notebook-dir`): absolute, or `~/…` for
 * the home there (expanded on the login node); the laptop's cwd means nothing there.
 */
function clusterPath(given: Given): string {
	const value = text(given).trim();
	if (value.startsWith('/') || value === '~' || value.startsWith('~/')) return value;
	return fail(given, 'a path on the cluster (absolute, or ~/…)');
}

function sbatchWords(given: Given): string[] {
	let words: string[];
	if (Array.isArray(given.value)) {
		words = given.value.map((item) => {
			if (typeof item !== 'string') fail(given, 'a list of strings (sbatch options)');
			return item;
		});
	} else {
		try {
			words = splitWords(text(given));
		} catch (error: unknown) {
			throw new ConfigError(`${given.origin}: ${(error as Error).message}`);
		}
	}
	const problem = sbatchArgsProblem(words);
	if (problem) throw new ConfigError(`${given.origin}: ${problem}`);
	return words;
}

function onQuitValue(given: Given): OnQuit {
	const value = typeof given.value === 'string' ? given.value.trim() : given.value;
	if (value === 'keep' || value === 'cancel' || value === 'ask') return value;
	return fail(given, 'keep, cancel or ask');
}

function envSpec(
	given: Given,
	home: string,
	pathOf: (given: Given) => string = (path) => localPath(path, home),
): EnvSpec {
	const expected = 'conda:NAME, venv:PATH or none';
	if (typeof given.value !== 'string') fail(given, expected);
	const value = given.value.trim();
	if (value === 'none') return {kind: 'none'};
	const separator = value.indexOf(':');
	const kind = value.slice(0, separator);
	const rest = value.slice(separator + 1);
	if (separator > 0 && rest !== '') {
		if (kind === 'conda') return {kind: 'conda', name: rest};
		if (kind === 'venv') return {kind: 'venv', path: pathOf({...given, value: rest})};
	}

	return fail(given, expected);
}

function localPath(given: Given, home: string): string {
	const value = text(given);
	return resolve(given.baseDir, expandHome(value, home));
}

function hostKeyPin(given: Given): HostKeyPin {
	const value = typeof given.value === 'string' ? given.value.trim() : given.value;
	if (typeof value !== 'string' || !isSha256Fingerprint(value))
		fail(given, 'a SHA256 fingerprint as ssh-keygen -lf prints it (SHA256: and 43 characters)');
	return {fingerprint: value, origin: given.origin};
}

// ---------------------------------------------------------------------------------------------
// Host keys

/**
 * One hop's host-key policy: gpujup's own settings over what the ssh config says for that host
 * over ssh's defaults. `--known-hosts` replaces UserKnownHostsFile (the global files are still
 * read, as with `ssh -o UserKnownHostsFile=`); `--accept-new` over StrictHostKeyChecking, where
 * ssh's `no` / `off` counts as accept-new: gpujup never takes a changed key.
 */
function hostKeyPolicy(
	ssh: SshHostConfig,
	alias: string | null,
	given: {knownHosts: string | null; acceptNew: boolean | null; home: string},
): HostKeyPolicy {
	const sshStrict = ssh.strictHostKeyChecking;
	let strict: HostKeyPolicy['strict'] = 'ask';
	if (given.acceptNew === true) strict = 'accept-new';
	else if (sshStrict === 'yes') strict = 'yes';
	else if (given.acceptNew === null && (sshStrict === 'accept-new' || sshStrict === 'no'))
		strict = 'accept-new';
	return {
		userFiles: given.knownHosts
			? [given.knownHosts]
			: (ssh.userKnownHostsFiles ?? [
					join(given.home, '.ssh', 'known_hosts'),
					join(given.home, '.ssh', 'known_hosts2'),
				]),
		globalFiles: ssh.globalKnownHostsFiles ?? defaultGlobalKnownHostsFiles,
		alias: alias ?? ssh.hostKeyAlias,
		strict,
		hash: ssh.hashKnownHosts === true,
	};
}

/** lookupSshHost, its errors as ConfigErrors naming what needed the lookup. */
function sshLookup(
	host: string,
	options: SshConfigOptions,
	needed: {origin: string; host: string} | null,
): SshHostConfig {
	try {
		return lookupSshHost(host, options);
	} catch (error) {
		if (error instanceof SshConfigError) {
			const why = needed
				? `needed to resolve ${needed.origin} "${needed.host}"`
				: `needed for the GPU host's key, looked up as "${host}"`;
			throw new ConfigError(`${error.file}: ${error.message} (${why})`);
		}

		throw error;
	}
}

// ---------------------------------------------------------------------------------------------
// Relay

type ResolvedRelay = {
	target: NonNullable<Config['relay']>;
	identityFiles: string[];
	ssh: SshHostConfig;
	/** From an alias: every hop `ssh -G` resolves, this relay first. */
	links?: SshChainLink[];
};

/** `[user@]host[:port]`, `[v6]:port`, bare IPv6, or an ~/.ssh/config alias. */
export function parseRelaySpec(
	spec: string,
): {user: string | null; host: string; port: string | null} | null {
	const split = splitUserHostPort(spec.trim(), {bareIpv6: true});
	// A user with a colon or a slash is a typo for a port or a path, not a login name.
	if (!split || /[\s:/]/.test(split.user ?? '')) return null;
	return split;
}

function resolveRelay(given: Given, sshOptions: SshConfigOptions): ResolvedRelay {
	if (typeof given.value !== 'string') fail(given, '[user@]host[:port]');
	const spec = parseRelaySpec(given.value);
	if (!spec) fail(given, '[user@]host[:port]');
	const {home, localUser} = sshOptions;
	const specPort = spec.port === null ? null : port({...given, value: spec.port}, 1);
	const ssh = sshLookup(
		spec.host,
		{
			...sshOptions,
			...(specPort === null ? {} : {port: specPort}),
			...(spec.user === null ? {} : {user: spec.user}),
		},
		{origin: given.origin, host: spec.host},
	);

	let portNumber: number = defaults.relaySshPort;
	if (specPort !== null) {
		portNumber = specPort;
	} else if (ssh.port !== null) {
		const sshPort = Number(ssh.port);
		if (!/^\d+$/.test(ssh.port) || sshPort < 1 || sshPort > 65_535) {
			throw new ConfigError(
				`${join(home, '.ssh', 'config')}: Port for "${spec.host}": expected a port 1-65535, got ${JSON.stringify(ssh.port)}`,
			);
		}

		portNumber = sshPort;
	}

	return {
		target: {
			host: ssh.hostName ?? sshHostName(spec.host),
			port: portNumber,
			user: spec.user ?? ssh.user ?? localUser,
			alias: ssh.hostName === null ? null : spec.host,
		},
		identityFiles: ssh.identityFiles,
		ssh,
	};
}

// ---------------------------------------------------------------------------------------------
// Fleet: several GPU hosts behind one relay

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

/** Local ports of the hosts of a fleet are this far apart: 19507, 19517, 19527 … */
export const fleetPortStep = 10;

/** One host of a fleet, as the command line and the config file name it. */
type FleetMember = {
	readonly name: string;
	/** Its `[fleet.<name>]` table, or null when it has none. */
	readonly table: Record<string, unknown> | null;
	readonly index: number;
	readonly count: number;
	/** Its table names a relay (`relay`, `relay-port`): a two-hop chain, not an ~/.ssh/config alias. */
	readonly viaRelay: boolean;
};

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

/**
 * The hosts of this run: `gpujup A B …` (connect, status), else, with no alias or `host` given,
 * every `[fleet.<alias>]` table. One host alone (an alias, or a single table) is no fleet unless
 * it has a table to apply; none: the single-host run of today.
 */
function fleetOf(
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
function fleetGiven(file: FileLayer, member: FleetMember, name: SettingName): Given | undefined {
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
function fleetHostConfig(
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

// ---------------------------------------------------------------------------------------------
// Chains from ~/.ssh/config

/**
 * The alias to read a chain for: `gpujup ALIAS`, `gpujup connect ALIAS`, or `host` (`--host`,
 * GPUJUP_HOST, the config file). With an alias, a `relay` from the environment or the config
 * file gives way; `--relay` on the same command line is a contradiction.
 */
function chainAlias(
	picked: {command: Command | 'help'; alias: string | null; typo: string | null},
	hostGiven: Given | undefined,
	flags: Flags,
	sshOptions: SshConfigOptions,
): string | null {
	const {command, typo} = picked;
	// A near miss of a command (`conect`) is one, unless ~/.ssh/config names it.
	if (typo !== null && closest(typo, commands) !== null) {
		const ssh = sshLookup(typo, sshOptions, {origin: 'the alias', host: typo});
		if (ssh.hostName === null && ssh.proxyJump === null) throw unknownCommand(typo);
	}

	const fromHost = hostGiven ? text(hostGiven) : null;
	if (picked.alias !== null && hostGiven?.origin === '--host' && fromHost !== picked.alias)
		throw new ConfigError(
			`--host ${fromHost} and "${picked.alias}" name two hosts; give one (gpujup ${picked.alias})`,
		);
	const alias = picked.alias ?? fromHost;
	if (alias === null) return null;
	// `host = "p507"` in the file (or GPUJUP_HOST) is for the laptop's chain: `url` or `host` ignore it.
	if (!chainCommands.includes(command as Command) && hostGiven?.origin !== '--host') return null;
	if (!chainCommands.includes(command as Command))
		throw new ConfigError(
			`${hostGiven?.origin ?? '--host'}: only connect, status and doctor take a host, not "${command}"`,
		);
	if (typeof flags.relay === 'string')
		throw new ConfigError(
			`--relay and "${alias}" both name the way to the GPU host; give one: gpujup ${alias} reads the chain from ~/.ssh/config (ProxyJump), --relay names the relay`,
		);
	if (parseJumpEntry(alias)?.host !== alias)
		throw new ConfigError(
			`"${alias}": expected an ~/.ssh/config alias or a host name (user and port go in ~/.ssh/config, or use --relay)`,
		);
	return alias;
}

/** The chain's first hop as the relay, with every hop's link kept for chainHops. */
function chainRelay(alias: string, sshOptions: SshConfigOptions): ResolvedRelay {
	let links: SshChainLink[];
	try {
		links = resolveSshChain(alias, sshOptions);
	} catch (error) {
		if (error instanceof SshConfigError)
			throw new ConfigError(`${error.file}: ${error.message} (needed to resolve "${alias}")`);
		throw error;
	}

	const first = links[0]!;
	const target = linkTarget(first, sshOptions);
	return {
		target: {...target, alias: first.config.hostName === null ? null : first.name},
		identityFiles: first.config.identityFiles,
		ssh: first.config,
		links,
	};
}

function linkTarget(
	link: SshChainLink,
	sshOptions: SshConfigOptions,
): {host: string; port: number; user: string} {
	let portNumber: number = link.port ?? defaults.relaySshPort;
	if (link.port === null && link.config.port !== null) {
		portNumber = Number(link.config.port);
		if (!/^\d+$/.test(link.config.port) || portNumber < 1 || portNumber > 65_535)
			throw new ConfigError(
				`${sshOptions.path ?? join(sshOptions.home, '.ssh', 'config')}: Port for "${link.name}": expected a port 1-65535, got ${JSON.stringify(link.config.port)}`,
			);
	}

	return {
		host: link.hostName,
		port: portNumber,
		user: link.user ?? link.config.user ?? sshOptions.localUser,
	};
}

/**
 * Each link as a hop to dial: its address, user, keys (`--identity` first) and host-key policy.
 * `host-user` and `host-key-alias`, where given, are about the GPU host: the last hop.
 */
function chainHops(
	links: readonly SshChainLink[],
	given: {
		identities: readonly string[];
		hostKeys: {knownHosts: string | null; acceptNew: boolean | null; home: string};
		localUser: string;
		hostUser: string | null;
		hostKeyAlias: string | null;
	},
): ChainHop[] {
	return links.map((link, index) => {
		const isLast = index === links.length - 1;
		const target = linkTarget(link, {home: given.hostKeys.home, localUser: given.localUser});
		const policy = hostKeyPolicy(
			link.config,
			isLast ? (given.hostKeyAlias?.toLowerCase() ?? null) : null,
			given.hostKeys,
		);
		const identities = [...given.identities];
		for (const file of link.config.identityFiles)
			if (!identities.includes(file)) identities.push(file);
		return {
			name: link.name,
			...target,
			user: isLast ? (given.hostUser ?? target.user) : target.user,
			identities,
			hostKeys: policy,
			// As ssh looks a hop's key up: HostKeyAlias alone, else its HostName and port.
			keyNames: policy.alias ? [policy.alias] : [hostPatternFor(target.host, target.port)],
		};
	});
}

// ---------------------------------------------------------------------------------------------
// Small helpers

function splitList(value: string): string[] {
	return value
		.split(',')
		.map((item) => item.trim())
		.filter((item) => item !== '');
}

function normalizeKey(key: string): string {
	return key.replaceAll('_', '-');
}

function camelCase(name: string): string {
	return name.replaceAll(/-([a-z])/g, (_match, letter: string) => letter.toUpperCase());
}

function isTable(value: unknown): value is Record<string, unknown> {
	return (
		typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date)
	);
}

function nonEmpty(value: string | undefined): string | undefined {
	return value === undefined || value === '' ? undefined : value;
}

function absoluteOrNull(value: string | undefined): string | null {
	// The XDG spec says relative values are invalid and must be ignored.
	return value && isAbsolute(value) ? value : null;
}

function expandHome(path: string, home: string): string {
	return path === '~' || path.startsWith('~/') ? home + path.slice(1) : path;
}

function osUser(): string {
	try {
		return userInfo().username;
	} catch {
		return 'root';
	}
}

function escapeRegExp(text: string): string {
	return text.replaceAll(/[\\^$.*+?()[\]{}|]/g, '\\$&');
}

/** The candidate within edit distance 2 (3 for long words) of `word`, for "did you mean". */
function closest(word: string, candidates: readonly string[]): string | null {
	let best: string | null = null;
	let bestDistance = word.length > 6 ? 4 : 3;
	for (const candidate of candidates) {
		const distance = editDistance(word, candidate);
		if (distance < bestDistance) {
			best = candidate;
			bestDistance = distance;
		}
	}

	return best;
}

function editDistance(a: string, b: string): number {
	let previous = Array.from({length: b.length + 1}, (_, index) => index);
	for (let i = 1; i <= a.length; i++) {
		const current = [i];
		for (let j = 1; j <= b.length; j++) {
			const cost = a[i - 1] === b[j - 1] ? 0 : 1;
			current[j] = Math.min(
				(previous[j] ?? 0) + 1,
				(current[j - 1] ?? 0) + 1,
				(previous[j - 1] ?? 0) + cost,
			);
		}

		previous = current;
	}

	return previous[b.length] ?? 0;
}
