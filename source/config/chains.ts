/** Chains from ~/.ssh/config: `gpujup ALIAS` read as `ssh -G` reads it, hop by hop. */
import {hostPatternFor} from '../core/known-hosts.js';
import {chainCommands, type Flags, unknownCommand} from './argv.js';
import {ConfigError} from './errors.js';
import {closest} from './helpers.js';
import {hostKeyPolicy, sshConfigPort, sshLookup} from './host-keys.js';
import type {ResolvedRelay} from './relay.js';
import {parseJumpEntry, resolveSshChain, type SshChainLink} from './ssh-chain.js';
import {SshConfigError, type SshConfigOptions} from './ssh-config.js';
import {type ChainHop, type Command, commands} from './types.js';
import {defaults, type Given, text} from './values.js';

/**
 * The alias to read a chain for: `gpujup ALIAS`, `gpujup connect ALIAS`, or `host` (`--host`,
 * GPUJUP_HOST, the config file). With an alias, a `relay` from the environment or the config
 * file gives way; `--relay` on the same command line is a contradiction.
 */
export function chainAlias(
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
export function chainRelay(alias: string, sshOptions: SshConfigOptions): ResolvedRelay {
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
	const portNumber =
		link.port ??
		(link.config.port === null
			? defaults.relaySshPort
			: sshConfigPort(link.config.port, link.name, sshOptions));
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
export function chainHops(
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
