import {existsSync} from 'node:fs';
import path from 'node:path';
import type {Config} from '../config/types.js';
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

export function authOptions(config: Config, asker: Asker) {
	return {
		agentSocket: process.env['SSH_AUTH_SOCK'] ?? null,
		identities: config.identities,
		defaultIdentities: config.identities.length > 0 ? [] : defaultIdentities(config.home),
		...(asker.askSecret ? {askSecret: asker.askSecret} : {}),
	};
}

/** Names the relay's key is looked up under, as `ssh -p PORT host` records it. */
export function relayKeyNames(config: Config): string[] {
	const relay = config.relay!;
	const names = [hostPatternFor(relay.host, relay.port)];
	if (relay.alias && relay.alias !== relay.host)
		names.push(hostPatternFor(relay.alias, relay.port));
	return names;
}

/**
 * Names the GPU host's key is looked up under: what `ssh -J relay -p 19506 localhost` records,
 * or `--host-key-alias`.
 */
export function gpuHostKeyNames(config: Config): string[] {
	if (config.hostKeyAlias) return [config.hostKeyAlias];
	return [
		hostPatternFor('localhost', config.relayPort),
		hostPatternFor('127.0.0.1', config.relayPort),
	];
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

/** Makes the asker of one hop (prompts name the hop they come from). */
export type AskerFactory = (hop: HopName) => Asker;

/**
 * Where the settings came from, in words, for the help overlay and `doctor`: the config file (or
 * none) and, when `~/.ssh/config` supplied the relay, that too.
 */
export function configSources(config: Config): string {
	const file = config.configFile ?? 'no config file (flags, environment and defaults)';
	const alias = config.relay?.alias;
	return alias
		? `${file}; relay ${alias} from ~/.ssh/config (${relayAddress(config.relay!)})`
		: file;
}

/** `user@host:port`, what `--relay` takes, whatever form the user typed. */
export function relayAddress(relay: NonNullable<Config['relay']>): string {
	return `${relay.user}@${relay.host}:${relay.port}`;
}
