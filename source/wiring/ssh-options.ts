import {existsSync} from 'node:fs';
import path from 'node:path';
import type {ChainHop, Config, HostKeyPolicy, RelayConfig, RelayTarget} from '../config/types.js';
import type {HopName} from '../core/types.js';
import {hostPatternFor} from '../core/known-hosts.js';

/** What a hop needs to ask the user; absent under `--no-tui`, where asking is impossible. */
export type Asker = {
	readonly askSecret?: (message: string, echo: boolean) => Promise<string | null>;
	readonly confirmHostKey?: (info: {
		host: string;
		keyType: string;
		fingerprint: string;
	}) => Promise<boolean>;
};

/** OpenSSH's default identities, in its order, that exist for this user. */
export function defaultIdentities(home: string): string[] {
	return ['id_ed25519', 'id_ecdsa', 'id_ecdsa_sk', 'id_ed25519_sk', 'id_rsa']
		.map((name) => path.join(home, '.ssh', name))
		.filter((file) => existsSync(file));
}

/** `identities`: the hop's own list (`--identity`, then its IdentityFile lines). */
export function authOptions(
	config: Config,
	asker: Asker,
	identities: readonly string[] = config.identities,
) {
	return {
		agentSocket: process.env['SSH_AUTH_SOCK'] ?? null,
		identities: [...identities],
		defaultIdentities: identities.length > 0 ? [] : defaultIdentities(config.home),
		...(asker.askSecret ? {askSecret: asker.askSecret} : {}),
	};
}

/**
 * Names the relay's key is looked up under, as `ssh -p PORT relay` does: the HostName (never the
 * alias typed), or HostKeyAlias alone.
 */
export function relayKeyNames(config: RelayConfig): string[] {
	const {relay} = config;
	if (config.relayHostKeys.alias) return [config.relayHostKeys.alias];
	return [hostPatternFor(relay.host, relay.port)];
}

/**
 * Names the GPU host's key is looked up under: what `ssh -J relay -p 19506 localhost` records,
 * or `--host-key-alias` (HostKeyAlias) alone.
 */
export function gpuHostKeyNames(config: Config): string[] {
	if (config.gpuHostKeys.alias) return [config.gpuHostKeys.alias];
	return [
		hostPatternFor('localhost', config.relayPort),
		hostPatternFor('127.0.0.1', config.relayPort),
	];
}

/**
 * The laptop's chain, first hop first: what `~/.ssh/config` resolved for the alias, or, with
 * `--relay`, relay → `localhost:<relay-port>` (what `ssh -J relay -p PORT localhost` does).
 */
export function chainOf(config: RelayConfig): readonly ChainHop[] {
	if (config.hostAlias && config.chain.length > 0) return config.chain;
	const {relay} = config;
	return [
		{
			name: relay.alias ?? relay.host,
			host: relay.host,
			port: relay.port,
			user: relay.user,
			identities: config.identities,
			hostKeys: config.relayHostKeys,
			keyNames: relayKeyNames(config),
		},
		{
			name: 'localhost',
			host: 'localhost',
			port: config.relayPort,
			user: config.hostUser,
			identities: config.identities,
			hostKeys: config.gpuHostKeys,
			keyNames: gpuHostKeyNames(config),
		},
	];
}

/** An alias's chain as the header says it: `via relay`, `via bastion → relay`, or `direct`. */
export function chainVia(config: RelayConfig): string {
	const before = chainOf(config).slice(0, -1);
	return before.length === 0 ? 'direct' : `via ${before.map((hop) => hop.name).join(' → ')}`;
}

/** A hop's role in the chain: the first is the relay, the last the GPU host, any between a jump. */
export function chainRole(index: number, length: number): 'relay' | 'jump' | 'host' {
	if (index === length - 1) return 'host';
	return index === 0 ? 'relay' : 'jump';
}

/**
 * A hop's host-key options from its policy: the files (the first user file records), the names,
 * and whether an unknown key is recorded, asked about (only under `ask`, with a dashboard), or
 * refused.
 */
export function hostKeyOptions(policy: HostKeyPolicy, names: readonly string[], asker: Asker) {
	return {
		// `UserKnownHostsFile none`: nothing is read there, and a key "recorded" goes nowhere.
		knownHostsFile: policy.userFiles[0] ?? '/dev/null',
		otherKnownHostsFiles: [...policy.userFiles.slice(1), ...policy.globalFiles],
		hashKnownHosts: policy.hash,
		hostKeyNames: names,
		acceptNew: policy.strict === 'accept-new',
		...(policy.pin ? {pin: policy.pin} : {}),
		...(policy.strict === 'ask' && asker.confirmHostKey
			? {confirmHostKey: asker.confirmHostKey}
			: {}),
	};
}

export function keepalive(config: Config) {
	return {
		keepaliveMs: Math.round(config.keepaliveS * 1000),
		keepaliveCount: config.keepaliveCount,
	};
}

/** Directory of this profile's sockets and files, 0700. */
export function profileDir(config: Config): string {
	return path.join(config.stateDir, config.profile ?? 'default');
}

/** The one place a control socket's path is made: `${stateDir}/<profile>/<role>.sock`. */
export function controlSocketPath(config: Config, role: 'host' | 'connect'): string {
	return path.join(profileDir(config), `${role}.sock`);
}

/** Makes the asker of one hop (prompts name the hop they come from). */
export type AskerFactory = (hop: HopName) => Asker;

/**
 * Where the settings came from, in words, for the help overlay and `doctor`: the config file (or
 * none) and, when `~/.ssh/config` supplied the relay, that too.
 */
export function configSources(config: RelayConfig): string {
	const file = config.configFile ?? 'no config file (flags, environment and defaults)';
	if (config.hostAlias)
		return `${file}; ${config.hostAlias} from ~/.ssh/config (${chainOf(config)
			.map((hop) => hop.name)
			.join(' → ')})`;
	const {relay} = config;
	return relay.alias
		? `${file}; relay ${relay.alias} from ~/.ssh/config (${relayAddress(relay)})`
		: file;
}

/** `user@host:port`, what `--relay` takes, whatever form the user typed. */
export function relayAddress(relay: RelayTarget): string {
	return `${relay.user}@${relay.host}:${relay.port}`;
}

/** The relay as the user typed it: the `~/.ssh/config` alias, else `user@host[:port]`. */
export function relayAsTyped(relay: RelayTarget): string {
	return relay.alias ?? `${relay.user}@${relay.host}${relay.port === 22 ? '' : `:${relay.port}`}`;
}
