import {sanitizeLine} from './sanitize.js';
import type {ClassifiedError, ErrorKind} from './types.js';

/** The errno code (`ENOENT`, `ECONNREFUSED`…) an error carries, if any. */
export function errnoOf(error: unknown): string | undefined {
	const code = (error as {code?: unknown} | null | undefined)?.code;
	return typeof code === 'string' ? code : undefined;
}

/** Where the failing connection went, so messages can name it. */
export type ErrorContext = {
	readonly host?: string;
	readonly port?: number;
};

/**
 * An error that already carries its classification. Services throw it where they know better
 * than any heuristic (a refused host key, a busy local port); {@link classifyError} passes it
 * through untouched.
 */
export class HopError extends Error {
	readonly classified: ClassifiedError;

	constructor(classified: ClassifiedError, options?: {cause?: unknown}) {
		super(classified.message, options);
		this.name = 'HopError';
		this.classified = classified;
	}
}

/** Auth and host-key failures need the user: retrying cannot fix them and can lock accounts. */
export function isTerminal(kind: ErrorKind): boolean {
	return kind === 'auth' || kind === 'host-key';
}

/**
 * What a server said before its host key was verified, made retryable: a clear-text DISCONNECT
 * ("no more auth methods", "host key not verifiable") can come from anyone on the path, and
 * letting it stop the hop for good would hand them a kill switch.
 */
export function untrustedError(error: ClassifiedError): ClassifiedError {
	const cause = error.message.split(' — ')[0] ?? error.message;
	return {
		kind: 'protocol',
		message: `${cause} — said before the host key was verified, so not trusted; retrying`,
	};
}

/** Network failures that a TCP probe of the relay can see end (it answers again). */
export function isNetworkKind(kind: ErrorKind): boolean {
	return kind === 'dns' || kind === 'refused' || kind === 'timeout' || kind === 'closed';
}

type ErrorLike = {
	readonly message: string;
	readonly code?: unknown;
	readonly level?: unknown;
	readonly reason?: unknown;
	readonly classified?: unknown;
};

function asErrorLike(err: unknown): ErrorLike {
	if (typeof err === 'object' && err !== null) {
		const record = err as Record<string, unknown>;
		return {
			message: typeof record.message === 'string' ? record.message : String(err),
			code: record.code,
			level: record.level,
			reason: record.reason,
			classified: record.classified,
		};
	}
	return {message: String(err)};
}

function isClassified(value: unknown): value is ClassifiedError {
	if (typeof value !== 'object' || value === null) return false;
	const record = value as Record<string, unknown>;
	return typeof record.kind === 'string' && typeof record.message === 'string';
}

/** ssh2's numeric SSH_MSG_DISCONNECT reasons (RFC 4253 §11.1) that mean something to a user. */
const disconnectKinds: Readonly<Record<number, ErrorKind>> = {
	1: 'forbidden', // HOST_NOT_ALLOWED_TO_CONNECT
	2: 'protocol', // PROTOCOL_ERROR
	3: 'protocol', // KEY_EXCHANGE_FAILED
	5: 'protocol', // MAC_ERROR
	6: 'protocol', // COMPRESSION_ERROR
	7: 'protocol', // SERVICE_NOT_AVAILABLE
	8: 'protocol', // PROTOCOL_VERSION_NOT_SUPPORTED
	9: 'host-key', // HOST_KEY_NOT_VERIFIABLE
	10: 'closed', // CONNECTION_LOST
	11: 'closed', // BY_APPLICATION
	12: 'closed', // TOO_MANY_CONNECTIONS
	13: 'auth', // AUTH_CANCELLED_BY_USER
	14: 'auth', // NO_MORE_AUTH_METHODS_AVAILABLE
	15: 'auth', // ILLEGAL_USER_NAME
};

/**
 * Turn anything thrown or emitted by ssh2, node:net or dns into one of the SPEC's error kinds with
 * a message that names the cause and the fix. Call it once, where the error is first seen.
 */
export function classifyError(err: unknown, context: ErrorContext = {}): ClassifiedError {
	// The message is often the server's own text (a DISCONNECT description, even before the host
	// key is checked): it leaves here sanitised, whatever path made it.
	const classified = classifyRaw(err, context);
	const message = sanitizeLine(classified.message);
	return message === classified.message ? classified : {kind: classified.kind, message};
}

function classifyRaw(err: unknown, context: ErrorContext): ClassifiedError {
	if (err instanceof HopError) return err.classified;
	const e = asErrorLike(err);
	if (isClassified(e.classified)) return e.classified;

	const where =
		context.host === undefined
			? 'the server'
			: context.port === undefined
				? context.host
				: `${context.host}:${context.port}`;
	const hostOnly = context.host ?? 'the server';
	const make = (kind: ErrorKind, message: string): ClassifiedError => ({kind, message});
	const text = e.message;
	const lower = text.toLowerCase();

	switch (e.code) {
		case 'ENOTFOUND':
		case 'EAI_AGAIN':
		case 'EAI_NONAME':
		case 'EAI_FAIL':
		case 'EAI_NODATA': {
			return make(
				'dns',
				`cannot resolve ${hostOnly} (${String(e.code)}) — check the name, or your network and DNS`,
			);
		}
		case 'ECONNREFUSED': {
			return make(
				'refused',
				`connection refused by ${where} — is sshd running there, and is the port right?`,
			);
		}
		case 'ETIMEDOUT':
		case 'ESOCKETTIMEDOUT': {
			return make(
				'timeout',
				`connection to ${where} timed out — is the host up and reachable from this network?`,
			);
		}
		case 'EHOSTUNREACH':
		case 'ENETUNREACH':
		case 'ENETDOWN':
		case 'EHOSTDOWN': {
			return make(
				'timeout',
				`${where} is unreachable (${String(e.code)}) — check your network connection`,
			);
		}
		case 'EADDRINUSE': {
			return make(
				'port-in-use',
				`${where} is already in use — stop the program holding it or choose another port`,
			);
		}
		case 'EACCES':
		case 'EPERM': {
			return make('forbidden', `not allowed to use ${where} (${String(e.code)}): ${text}`);
		}
		case 'ECONNRESET':
		case 'EPIPE':
		case 'ECONNABORTED':
		case 'ERR_STREAM_DESTROYED':
		case 'ERR_STREAM_WRITE_AFTER_END': {
			return make(
				'closed',
				`connection to ${where} was closed (${String(e.code)}) — the network or the server dropped it`,
			);
		}
		default: {
			break;
		}
	}

	if (e.level === 'client-authentication' || e.level === 'agent') {
		return make(
			'auth',
			`authentication to ${where} failed: ${text} — check the user name, your keys (-i) and the server's authorized_keys`,
		);
	}
	if (e.level === 'client-timeout' || lower.includes('keepalive timeout')) {
		return lower.includes('keepalive')
			? make('timeout', `${where} stopped answering keepalives — the link is down`)
			: make(
					'timeout',
					`no SSH handshake from ${where} in time — is it an SSH server, and is the link up?`,
				);
	}
	if (e.level === 'client-dns') {
		return make('dns', `cannot resolve ${hostOnly} — check the name, or your network and DNS`);
	}
	if (lower.includes('host denied') || lower.includes('host key')) {
		return make(
			'host-key',
			`host key of ${where} was rejected — check known_hosts (ssh-keygen -R "${hostOnly}" if it changed on purpose)`,
		);
	}
	if (lower.includes('channel open failure')) {
		// RFC 4254 §5.1 reason codes; OpenSSH says "administratively prohibited: open failed" for
		// permitopen/AllowTcpForwarding denials and "connect failed" when nothing listens.
		if (
			e.reason === 1 ||
			lower.includes('administratively prohibited') ||
			/: open failed$/.test(lower)
		)
			return make(
				'forbidden',
				`${where} refused to open the forward (administratively prohibited) — the relay's sshd must allow TCP forwarding (AllowTcpForwarding, permitopen) to this port`,
			);
		if (e.reason === 2 || lower.includes('connect failed') || lower.includes('connection refused'))
			return make(
				'refused',
				`nothing answers at ${where} — is the reverse tunnel up (gpujup host on the GPU host)?`,
			);
		return make('closed', `${where}: ${text}`);
	}
	if (typeof e.code === 'number') {
		const kind = disconnectKinds[e.code];
		if (kind === 'auth' || lower.includes('authentication'))
			return make(
				'auth',
				`${where} ended authentication: ${text} — check the user name and your keys (-i)`,
			);
		if (kind !== undefined) return make(kind, `${where} disconnected: ${text}`);
	}
	if (lower.includes('authentication')) {
		return make(
			'auth',
			`authentication to ${where} failed: ${text} — check the user name and your keys (-i)`,
		);
	}
	if (lower.includes('lost before handshake')) {
		return make(
			'closed',
			`${where} closed the connection before the SSH handshake — is it an SSH server, and is the port right?`,
		);
	}
	if (
		lower.includes('no response from server') ||
		lower.includes('not connected') ||
		lower.includes('socket closed') ||
		lower.includes('closed')
	) {
		return make('closed', `connection to ${where} closed: ${text}`);
	}
	if (e.level === 'handshake' || e.level === 'protocol' || lower.includes('handshake')) {
		return make(
			'protocol',
			`SSH protocol error with ${where}: ${text} — the server may need newer algorithms or not speak SSH`,
		);
	}
	return make('protocol', `${where}: ${text}`);
}
