/**
 * Reads what `~/.ssh/config` says about the relay alias: HostName, User, Port, IdentityFile,
 * following `Include` like ssh's readconf.c. The ssh-config package only parses; we evaluate,
 * because its `compute()` runs `Match exec` commands by default. `Match exec` (and every Match
 * criterion we cannot evaluate without side effects) is treated as not matching: reading a
 * config must never run a command.
 */
import {readdirSync, readFileSync} from 'node:fs';
import {isAbsolute, join} from 'node:path';
import SSHConfig, {type Line} from 'ssh-config';

/** What the ssh config gives for one host. Null where it says nothing. */
export type SshHostConfig = {
	readonly hostName: string | null;
	readonly user: string | null;
	readonly port: string | null;
	/** In file order, `~` and `%` tokens expanded. */
	readonly identityFiles: string[];
};

export type SshConfigOptions = {
	readonly home: string;
	readonly localUser: string;
	/** Defaults to `<home>/.ssh/config`. */
	readonly path?: string;
};

/** Raised for an ssh config that cannot be read or parsed; resolve.ts turns it into a ConfigError. */
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
};

/**
 * Evaluates the user's ssh config for `host` (the name typed, e.g. `relay`). A missing config
 * file gives nothing; an unreadable or unparsable one throws SshConfigError.
 */
export function lookupSshHost(host: string, options: SshConfigOptions): SshHostConfig {
	const path = options.path ?? join(options.home, '.ssh', 'config');
	const state: State = {hostName: null, user: null, port: null, identityFiles: []};
	const context: Context = {host, options, state, sshDir: join(options.home, '.ssh')};
	readFile(path, true, 0, context, false);
	const remoteUser = state.user ?? options.localUser;
	const hostName = state.hostName
		? expandTokens(state.hostName, host, host, remoteUser, options)
		: null;
	const effectiveHost = hostName ?? host;
	return {
		hostName,
		user: state.user,
		port: state.port,
		identityFiles: state.identityFiles.map((file) =>
			expandTokens(file, effectiveHost, host, remoteUser, options),
		),
	};
}

type Context = {
	readonly host: string;
	readonly options: SshConfigOptions;
	readonly state: State;
	readonly sshDir: string;
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

	evaluate(parsed, active, depth, context);
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
		if (criterion === 'host') subject = state.hostName ?? host;
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

function expandTokens(
	text: string,
	hostName: string,
	originalHost: string,
	remoteUser: string,
	options: SshConfigOptions,
): string {
	let result = text;
	if (result === '~' || result.startsWith('~/')) result = options.home + result.slice(1);
	return result.replaceAll(/%([%dhnru])/g, (_match, token: string) => {
		switch (token) {
			case 'd':
				return options.home;
			case 'h':
				return hostName;
			case 'n':
				return originalHost;
			case 'r':
				return remoteUser;
			case 'u':
				return options.localUser;
			default:
				return '%';
		}
	});
}
