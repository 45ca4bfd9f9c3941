import type {HostKeyPin} from '../core/pins.js';

/** The resolved configuration every command starts from (see resolve.ts for where each value comes from). */

export const commands = [
	'connect',
	'host',
	'status',
	'url',
	'kernels',
	'doctor',
	'demo',
	'pair',
] as const;
export type Command = (typeof commands)[number];

/** A relay to reach: what `--relay [user@]host[:port]` and `~/.ssh/config` resolve to. */
export type RelayTarget = {
	readonly host: string;
	readonly port: number;
	readonly user: string;
	/** The `~/.ssh/config` alias typed by the user when it supplied the HostName, else null. */
	readonly alias: string | null;
};

/**
 * How one hop's host key is looked up and recorded, resolved as `ssh -G` resolves it for that
 * host (`--known-hosts` / `--accept-new` / `--host-key-alias` over ~/.ssh/config over the system
 * ssh_config over ssh's defaults).
 */
export type HostKeyPolicy = {
	/** UserKnownHostsFile: read in order; the first records new keys. */
	readonly userFiles: readonly string[];
	/** GlobalKnownHostsFile: read after the user's, never written. */
	readonly globalFiles: readonly string[];
	/** HostKeyAlias (lowercased): the only name the key is looked up and recorded under. */
	readonly alias: string | null;
	/**
	 * StrictHostKeyChecking: `yes` refuses an unknown key without asking; `accept-new` records it
	 * (ssh's `no` too: gpujup never accepts a changed key); `ask` asks in the dashboard.
	 */
	readonly strict: 'yes' | 'accept-new' | 'ask';
	/** HashKnownHosts: new keys are recorded under hashed names. */
	readonly hash: boolean;
	/** `relay-key` / `host-key` (from `gpujup pair`): the only key trusted; recorded hashed, never asked. */
	readonly pin?: HostKeyPin | null;
};

/**
 * One hop of the laptop's chain, in order from the laptop. Each hop after the first is reached
 * through the one before it (`forwardOut` to its `host`:`port`), as `ssh -J` does; the last is
 * the GPU host. A Slurm tail appends its compute node the same way.
 */
export type ChainHop = {
	/** The alias or host the user wrote (`name` in hop events). */
	readonly name: string;
	/** HostName: what the first hop dials, and what the hop before asks `forwardOut` for. */
	readonly host: string;
	readonly port: number;
	readonly user: string;
	/** `--identity` files, then this hop's IdentityFile lines. */
	readonly identities: readonly string[];
	readonly hostKeys: HostKeyPolicy;
	/** Names its key is looked up under (HostKeyAlias alone, else `[host]:port`); the first records. */
	readonly keyNames: readonly string[];
};

/** An extra forward to the GPU host's loopback: laptop port `local` to remote port `remote`. */
export type ForwardSpec = {readonly local: number; readonly remote: number};

/** `--env`: how the host activates Jupyter's environment. */
export type EnvSpec =
	| {readonly kind: 'none'}
	| {readonly kind: 'conda'; readonly name: string}
	| {readonly kind: 'venv'; readonly path: string};

/** `--on-quit`: what quitting `connect --slurm` does to the job. */
export type OnQuit = 'keep' | 'cancel' | 'ask';

/** `connect --slurm`: the GPU host is a Slurm job reached through the login node. */
export type SlurmSettings = {
	/** `--sbatch`, split into words as a shell would (or the config file's list, as given). */
	readonly sbatchArgs: readonly string[];
	readonly onQuit: OnQuit;
	/** `--node-ssh-port`: the compute nodes' sshd. */
	readonly nodeSshPort: number;
	/** `--env` on the cluster (a venv path as written: absolute or `~/…`); null: none given. */
	readonly env: EnvSpec | null;
	/** `--notebook-dir` on the cluster, as written (absolute or `~/…`); null: the home there. */
	readonly notebookDir: string | null;
};

export type Config = {
	command: Command;
	profile: string | null;
	/** The config file actually read, or null when none was. */
	configFile: string | null;
	/** Null only for `url`, `status` and `demo`, which may run without one. */
	relay: RelayTarget | null;
	relayPort: number;
	/**
	 * With an `~/.ssh/config` alias, the hops `ssh -G` resolves for it, the relay first and the GPU
	 * host last. Empty with `--relay`, whose two-hop chain `chainOf` (wiring/ssh-options) derives.
	 */
	chain: readonly ChainHop[];
	/** The `~/.ssh/config` alias the chain was read from (`gpujup p507`), or null for `--relay`. */
	hostAlias: string | null;
	hostUser: string;
	jupyterPort: number;
	localPort: number;
	/** `--identity` files, then IdentityFile from `~/.ssh/config`, `~` expanded. */
	identities: string[];
	/** The relay's host key (for the relay's name or alias). */
	relayHostKeys: HostKeyPolicy;
	/** The GPU host's (what ssh resolves for `localhost`, the second hop's name). */
	gpuHostKeys: HostKeyPolicy;
	keepaliveS: number;
	keepaliveCount: number;
	forwards: ForwardSpec[];
	/** A path on the GPU host, left as written. */
	jupyterLog: string | null;
	nvidiaSmi: string;
	sshPort: number;
	jupyterCmd: string | null;
	env: EnvSpec;
	notebookDir: string;
	noTui: boolean;
	/** `--notify-after`: a cell that ran at least this long notifies when it finishes. */
	notifyAfterS: number;
	/** host: where notifications are POSTed (may carry a secret: never shown or logged). */
	notifyUrl: string | null;
	/**
	 * host: the reverse tunnel back after at least this long down notifies (`tunnel-back-after`,
	 * config file or `GPUJUP_TUNNEL_BACK_AFTER` only; 60).
	 */
	tunnelBackAfterS: number;
	/** Null without `--slurm`. */
	slurm: SlurmSettings | null;
	/** Things the user should know before the run starts (printed to stderr once). */
	warnings: string[];
	json: boolean;
	stopJupyter: boolean;
	printSystemdUnit: boolean;
	/** `host --pair`: print the pairing string and exit. */
	pair?: boolean;
	/** `pair STRING [--name NAME]`: the string, and the profile to write (null: from the relay). */
	pairString?: string | null;
	pairName?: string | null;
	/** The config file read, or the one that would be (and `pair` writes), whether it exists or not. */
	configPath?: string;
	/**
	 * In a fleet, this host's name (its alias, or its `[fleet.<name>]` table): the `host` of its
	 * events, its socket's name. Null for a single host.
	 */
	fleetName?: string | null;
	/** Several GPU hosts (`gpujup A B`, `[fleet.<alias>]` tables): each host's own Config. */
	fleet?: readonly Config[];
	/** The fleet's host names, also where only the names are known (`gpujup url`). */
	fleetHosts?: readonly string[];
	home: string;
	/** `${XDG_STATE_HOME:-~/.local/state}/gpujup` */
	stateDir: string;
};

/**
 * The config of a run that dials the relay: connect, doctor, `status` checking the chain once,
 * each GPU host of a fleet, and `host` (all but `--stop-jupyter`). Made once, where the command
 * starts, by `needRelay` or `withRelay` (config/narrow.ts).
 */
export type RelayConfig = Config & {readonly relay: RelayTarget};

/** `--slurm` (connect, status, doctor): the job's settings known too, made by `withSlurm`. */
export type SlurmConfig = RelayConfig & {readonly slurm: SlurmSettings};
