/** The relay: `--relay [user@]host[:port]` or an ~/.ssh/config alias, resolved to a RelayTarget. */
import {sshConfigPort, sshLookup} from './host-keys.js';
import {type SshChainLink, splitUserHostPort} from './ssh-chain.js';
import {sshHostName, type SshConfigOptions, type SshHostConfig} from './ssh-config.js';
import type {RelayTarget} from './types.js';
import {defaults, fail, type Given, port} from './values.js';

export type ResolvedRelay = {
	target: RelayTarget;
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

export function resolveRelay(given: Given, sshOptions: SshConfigOptions): ResolvedRelay {
	if (typeof given.value !== 'string') fail(given, '[user@]host[:port]');
	const spec = parseRelaySpec(given.value);
	if (!spec) fail(given, '[user@]host[:port]');
	const {localUser} = sshOptions;
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

	const portNumber =
		specPort ??
		(ssh.port === null
			? defaults.relaySshPort
			: sshConfigPort(ssh.port, spec.host, {home: sshOptions.home}));
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
