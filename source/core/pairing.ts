/**
 * The pairing string `gpujup host --pair` prints and `gpujup pair` reads (SPEC "Chains, pairing,
 * fleet"):
 *
 *   gpujup://[user@]relay[:port]?relay-port=N&host-user=NAME&jupyter-port=N&relay-key=SHA256:…&host-key=SHA256:…
 *
 * Fingerprints are written as `ssh-keygen -lf` prints them (`SHA256:` and unpadded base64, whose
 * `+` and `/` stay as they are: a `+` here is never a space). It holds no secret. Pure.
 */

/** What a laptop needs to reach a GPU host and trust both keys on the way. */
export type Pairing = {
	readonly relay: {readonly user: string | null; readonly host: string; readonly port: number};
	readonly relayPort: number;
	readonly hostUser: string;
	readonly jupyterPort: number;
	/** The relay's host key, `SHA256:…`. */
	readonly relayKey: string;
	/** The GPU host's sshd key as seen through the relay, `SHA256:…`. */
	readonly hostKey: string;
};

/** A string that is not a pairing string; the message says what is wrong with it. */
export class PairingError extends Error {
	constructor(message: string) {
		super(message);
		this.name = 'PairingError';
	}
}

export const pairingScheme = 'gpujup://';

/** `SHA256:` and 43 base64 characters: a SHA-256 digest as ssh prints it, without padding. */
const fingerprintPattern = /^SHA256:[A-Za-z\d+/]{43}$/;

/** Whether `text` is a SHA256 fingerprint as `ssh-keygen -l` prints it. */
export function isSha256Fingerprint(text: string): boolean {
	return fingerprintPattern.test(text);
}

const parameters = ['relay-port', 'host-user', 'jupyter-port', 'relay-key', 'host-key'] as const;
type Parameter = (typeof parameters)[number];

/** A user or host name in the string: printable, no separators of the URL around it. */
const namePattern = /^[^\s@:/?#&=[\]%\p{Cc}]+$/u;

/** The string for `pairing`; round-trips through {@link parsePairing}. */
export function formatPairing(pairing: Pairing): string {
	const {relay} = pairing;
	const host = relay.host.includes(':') ? `[${relay.host}]` : relay.host;
	const user = relay.user === null ? '' : `${encodeURIComponent(relay.user)}@`;
	const port = relay.port === 22 ? '' : `:${relay.port}`;
	const query = [
		`relay-port=${pairing.relayPort}`,
		`host-user=${encodeURIComponent(pairing.hostUser)}`,
		`jupyter-port=${pairing.jupyterPort}`,
		`relay-key=${pairing.relayKey}`,
		`host-key=${pairing.hostKey}`,
	].join('&');
	return `${pairingScheme}${user}${host}${port}?${query}`;
}

function port(text: string, what: string): number {
	if (!/^\d{1,5}$/.test(text) || Number(text) < 1 || Number(text) > 65_535)
		throw new PairingError(`${what}: expected a port 1-65535, got ${JSON.stringify(text)}`);
	return Number(text);
}

function decode(text: string, what: string): string {
	try {
		return decodeURIComponent(text);
	} catch {
		throw new PairingError(`${what}: bad %-escape in ${JSON.stringify(text)}`);
	}
}

function name(text: string, what: string): string {
	const value = decode(text, what);
	if (!namePattern.test(value))
		throw new PairingError(`${what}: expected a user or host name, got ${JSON.stringify(value)}`);
	return value;
}

function authority(text: string): Pairing['relay'] {
	const at = text.lastIndexOf('@');
	const user = at === -1 ? null : name(text.slice(0, at), 'relay user');
	const rest = at === -1 ? text : text.slice(at + 1);
	let host: string;
	let portText: string | null = null;
	if (rest.startsWith('[')) {
		const match = /^\[([\da-fA-F:.]+)\](?::(.*))?$/.exec(rest);
		if (!match?.[1]?.includes(':'))
			throw new PairingError(`relay: expected [IPv6]:port, got ${JSON.stringify(rest)}`);
		host = match[1];
		portText = match[2] ?? null;
	} else {
		const colon = rest.indexOf(':');
		host = colon === -1 ? rest : rest.slice(0, colon);
		portText = colon === -1 ? null : rest.slice(colon + 1);
		if (host === '') throw new PairingError('relay: the host is missing after gpujup://');
		host = name(host, 'relay host');
	}

	return {user, host, port: portText === null ? 22 : port(portText, 'relay port')};
}

/**
 * Reads a pairing string (surrounding whitespace allowed); throws a PairingError naming the part
 * that is wrong: scheme, relay, a missing, repeated or unknown parameter, a bad port or key.
 */
export function parsePairing(input: string): Pairing {
	const text = input.trim();
	if (!text.startsWith(pairingScheme)) {
		const shown = text.length > 40 ? `${text.slice(0, 40)}…` : text;
		throw new PairingError(
			`expected a string that starts with ${pairingScheme}, as \`gpujup host --pair\` prints it, got ${JSON.stringify(shown)}`,
		);
	}

	const body = text.slice(pairingScheme.length);
	const question = body.indexOf('?');
	if (question === -1)
		throw new PairingError(
			'no parameters after the relay (?relay-port=…): the string was cut short — quote it in the shell, the & in it ends a command',
		);
	const relay = authority(body.slice(0, question).replace(/\/$/, ''));
	const values = new Map<Parameter, string>();
	for (const part of body.slice(question + 1).split('&')) {
		if (part === '') continue;
		const equals = part.indexOf('=');
		const key = equals === -1 ? part : part.slice(0, equals);
		if (!(parameters as readonly string[]).includes(key))
			throw new PairingError(
				`unknown parameter ${JSON.stringify(key)} (known: ${parameters.join(', ')})`,
			);
		if (values.has(key as Parameter))
			throw new PairingError(`parameter ${key} is given more than once`);
		values.set(key as Parameter, equals === -1 ? '' : part.slice(equals + 1));
	}

	const missing = parameters.filter((key) => !values.has(key));
	if (missing.length > 0)
		throw new PairingError(
			`missing ${missing.join(', ')}${missing.length < parameters.length ? ' — was the string cut short? Quote it in the shell: the & in it ends a command' : ''}`,
		);
	const get = (key: Parameter) => values.get(key) ?? '';
	const key = (param: 'relay-key' | 'host-key') => {
		const value = decode(get(param), param);
		if (!isSha256Fingerprint(value))
			throw new PairingError(
				`${param}: expected a SHA256 fingerprint as ssh-keygen -lf prints it (SHA256: and 43 characters), got ${JSON.stringify(value)}`,
			);
		return value;
	};

	return {
		relay,
		relayPort: port(get('relay-port'), 'relay-port'),
		hostUser: name(get('host-user'), 'host-user'),
		jupyterPort: port(get('jupyter-port'), 'jupyter-port'),
		relayKey: key('relay-key'),
		hostKey: key('host-key'),
	};
}

/** `user@host:port` (`[v6]:port`), as `relay = "…"` in config.toml takes it. */
export function pairingRelaySpec(relay: Pairing['relay']): string {
	const host = relay.host.includes(':') ? `[${relay.host}]` : relay.host;
	const port = relay.port === 22 && !relay.host.includes(':') ? '' : `:${relay.port}`;
	return `${relay.user === null ? '' : `${relay.user}@`}${host}${port}`;
}

/** A TOML key: bare when it may be, else a basic string. */
function tomlKey(key: string): string {
	return /^[A-Za-z\d_-]+$/.test(key) ? key : JSON.stringify(key);
}

/** `[profiles.p507]`, `[profiles."relay.example.org"]`: the table header as written. */
export function profileHeader(profile: string): string {
	return `[profiles.${tomlKey(profile)}]`;
}

/**
 * The `[profiles.NAME]` table `gpujup pair` appends to config.toml: the relay, the ports, the
 * GPU host's user and both pins. JSON string escapes are valid TOML basic strings.
 */
export function pairingProfileToml(profile: string, pairing: Pairing, pairedAt: Date): string {
	return [
		`# paired by \`gpujup pair\` on ${pairedAt.toISOString()}: both host keys are pinned`,
		profileHeader(profile),
		`relay = ${JSON.stringify(pairingRelaySpec(pairing.relay))}`,
		`relay-port = ${pairing.relayPort}`,
		`host-user = ${JSON.stringify(pairing.hostUser)}`,
		`jupyter-port = ${pairing.jupyterPort}`,
		`relay-key = ${JSON.stringify(pairing.relayKey)}`,
		`host-key = ${JSON.stringify(pairing.hostKey)}`,
		'',
	].join('\n');
}
