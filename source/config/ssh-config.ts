/**
 * Reads what `~/.ssh/config`, then the system's `/etc/ssh/ssh_config`, say about a host, as ssh
 * does (the first value obtained wins): HostName, User, Port, IdentityFile, and how its host key
 * is checked (UserKnownHostsFile, GlobalKnownHostsFile, HostKeyAlias, StrictHostKeyChecking,
 * HashKnownHosts), following `Include` like ssh's readconf.c. The ssh-config package only parses; we evaluate,
 * because its `compute()` runs `Match exec` commands by default. `Match exec` (and every Match
 * criterion we cannot evaluate without side effects) is treated as not matching: reading a
 * config must never run a command.
 */
import {createHash} from 'node:crypto';
import {readdirSync, readFileSync} from 'node:fs';
import {isIPv4, isIPv6, SocketAddress} from 'node:net';
import {hostname} from 'node:os';
import {dirname, isAbsolute, join} from 'node:path';
import SSHConfig, {type Line} from 'ssh-config';

/** StrictHostKeyChecking, its synonyms folded (`true` = yes, `off`/`false` = no). */
export type StrictHostKeyChecking = 'yes' | 'no' | 'ask' | 'accept-new';

/** What the ssh config gives for one host. Null where it says nothing. */
export type SshHostConfig = {
	/** HostName with `%h` expanded, as ssh dials it (sshHostName: lowercased unless an address). */
	readonly hostName: string | null;
	readonly user: string | null;
	readonly port: string | null;
	/** In file order; `~`, `${VAR}` and the `%` tokens of ssh_config(5) TOKENS expanded. */
	readonly identityFiles: string[];
	/** UserKnownHostsFile, expanded as IdentityFile; `none` is an empty list. */
	readonly userKnownHostsFiles: string[] | null;
	/** GlobalKnownHostsFile, `~` expanded (ssh expands no tokens there); `none` is an empty list. */
	readonly globalKnownHostsFiles: string[] | null;
	/** HostKeyAlias, lowercased as ssh does; ssh expands no tokens in it. */
	readonly hostKeyAlias: string | null;
	readonly strictHostKeyChecking: StrictHostKeyChecking | null;
	readonly hashKnownHosts: boolean | null;
	/**
	 * ProxyJump as written (`relay`, `a,b`, `user@host:port`, `none`), or null. ProxyJump and
	 * ProxyCommand exclude each other as in readconf.c: whichever comes first wins, and
	 * `ProxyJump none` / `ProxyCommand none` turn both off.
	 */
	readonly proxyJump: string | null;
	/** ProxyCommand (not `none`) where it won over ProxyJump: gpujup never runs it. */
	readonly proxyCommand: string | null;
};

export type SshConfigOptions = {
	readonly home: string;
	readonly localUser: string;
	/** The user config; defaults to `<home>/.ssh/config`. */
	readonly path?: string;
	/**
	 * The system-wide config read after it; defaults to `/etc/ssh/ssh_config`, or to none when
	 * `path` is given (as `ssh -F` reads no system file). Null: none.
	 */
	readonly systemPath?: string | null;
	/** The port and user given on the command line (`%p`, `%r`), over the config's. */
	readonly port?: number;
	readonly user?: string;
};

/** Where ssh looks when the config names no known_hosts files. */
export const defaultSystemConfig = '/etc/ssh/ssh_config';
export const defaultGlobalKnownHostsFiles = [
	'/etc/ssh/ssh_known_hosts',
	'/etc/ssh/ssh_known_hosts2',
];

/**
 * Raised for an ssh config that cannot be read or parsed; host-keys.ts and chains.ts turn it into
 * a ConfigError.
 */
export class SshConfigError extends Error {
	constructor(
		readonly file: string,
		message: string,
	) {
		super(message);
		this.name = 'SshConfigError';
	}
}

// readconf.c's READCONF_MAX_DEPTH: an Include loop must end.
const maxDepth = 16;

type State = {
	hostName: string | null;
	user: string | null;
	port: string | null;
	identityFiles: string[];
	userKnownHostsFiles: string[] | null;
	globalKnownHostsFiles: string[] | null;
	hostKeyAlias: string | null;
	strictHostKeyChecking: string | null;
	hashKnownHosts: string | null;
	/** The first of ProxyJump / ProxyCommand obtained: the other is then ignored. */
	proxy: {readonly kind: 'jump' | 'command'; readonly value: string} | null;
};

/**
 * Evaluates the user's ssh config, then the system's, for `host` (the name typed, e.g. `relay`).
 * A missing config file gives nothing; an unreadable or unparsable one throws SshConfigError.
 */
export function lookupSshHost(host: string, options: SshConfigOptions): SshHostConfig {
	const path = options.path ?? join(options.home, '.ssh', 'config');
	const systemPath =
		options.systemPath === undefined
			? options.path === undefined
				? defaultSystemConfig
				: null
			: options.systemPath;
	const state: State = {
		hostName: null,
		user: null,
		port: null,
		identityFiles: [],
		userKnownHostsFiles: null,
		globalKnownHostsFiles: null,
		hostKeyAlias: null,
		strictHostKeyChecking: null,
		hashKnownHosts: null,
		proxy: null,
	};
	const context: Context = {host, options, state, sshDir: join(options.home, '.ssh')};
	readFile(path, true, 0, context, false);
	// Relative Includes of the system file are under /etc/ssh.
	if (systemPath) readFile(systemPath, true, 0, {...context, sshDir: dirname(systemPath)}, false);
	const remoteUser = options.user ?? state.user ?? options.localUser;
	const fail = (keyword: string, problem: string) =>
		new SshConfigError(path, `${keyword} for "${host}": ${problem}`);
	// As ssh.c: HostName takes %h (the name typed) and %%, then is lowercased unless an address.
	const hostName =
		state.hostName === null
			? null
			: sshHostName(
					expandSshTokens(
						state.hostName,
						{h: host},
						{fail: (problem) => fail('HostName', problem)},
					),
				);
	const hostKeyAlias = state.hostKeyAlias?.toLowerCase() ?? null;
	const port = String(options.port ?? state.port ?? 22);
	const effectiveHost = hostName ?? sshHostName(host);
	// ssh's default_client_percent_dollar_expand: the tokens of IdentityFile and UserKnownHostsFile.
	const localHost = hostname();
	const fileTokens: Record<string, string> = {
		C: createHash('sha1').update(`${localHost}${effectiveHost}${port}${remoteUser}`).digest('hex'),
		d: options.home,
		h: effectiveHost,
		i: String(process.getuid?.() ?? 0),
		k: hostKeyAlias ?? host,
		L: localHost.split('.')[0] ?? localHost,
		l: localHost,
		n: host,
		p: port,
		r: remoteUser,
		u: options.localUser,
	};
	const file = (keyword: string, text: string) =>
		expandSshTokens(expandTilde(text, options.home), fileTokens, {
			dollar: true,
			fail: (problem) => fail(keyword, problem),
		});
	const files = (keyword: string, list: string[] | null) =>
		list === null
			? null
			: list.filter((name) => name !== 'none').map((name) => file(keyword, name));
	return {
		hostName,
		user: state.user,
		port: state.port,
		identityFiles: state.identityFiles.map((name) => file('IdentityFile', name)),
		userKnownHostsFiles: files('UserKnownHostsFile', state.userKnownHostsFiles),
		// ssh expands only `~` in these.
		globalKnownHostsFiles:
			state.globalKnownHostsFiles
				?.filter((name) => name !== 'none')
				.map((name) => expandTilde(name, options.home)) ?? null,
		hostKeyAlias,
		strictHostKeyChecking: strictOf(state.strictHostKeyChecking),
		hashKnownHosts: yesNoOf(state.hashKnownHosts),
		proxyJump: state.proxy?.kind === 'jump' ? state.proxy.value : null,
		proxyCommand:
			state.proxy?.kind === 'command' && state.proxy.value.toLowerCase() !== 'none'
				? state.proxy.value
				: null,
	};
}

function strictOf(value: string | null): StrictHostKeyChecking | null {
	const word = value?.toLowerCase();
	if (word === 'yes' || word === 'true') return 'yes';
	if (word === 'no' || word === 'off' || word === 'false') return 'no';
	if (word === 'ask' || word === 'accept-new') return word;
	return null;
}

function yesNoOf(value: string | null): boolean | null {
	const word = value?.toLowerCase();
	if (word === 'yes' || word === 'true') return true;
	if (word === 'no' || word === 'false') return false;
	return null;
}

type Context = {
	readonly host: string;
	readonly options: SshConfigOptions;
	readonly state: State;
	readonly sshDir: string;
	/** The file being read, for errors. */
	readonly file?: string;
};

function readFile(
	path: string,
	active: boolean,
	depth: number,
	context: Context,
	mustExist: boolean,
): void {
	let text: string;
	try {
		text = readFileSync(path, 'utf8');
	} catch (error) {
		const code = (error as NodeJS.ErrnoException).code;
		if (!mustExist && (code === 'ENOENT' || code === 'ENOTDIR')) return;
		throw new SshConfigError(path, `cannot read: ${(error as Error).message}`);
	}

	let parsed: SSHConfig;
	try {
		parsed = SSHConfig.parse(text);
	} catch (error) {
		throw new SshConfigError(path, `cannot parse: ${(error as Error).message}`);
	}

	evaluate(parsed, active, depth, {...context, file: path});
}

function evaluate(lines: readonly Line[], active: boolean, depth: number, context: Context): void {
	for (const line of lines) {
		if (line.type !== SSHConfig.DIRECTIVE) continue;
		const param = line.param.toLowerCase();
		const values = valuesOf(line.value);
		if ('config' in line && (param === 'host' || param === 'match')) {
			const matches =
				param === 'host' ? hostMatches(values, context) : matchMatches(line.value, context);
			evaluate(line.config, active && matches, depth, context);
			continue;
		}

		if (param === 'include') {
			if (depth >= maxDepth) {
				throw new SshConfigError(join(context.sshDir, 'config'), 'Include nested too deeply');
			}

			for (const pattern of values) {
				for (const file of expandInclude(pattern, context)) {
					// Like readconf.c: an included file's Host lines never match inside an inactive block.
					readFile(file, active, depth + 1, context, false);
				}
			}

			continue;
		}

		if (!active) continue;
		const [first] = values;
		if (first === undefined) continue;
		const {state} = context;
		// ssh keeps the first value it obtains for each parameter; IdentityFile accumulates.
		if (param === 'hostname') state.hostName ??= first;
		else if (param === 'user') state.user ??= first;
		else if (param === 'port') state.port ??= first;
		else if (param === 'identityfile') state.identityFiles.push(first);
		else if (param === 'userknownhostsfile') state.userKnownHostsFiles ??= values;
		else if (param === 'globalknownhostsfile') state.globalKnownHostsFiles ??= values;
		else if (param === 'hostkeyalias') state.hostKeyAlias ??= first;
		else if (param === 'stricthostkeychecking') state.strictHostKeyChecking ??= first;
		else if (param === 'hashknownhosts') state.hashKnownHosts ??= first;
		else if (param === 'proxyjump') state.proxy ??= {kind: 'jump', value: first};
		else if (param === 'proxycommand') state.proxy ??= {kind: 'command', value: values.join(' ')};
	}
}

function valuesOf(value: unknown): string[] {
	if (typeof value === 'string') return [value];
	if (Array.isArray(value)) {
		return value.map((item: unknown) =>
			typeof item === 'object' && item !== null && 'val' in item ? String(item.val) : String(item),
		);
	}

	return [];
}

function hostMatches(patterns: readonly string[], context: Context): boolean {
	return patternListMatches(patterns, context.host);
}

/**
 * `Match` criteria: only `all`, `host`, `originalhost`, `user` and `localuser` are evaluated.
 * `exec` is never run, and `canonical`, `final`, `tagged`, `localnetwork` and any negated or
 * unknown criterion make the block not match, so it can never apply by surprise.
 */
function matchMatches(value: unknown, context: Context): boolean {
	const tokens = valuesOf(value);
	const {state, options, host} = context;
	let index = 0;
	while (index < tokens.length) {
		const criterion = (tokens[index] ?? '').toLowerCase();
		index++;
		if (criterion === 'all') continue;
		const argument = tokens[index];
		index++;
		if (argument === undefined) return false;
		const patterns = argument.split(',');
		let subject: string;
		// readconf.c's match_cfg_line: HostName with %h expanded, not lowercased.
		if (criterion === 'host')
			subject =
				state.hostName === null
					? host
					: expandSshTokens(
							state.hostName,
							{h: host},
							{
								fail: (problem) =>
									new SshConfigError(
										context.file ?? context.sshDir,
										`HostName for "${host}": ${problem}`,
									),
							},
						);
		else if (criterion === 'originalhost') subject = host;
		else if (criterion === 'user') subject = state.user ?? options.localUser;
		else if (criterion === 'localuser') subject = options.localUser;
		else return false;
		if (!patternListMatches(patterns, subject)) return false;
	}

	return true;
}

/** ssh's match_pattern_list: a negated match rejects, otherwise any positive match accepts. */
export function patternListMatches(patterns: readonly string[], subject: string): boolean {
	let result = false;
	for (const pattern of patterns) {
		if (pattern.startsWith('!')) {
			if (wildcardMatches(pattern.slice(1), subject)) return false;
		} else if (wildcardMatches(pattern, subject)) {
			result = true;
		}
	}

	return result;
}

/**
 * `*` and `?` wildcards. For host patterns ssh lowercases the pattern only (match.c's `dolower`),
 * so `Host *.Example.org` matches `a.example.org` but `Host *.example.org` does not match
 * `A.example.org`; file names are matched exactly.
 */
function wildcardMatches(pattern: string, subject: string, lowerPattern = true): boolean {
	let source = '^';
	for (const char of lowerPattern ? pattern.toLowerCase() : pattern) {
		if (char === '*') source += '.*';
		else if (char === '?') source += '.';
		else source += char.replace(/[\\^$.|+()[\]{}]/g, '\\$&');
	}

	return new RegExp(`${source}$`, 's').test(subject);
}

/** Include paths: `~` expanded, relative ones under ~/.ssh, glob wildcards in any segment. */
function expandInclude(pattern: string, context: Context): string[] {
	let path = pattern;
	if (path === '~' || path.startsWith('~/')) path = join(context.options.home, path.slice(1));
	if (!isAbsolute(path)) path = join(context.sshDir, path);
	const segments = path.split('/').filter((segment) => segment !== '');
	let candidates = ['/'];
	for (const segment of segments) {
		const next: string[] = [];
		for (const base of candidates) {
			if (!/[*?]/.test(segment)) {
				next.push(join(base, segment));
				continue;
			}

			let names: string[];
			try {
				names = readdirSync(base);
			} catch {
				continue;
			}

			for (const name of names.sort()) {
				// glob(3) skips dot files unless the pattern itself starts with a dot.
				if (name.startsWith('.') && !segment.startsWith('.')) continue;
				if (wildcardMatches(segment, name, false)) next.push(join(base, name));
			}
		}

		candidates = next;
	}

	return candidates;
}

/**
 * The host name ssh dials, as ssh.c makes it from the name (HostName expanded, or the name
 * typed): an address is canonicalised (`127.1` is `127.0.0.1`, `0:0::1` is `::1`; only where
 * that changes more than case), anything else lowercased. Like ssh's is_addr, a name with `%`
 * or `:`, or of digits and dots only, is never lowercased even where it is no address.
 */
export function sshHostName(name: string): string {
	const address = numericAddress(name);
	if (address !== null) return address.toLowerCase() === name.toLowerCase() ? name : address;
	return /[%:]/.test(name) || /^[\d.]*$/.test(name) ? name : name.toLowerCase();
}

/** getaddrinfo(AI_NUMERICHOST) then getnameinfo(NI_NUMERICHOST): the address's usual form. */
function numericAddress(name: string): string | null {
	if (isIPv6(name)) return new SocketAddress({address: name, family: 'ipv6'}).address;
	// inet_aton's forms (`127.1`, `0x7f.1`, `010.0.0.1` octal), which WHATWG URL hosts share.
	if (!/^(?:0x[\da-f]*|\d+)(?:\.(?:0x[\da-f]*|\d+)){0,3}$/i.test(name)) return null;
	try {
		const host = new URL(`http://${name}/`).hostname;
		return isIPv4(host) ? host : null;
	} catch {
		return null;
	}
}

/** Where a token that the keyword does not take, or an unset `${VAR}`, is reported. */
export type TokenOptions = {
	/** Whether `${VAR}` is expanded from the environment (ssh's dollar expansion). */
	readonly dollar?: boolean;
	readonly env?: NodeJS.ProcessEnv;
	/** Builds the error for a problem; thrown. */
	readonly fail: (problem: string) => Error;
};

/**
 * ssh's percent_expand (and, with `dollar`, dollar_expand) in one pass, as misc.c does it:
 * `%%` is `%`, `%X` is `values[X]`, `${NAME}` the environment's NAME. A token the keyword does
 * not take, a lone `%` at the end, or an unset variable is an error, as ssh refuses it.
 */
export function expandSshTokens(
	text: string,
	values: Readonly<Record<string, string>>,
	options: TokenOptions,
): string {
	const env = options.env ?? process.env;
	const takes = () =>
		[...Object.keys(values).map((key) => `%${key}`), '%%']
			.join(', ')
			.replace(/, ([^,]*)$/, ' and $1');
	const pattern = options.dollar ? /\$\{([^}]*)(\})?|%([\s\S]?)/g : /()()%([\s\S]?)/g;
	return text.replaceAll(pattern, (match, name?: string, close?: string, token?: string) => {
		if (token === undefined) {
			if (close === undefined || !name)
				throw options.fail(`cannot read ${JSON.stringify(match)} (expected \${NAME})`);
			const value = env[name];
			if (value === undefined) throw options.fail(`\${${name}} is not set`);
			return value;
		}

		if (token === '%') return '%';
		const value = values[token];
		if (value === undefined)
			throw options.fail(
				token === ''
					? `a lone % at the end (write %% for a %)`
					: `unknown token %${token} (it takes ${takes()})`,
			);
		return value;
	});
}

function expandTilde(path: string, home: string): string {
	return path === '~' || path.startsWith('~/') ? home + path.slice(1) : path;
}
