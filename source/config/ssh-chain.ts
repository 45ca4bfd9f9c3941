/**
 * The chain of hops `ssh ALIAS` would take, from what `~/.ssh/config` says (as `ssh -G` resolves
 * each host): ProxyJump lists, jumps nested through other aliases, `user@host:port` and
 * `ssh://` forms, `none`. As ssh.c does, a host with `ProxyJump a,b,c` is reached by running
 * `ssh -J a,b -W host:port c`: the list's last entry is the hop just before the host, reached
 * itself through the rest of the list given as `-J` (which overrides that entry's own ProxyJump),
 * and only the first entry of a list falls back to its own ProxyJump from the config. Entries are
 * aliases too: each hop gets its own HostName, Port, User, IdentityFile and host-key settings.
 * The `%h %n %p %r` tokens of a ProxyJump are the hop's own, the one the jump leads to.
 * ProxyCommand runs a program and is refused; nothing here runs anything.
 */
import {join} from 'node:path';
import {
	expandSshTokens,
	lookupSshHost,
	SshConfigError,
	sshHostName,
	type SshConfigOptions,
	type SshHostConfig,
} from './ssh-config.js';

/** One hop as ssh would dial it: the name written, the `-l`/`-p`/`-J` its parent gave it. */
export type SshChainLink = {
	/** As written in the jump list (or typed, for the last). */
	readonly name: string;
	/** From a `user@host` jump entry (ssh's `-l`), over the config's User. */
	readonly user: string | null;
	/** From a `host:port` jump entry (ssh's `-p`), over the config's Port. */
	readonly port: number | null;
	/** The `-J` list this hop was reached with, which replaced its own ProxyJump; null for none. */
	readonly jump: string | null;
	/** The host ssh dials: HostName as expanded, else the name, lowercased unless an address. */
	readonly hostName: string;
	/** What the config says for this hop. */
	readonly config: SshHostConfig;
};

/** A jump entry: `[user@]host[:port]`, `[user@][v6]:port`, or `ssh://[user@]host[:port]`. */
export type JumpEntry = {
	readonly user: string | null;
	readonly host: string;
	readonly port: number | null;
};

// ssh's own chain has no limit, but a ProxyJump loop must end; no real path is this long.
const maxHops = 16;

/**
 * `[user@]host[:port]` split as ssh's parse_user_host_port does: the user before the last `@`
 * (null without one), `[v6]:port` in brackets; `bareIpv6`: a host of two or more colons is an
 * IPv6 address without a port (`--relay ::1`), where ssh reads the first colon as the port's.
 * Null for an empty user or host, or a host with spaces, `/`, `@` or brackets.
 */
export function splitUserHostPort(
	text: string,
	options: {readonly bareIpv6: boolean},
): {user: string | null; host: string; port: string | null} | null {
	const at = text.lastIndexOf('@');
	const user = at >= 0 ? text.slice(0, at) : null;
	if (user === '') return null;
	const rest = at >= 0 ? text.slice(at + 1) : text;
	let host: string;
	let port: string | null = null;
	if (rest.startsWith('[')) {
		const match = /^\[([^\]]+)\](?::(.*))?$/.exec(rest);
		if (!match) return null;
		host = match[1] ?? '';
		port = match[2] ?? null;
	} else {
		const colon = rest.indexOf(':');
		const bare = options.bareIpv6 && colon !== rest.lastIndexOf(':');
		host = colon === -1 || bare ? rest : rest.slice(0, colon);
		port = colon === -1 || bare ? null : rest.slice(colon + 1);
	}

	if (host === '' || /[\s/@[\]]/.test(host)) return null;
	return {user, host, port};
}

/**
 * Parses one ProxyJump entry as ssh's parse_ssh_uri / parse_user_host_port do; null when ssh
 * would refuse it.
 */
export function parseJumpEntry(text: string): JumpEntry | null {
	let rest = text.trim();
	if (rest === '') return null;
	if (rest.toLowerCase().startsWith('ssh://')) {
		rest = rest.slice('ssh://'.length);
		if (rest.includes('/')) return null;
	}

	const split = splitUserHostPort(rest, {bareIpv6: false});
	if (!split) return null;
	let port: number | null = null;
	if (split.port !== null) {
		port = Number(split.port);
		if (!/^\d+$/.test(split.port) || port < 1 || port > 65_535) return null;
	}

	return {user: split.user, host: split.host, port};
}

/**
 * The hops to `alias`, first (the one dialled from here) to last (`alias` itself). Throws
 * SshConfigError for a config that cannot be read, a ProxyCommand, a ProxyJump entry ssh would
 * refuse, or a loop.
 */
export function resolveSshChain(alias: string, options: SshConfigOptions): SshChainLink[] {
	const file = options.path ?? join(options.home, '.ssh', 'config');
	const links: SshChainLink[] = [];
	// Built from the last hop back: each step resolves the hop before the current one.
	type Next = {readonly entry: JumpEntry; readonly jump: string | null};
	let next: Next | null = {
		entry: {user: null, host: alias, port: null},
		jump: null,
	};
	while (next) {
		if (links.length >= maxHops)
			throw new SshConfigError(
				file,
				`ProxyJump for "${alias}" leads through more than ${maxHops} hops — is there a loop (${links
					.map((link) => link.name)
					.reverse()
					.join(' → ')})?`,
			);
		const {entry, jump}: Next = next;
		const config = lookupSshHost(entry.host, {
			...options,
			...(entry.port === null ? {} : {port: entry.port}),
			...(entry.user === null ? {} : {user: entry.user}),
		});
		const hostName: string = config.hostName ?? sshHostName(entry.host);
		links.unshift({name: entry.host, user: entry.user, port: entry.port, jump, hostName, config});
		// A `-J` from the command line (here: from the hop after) is obtained first and wins.
		const proxyJump: string | null = jump ?? config.proxyJump;
		if (jump === null && config.proxyCommand !== null)
			throw new SshConfigError(
				file,
				`"${entry.host}" uses ProxyCommand (${config.proxyCommand}), which runs a program: gpujup does not run it. Write the chain with ProxyJump instead (ProxyJump relay, or a,b for several hops), or give --relay`,
			);
		if (proxyJump === null || proxyJump.toLowerCase() === 'none') {
			next = null;
			continue;
		}

		const entries: string[] = proxyJump.split(',');
		const lastText = entries.pop() ?? '';
		const last = parseJumpEntry(lastText);
		const bad = [lastText, ...entries].find((text) => parseJumpEntry(text) === null);
		if (!last || bad !== undefined)
			throw new SshConfigError(
				file,
				`ProxyJump for "${entry.host}": cannot read ${JSON.stringify(bad ?? lastText)}; expected [user@]host[:port] entries separated by commas, or none`,
			);
		// ssh.c writes the jump into its implicit ProxyCommand (`ssh -l user -J rest -W '[%h]:%p'
		// host`), which is expanded with this hop's %h %n %p %r: the entries are read as written,
		// then their user, host and the rest of the list are expanded.
		const tokens: Record<string, string> = {
			h: hostName,
			n: entry.host,
			p: String(entry.port ?? config.port ?? 22),
			r: entry.user ?? config.user ?? options.localUser,
		};
		const expand = (text: string): string =>
			expandSshTokens(text, tokens, {
				fail: (problem) => new SshConfigError(file, `ProxyJump for "${entry.host}": ${problem}`),
			});
		next = {
			entry: {
				user: last.user === null ? null : expand(last.user),
				host: expand(last.host),
				port: last.port,
			},
			jump: entries.length > 0 ? expand(entries.join(',')) : null,
		};
	}

	return links;
}
