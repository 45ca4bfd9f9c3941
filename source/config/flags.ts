/**
 * The command line: the flag definitions, the settings every source (flag, `GPUJUP_*`, config
 * file) can give, and the help text. Numbers are read as strings so values.ts can name the flag
 * and the bad value itself instead of getting a silent NaN.
 */
import {commands, type Command} from './types.js';

/** The flag definitions (camelCase keys; argv.ts reads them kebab-case from the command line). */
export const cliFlags = {
	host: {type: 'string'},
	relay: {type: 'string'},
	relayPort: {type: 'string'},
	hostUser: {type: 'string'},
	jupyterPort: {type: 'string'},
	localPort: {type: 'string'},
	identity: {type: 'string', shortFlag: 'i', isMultiple: true},
	knownHosts: {type: 'string'},
	acceptNew: {type: 'boolean'},
	keepalive: {type: 'string'},
	keepaliveCount: {type: 'string'},
	hostKeyAlias: {type: 'string'},
	forward: {type: 'string', isMultiple: true},
	jupyterLog: {type: 'string'},
	nvidiaSmi: {type: 'string'},
	sshPort: {type: 'string'},
	jupyterCmd: {type: 'string'},
	env: {type: 'string'},
	notebookDir: {type: 'string'},
	notifyAfter: {type: 'string'},
	notifyUrl: {type: 'string'},
	slurm: {type: 'boolean'},
	sbatch: {type: 'string'},
	onQuit: {type: 'string'},
	nodeSshPort: {type: 'string'},
	// `--no-tui` is yargs' negation of `--tui`; the flag is documented only in its `--no-` form.
	tui: {type: 'boolean'},
	config: {type: 'string'},
	profile: {type: 'string'},
	json: {type: 'boolean'},
	stopJupyter: {type: 'boolean'},
	printSystemdUnit: {type: 'boolean'},
	pair: {type: 'boolean'},
	name: {type: 'string'},
	help: {type: 'boolean', shortFlag: 'h'},
	version: {type: 'boolean'},
} as const;

/** How a setting's raw value is checked and converted (see values.ts). */
export type SettingKind =
	| 'relay'
	| 'port'
	| 'port-or-zero'
	| 'text'
	| 'path'
	| 'remote-path'
	| 'paths'
	| 'boolean'
	| 'keepalive-seconds'
	| 'keepalive-count'
	| 'positive-number'
	| 'url'
	| 'forwards'
	| 'env'
	| 'sbatch-args'
	| 'on-quit'
	| 'fingerprint';

/**
 * Settings that every source may give, by their kebab-case name (the flag without `--`, the
 * config-file key, and, upper-cased with `_`, the `GPUJUP_*` variable).
 */
export const settings = {
	host: 'text',
	relay: 'relay',
	'relay-port': 'port',
	'host-user': 'text',
	'jupyter-port': 'port',
	'local-port': 'port-or-zero',
	identity: 'paths',
	'known-hosts': 'path',
	'accept-new': 'boolean',
	keepalive: 'keepalive-seconds',
	'keepalive-count': 'keepalive-count',
	'host-key-alias': 'text',
	forward: 'forwards',
	'jupyter-log': 'remote-path',
	'nvidia-smi': 'text',
	'ssh-port': 'port',
	'jupyter-cmd': 'text',
	env: 'env',
	'notebook-dir': 'path',
	'no-tui': 'boolean',
	'notify-after': 'positive-number',
	'notify-url': 'url',
	// host: no flag (config file or GPUJUP_TUNNEL_BACK_AFTER): how long the reverse tunnel is down
	// before its return notifies.
	'tunnel-back-after': 'positive-number',
	slurm: 'boolean',
	sbatch: 'sbatch-args',
	'on-quit': 'on-quit',
	'node-ssh-port': 'port',
	// Pins (`gpujup pair` writes them): the only keys those hops then trust.
	'relay-key': 'fingerprint',
	'host-key': 'fingerprint',
} as const satisfies Record<string, SettingKind>;

export type SettingName = keyof typeof settings;

/** Whether `name` is a setting (config-file key or `GPUJUP_*` variable suffix). */
export function isSettingName(name: string): name is SettingName {
	return Object.hasOwn(settings, name);
}

/** `relay-port` -> `GPUJUP_RELAY_PORT` */
export function envVarFor(name: string): string {
	return `GPUJUP_${name.toUpperCase().replaceAll('-', '_')}`;
}

/** `relayPort` -> `relay-port` */
export function kebabCase(name: string): string {
	return name.replaceAll(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`);
}

const commandHelp: Record<Command, string> = {
	connect: '(default, laptop) tunnel to Jupyter, live dashboard',
	host: '(GPU host) reverse tunnel, Jupyter, GPU sampling',
	status: 'state of the running gpujup, or one check (exit 0 if up)',
	url: 'print the Jupyter URL with its token, as seen from here',
	kernels: "the notebooks' kernels once: state, GPU memory, CPU, RSS",
	doctor: 'check each step, print the fix for the first failure',
	pair: '(laptop) pair STRING: a profile from `host --pair`, keys pinned',
	demo: 'the whole chain in one process, simulated GPUs',
};

// Kept within 80 columns: `--help` is read in small terminals.
const flagHelp: ReadonlyArray<readonly [string, string]> = [
	['--host ALIAS', 'the chain to ALIAS from ~/.ssh/config (ProxyJump)'],
	['--relay [user@]host[:port]', 'the relay; an ~/.ssh/config alias works'],
	['--relay-port N', "relay loopback port to the GPU host's sshd (19506)"],
	['--host-user NAME', 'user on the GPU host (the relay user)'],
	['--jupyter-port N', "Jupyter on the GPU host's loopback (19508)"],
	['--local-port N', 'laptop port, 0 picks a free one (19507)'],
	['-i, --identity FILE', 'private key, repeatable (agent, ~/.ssh/id_*)'],
	['--known-hosts FILE', 'host keys (UserKnownHostsFile, ~/.ssh/known_hosts)'],
	['--accept-new', 'record unknown host keys (never changed ones)'],
	['--keepalive S', 'keepalive interval, 0.1-3600 seconds (5)'],
	['--keepalive-count N', 'silent for S x N seconds = lost, 1-100 (3)'],
	['--host-key-alias NAME', "GPU host's key name ([localhost]:<relay-port>)"],
	['--forward L:R', "extra forward to the GPU host's loopback"],
	['--jupyter-log FILE', "without a host agent: the host's Jupyter log"],
	['--nvidia-smi CMD', 'GPU stats command on the GPU host (nvidia-smi)'],
	['--ssh-port N', 'host: local sshd behind the tunnel (22)'],
	['--jupyter-cmd CMD', 'host: jupyter lab, else jupyter notebook'],
	['--env SPEC', 'host: conda:NAME, venv:PATH or none (none)'],
	['--notebook-dir DIR', 'host: notebook directory (cwd)'],
	['--notify-after S', 'notify when a cell ran at least S seconds (60)'],
	['--notify-url URL', 'host: POST notifications there (ntfy format)'],
	['--slurm', 'connect: Jupyter in a Slurm job via the login node'],
	['--sbatch ARGS', "--slurm: sbatch's options ('--partition gpu …')"],
	['--on-quit keep|cancel|ask', '--slurm: what quitting does to the job (ask)'],
	['--node-ssh-port N', "--slurm: the compute nodes' sshd port (22)"],
	['--stop-jupyter', 'host: stop the supervised Jupyter, exit'],
	['--print-systemd-unit', 'host: print a systemd user unit, exit'],
	['--pair', 'host: print the string for gpujup pair, exit'],
	['--name NAME', 'pair: the profile to write (the relay host)'],
	['--json', 'status, kernels: print one JSON object'],
	['--no-tui', 'JSON lines, no dashboard (on when not a TTY)'],
	['--config FILE', 'config file (~/.config/gpujup/config.toml)'],
	['--profile NAME', 'use [profiles.NAME] of the config file'],
	['-h, --help', 'this help'],
	['--version', 'the version'],
];

/** The `--help` text: every command with one line, then every flag. */
export function helpText(): string {
	const commandWidth = Math.max(...commands.map((command) => command.length)) + 2;
	const flagWidth = Math.max(...flagHelp.map(([flag]) => flag.length)) + 2;
	return [
		'Usage: gpujup [command] [flags]   gpujup [connect] ALIAS [ALIAS…] [flags]',
		'',
		'Jupyter on a GPU box behind NAT, through an SSH relay, with a live dashboard.',
		'',
		'Commands:',
		...commands.map((command) => `  ${command.padEnd(commandWidth)}${commandHelp[command]}`),
		'',
		'Flags:',
		...flagHelp.map(([flag, text]) => `  ${flag.padEnd(flagWidth)}${text}`),
		'',
		'Each flag also has a variable (GPUJUP_RELAY_PORT) and a config-file key',
		'(relay-port = 19506). Flag > variable > config file > ~/.ssh/config > default.',
		'Exit codes: 0 ok, 1 a check failed or the chain is down, 2 bad usage or config,',
		'78 host --no-tui: the relay refused the key, or its host key is unknown/changed.',
		'',
	].join('\n');
}
