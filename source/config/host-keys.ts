/**
 * Host keys: one hop's host-key policy, and ~/.ssh/config lookups whose errors name what needed
 * them.
 */
import {join} from 'node:path';
import {ConfigError} from './errors.js';
import {
	defaultGlobalKnownHostsFiles,
	lookupSshHost,
	SshConfigError,
	type SshConfigOptions,
	type SshHostConfig,
} from './ssh-config.js';
import type {HostKeyPolicy} from './types.js';

/**
 * One hop's host-key policy: gpujup's own settings over what the ssh config says for that host
 * over ssh's defaults. `--known-hosts` replaces UserKnownHostsFile (the global files are still
 * read, as with `ssh -o UserKnownHostsFile=`); `--accept-new` over StrictHostKeyChecking, where
 * ssh's `no` / `off` counts as accept-new: gpujup never takes a changed key.
 */
export function hostKeyPolicy(
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

/** The `Port` ~/.ssh/config gives `name`, as a number; a ConfigError naming the file if no port. */
export function sshConfigPort(
	value: string,
	name: string,
	options: Pick<SshConfigOptions, 'home' | 'path'>,
): number {
	const number = Number(value);
	if (!/^\d+$/.test(value) || number < 1 || number > 65_535)
		throw new ConfigError(
			`${options.path ?? join(options.home, '.ssh', 'config')}: Port for "${name}": expected a port 1-65535, got ${JSON.stringify(value)}`,
		);
	return number;
}

/** lookupSshHost, its errors as ConfigErrors naming what needed the lookup. */
export function sshLookup(
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
