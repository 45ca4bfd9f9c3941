/**
 * known_hosts parsing and host key decisions, following OpenSSH's `hostfile.c` and `match.c`:
 * plain and comma-separated names, hashed `|1|salt|hmac` names, `[host]:port`, `*`/`?` wildcards,
 * `!` negation, `@revoked` and (ignored) `@cert-authority` markers. Pure: callers read the file.
 */
import {createHash, createHmac} from 'node:crypto';

/** How a line names its hosts. */
export type KnownHostsNames =
	| {readonly kind: 'patterns'; readonly patterns: readonly string[]}
	| {readonly kind: 'hashed'; readonly salt: Buffer; readonly hash: Buffer};

/** One usable line of a known_hosts file. */
export type KnownHostsEntry = {
	/** The file it was read from, when the caller said (several files are read together). */
	readonly file?: string;
	/** 1-based line number in the file, for messages like ssh's "Offending key in …:7". */
	readonly line: number;
	readonly marker: 'revoked' | 'cert-authority' | null;
	readonly names: KnownHostsNames;
	/** `ssh-ed25519`, `ssh-rsa`, `ecdsa-sha2-nistp256`, … as written on the line. */
	readonly keyType: string;
	readonly keyBase64: string;
	/** The decoded key blob, compared byte for byte (base64 spelling may differ). */
	readonly keyBlob: Buffer;
};

/** Files are set where the entries carry them: `files[i]` holds `lines[i]`. */
export type HostKeyVerdict =
	| {readonly status: 'ok'; readonly file?: string}
	| {readonly status: 'unknown'}
	| {
			readonly status: 'changed';
			readonly knownFingerprints: string[];
			readonly lines: number[];
			readonly files?: string[];
	  }
	| {readonly status: 'revoked'; readonly line: number; readonly file?: string};

const base64Pattern = /^[A-Za-z\d+/]+={0,2}$/;

/**
 * Parses known_hosts text. Comments, blank lines and malformed lines are skipped silently, as
 * OpenSSH does, so one bad line never hides the good ones.
 */
export function parseKnownHosts(text: string, file?: string): KnownHostsEntry[] {
	const entries: KnownHostsEntry[] = [];
	const lines = text.split(/\r?\n/);
	for (const [index, raw] of lines.entries()) {
		const entry = parseLine(raw, index + 1);
		if (entry) entries.push(file === undefined ? entry : {...entry, file});
	}

	return entries;
}

function parseLine(raw: string, line: number): KnownHostsEntry | null {
	const trimmed = raw.trim();
	if (trimmed === '' || trimmed.startsWith('#')) return null;
	const fields = trimmed.split(/[ \t]+/);
	let marker: KnownHostsEntry['marker'] = null;
	if (fields[0]?.startsWith('@')) {
		const word = fields.shift();
		if (word === '@revoked') marker = 'revoked';
		else if (word === '@cert-authority') marker = 'cert-authority';
		// An unknown marker makes OpenSSH skip the line; do the same rather than guess.
		else return null;
	}

	const [hostField, keyType, keyBase64] = fields;
	if (!hostField || !keyType || !keyBase64 || !base64Pattern.test(keyBase64)) return null;
	const keyBlob = Buffer.from(keyBase64, 'base64');
	// The type inside the blob must agree with the one written, or the line is corrupt.
	if (keyBlob.length === 0 || safeKeyTypeOf(keyBlob) !== keyType) return null;
	const names = parseNames(hostField);
	if (!names) return null;
	return {line, marker, names, keyType, keyBase64, keyBlob};
}

function parseNames(field: string): KnownHostsNames | null {
	if (field.startsWith('|1|')) {
		const parts = field.slice(3).split('|');
		if (parts.length !== 2 || !parts[0] || !parts[1]) return null;
		const salt = Buffer.from(parts[0], 'base64');
		const hash = Buffer.from(parts[1], 'base64');
		// HMAC-SHA1: 20-byte salt and digest, anything else is not something ssh wrote.
		if (salt.length !== 20 || hash.length !== 20) return null;
		return {kind: 'hashed', salt, hash};
	}

	// `|2|…` and other future hash formats are unsupported by OpenSSH too: skip them.
	if (field.startsWith('|')) return null;
	const patterns = field.split(',').filter((pattern) => pattern !== '');
	if (patterns.length === 0) return null;
	return {kind: 'patterns', patterns};
}

/**
 * The name ssh records a host under: `host` for port 22, `[host]:port` otherwise, lowercased
 * as ssh lowercases the host name (and HostKeyAlias) before any known_hosts lookup.
 */
export function hostPatternFor(host: string, port: number): string {
	const lower = host.toLowerCase();
	const bare = lower.startsWith('[') && lower.endsWith(']') ? lower.slice(1, -1) : lower;
	return port === 22 ? bare : `[${bare}]:${port}`;
}

/** OpenSSH's match_pattern: `*` any run, `?` one character, case-insensitive for host names. */
function matchPattern(name: string, pattern: string): boolean {
	let source = '^';
	for (const char of pattern) {
		if (char === '*') source += '.*';
		else if (char === '?') source += '.';
		else source += char.replace(/[\\^$.|+()[\]{}]/g, '\\$&');
	}

	return new RegExp(`${source}$`, 'is').test(name);
}

/** 1 for a match, -1 for a negated match (which excludes the whole line), 0 for none. */
function matchNames(names: KnownHostsNames, name: string): -1 | 0 | 1 {
	// ssh lowercases the name before it looks it up, so a hashed `localhost` entry also answers
	// `LOCALHOST` (the HMAC is of the lowercased name ssh recorded).
	const lower = name.toLowerCase();
	if (names.kind === 'hashed') {
		const digest = createHmac('sha1', names.salt).update(lower).digest();
		return digest.equals(names.hash) ? 1 : 0;
	}

	let result: 0 | 1 = 0;
	for (const pattern of names.patterns) {
		if (pattern.startsWith('!')) {
			if (matchPattern(lower, pattern.slice(1))) return -1;
		} else if (matchPattern(lower, pattern)) {
			result = 1;
		}
	}

	return result;
}

/**
 * Entries that apply to any of `names`, in file order (markers included), like `ssh-keygen -F`.
 */
export function findHostEntries(
	entries: readonly KnownHostsEntry[],
	names: readonly string[],
): KnownHostsEntry[] {
	return entries.filter((entry) => names.some((name) => matchNames(entry.names, name) === 1));
}

/**
 * Decides what to do with the key a server offered, as OpenSSH's hostfile.c
 * (check_hostkeys_by_key_or_type) does: a revoked key is refused whatever else lists it; a
 * matching key is ok; any other key recorded for the host, of any type, makes it `changed`
 * (verified against the real ssh client, which says "REMOTE HOST IDENTIFICATION HAS CHANGED"
 * when a host known by its RSA key shows an Ed25519 one: otherwise `accept-new` would let a
 * man in the middle in with a key of a new type); no key at all is `unknown`. Callers avoid
 * false alarms by offering knownKeyTypes() first, as ssh orders HostKeyAlgorithms.
 */
export function checkHostKey(
	entries: readonly KnownHostsEntry[],
	names: readonly string[],
	keyType: string,
	keyBase64: string,
): HostKeyVerdict {
	const offered = Buffer.from(keyBase64, 'base64');
	const matching = findHostEntries(entries, names);
	const revoked = matching.find(
		(entry) => entry.marker === 'revoked' && entry.keyBlob.equals(offered),
	);
	if (revoked) return {status: 'revoked', line: revoked.line, ...fileOf(revoked)};
	const plain = matching.filter((entry) => entry.marker === null);
	const found = plain.find((entry) => entry.keyType === keyType && entry.keyBlob.equals(offered));
	if (found) return {status: 'ok', ...fileOf(found)};
	if (plain.length === 0) return {status: 'unknown'};
	const files = plain.flatMap((entry) => (entry.file === undefined ? [] : [entry.file]));
	return {
		status: 'changed',
		knownFingerprints: [...new Set(plain.map((entry) => fingerprintSha256(entry.keyBlob)))],
		lines: plain.map((entry) => entry.line),
		...(files.length === plain.length ? {files} : {}),
	};
}

function fileOf(entry: KnownHostsEntry): {file?: string} {
	return entry.file === undefined ? {} : {file: entry.file};
}

/**
 * The host field ssh writes under `HashKnownHosts yes`: `|1|salt|HMAC-SHA1(salt, name)`, both
 * base64, of the lowercased name. `salt` is 20 random bytes (the caller draws them).
 */
export function hashHostName(name: string, salt: Buffer): string {
	const digest = createHmac('sha1', salt).update(name.toLowerCase()).digest();
	return `|1|${salt.toString('base64')}|${digest.toString('base64')}`;
}

/**
 * Key types recorded for the host (revoked and CA lines aside), in file order without repeats:
 * the algorithms to offer first so the server picks a key we can verify.
 */
export function knownKeyTypes(
	entries: readonly KnownHostsEntry[],
	names: readonly string[],
): string[] {
	const types = findHostEntries(entries, names)
		.filter((entry) => entry.marker === null)
		.map((entry) => entry.keyType);
	return [...new Set(types)];
}

/**
 * What ssh's confirm() makes of an answer to its unknown-key question: `yes` (any case) or the
 * key's exact fingerprint trusts it; `no` or nothing refuses; anything else (a lone `y`, another
 * fingerprint) is no answer, and the question is asked again.
 */
export function hostKeyAnswer(typed: string, fingerprint: string): boolean | null {
	const word = typed.trim();
	if (word === '' || word.toLowerCase() === 'no') return false;
	if (word.toLowerCase() === 'yes' || word === fingerprint) return true;
	return null;
}

/** `SHA256:…` without base64 padding, exactly as `ssh-keygen -l -E sha256` prints it. */
export function fingerprintSha256(keyBlob: Buffer): string {
	const digest = createHash('sha256').update(keyBlob).digest('base64');
	return `SHA256:${digest.replace(/=+$/, '')}`;
}

/** The key type string an SSH public key blob starts with (`ssh-ed25519`, …). */
export function keyTypeOf(keyBlob: Buffer): string {
	const type = safeKeyTypeOf(keyBlob);
	if (type === null) throw new Error('malformed SSH public key blob');
	return type;
}

function safeKeyTypeOf(keyBlob: Buffer): string | null {
	if (keyBlob.length < 4) return null;
	const length = keyBlob.readUInt32BE(0);
	if (length === 0 || length > 64 || keyBlob.length < 4 + length) return null;
	return keyBlob.subarray(4, 4 + length).toString('latin1');
}
