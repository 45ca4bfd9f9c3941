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
 *
 * This module only puts one host's settings together; each step is its own module: argv.ts (the
 * command line), layers.ts (which source gives a setting), config-file.ts, values.ts (checks and
 * conversions), host-keys.ts, relay.ts, chains.ts (~/.ssh/config aliases), fleet.ts (several GPU
 * hosts), helpers.ts.
 */
import {homedir} from 'node:os';
import {join} from 'node:path';
import type {HostKeyPin} from '../core/pins.js';
import {checkUnknownFlags, pairArguments, parseCommandLine, pickCommand} from './argv.js';
import {chainAlias, chainHops, chainRelay} from './chains.js';
import {configFileLocation, loadConfigFile} from './config-file.js';
import {ConfigError} from './errors.js';
import {type FleetMember, fleetGiven, fleetHostConfig, fleetOf} from './fleet.js';
import {helpText, type SettingName} from './flags.js';
import {absoluteOrNull, nonEmpty, osUser} from './helpers.js';
import {hostKeyPolicy, sshLookup} from './host-keys.js';
import {flagOrEnvBoolean, lookup} from './layers.js';
import {type ResolvedRelay, resolveRelay} from './relay.js';
import {defaultSystemConfig, type SshConfigOptions} from './ssh-config.js';
import type {Config, EnvSpec, ForwardSpec, HostKeyPolicy} from './types.js';
import {
	boolean,
	defaults,
	envSpec,
	forward,
	type Given,
	hostKeyPin,
	httpUrl,
	keepaliveCount,
	keepaliveSeconds,
	listOf,
	localPath,
	port,
	positiveNumber,
	slurmSettings,
	text,
} from './values.js';

export {ConfigError} from './errors.js';

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
