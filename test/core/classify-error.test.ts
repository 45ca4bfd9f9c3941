import {describe, expect, it} from 'vitest';
import {
	classifyError,
	HopError,
	isNetworkKind,
	isTerminal,
} from '../../source/core/classify-error.js';

const errno = (code: string, message = code) => Object.assign(new Error(message), {code});
const leveled = (level: string, message: string) => Object.assign(new Error(message), {level});
const ctx = {host: 'relay.example.org', port: 22};

describe('classifyError', () => {
	it.each([
		['ENOTFOUND', 'dns'],
		['EAI_AGAIN', 'dns'],
		['ECONNREFUSED', 'refused'],
		['ETIMEDOUT', 'timeout'],
		['EHOSTUNREACH', 'timeout'],
		['EADDRINUSE', 'port-in-use'],
		['ECONNRESET', 'closed'],
		['EPIPE', 'closed'],
	] as const)('maps errno %s to %s', (code, kind) => {
		expect(classifyError(errno(code), ctx).kind).toBe(kind);
	});

	it('says what to check when the relay refuses', () => {
		expect(classifyError(errno('ECONNREFUSED'), ctx)).toEqual({
			kind: 'refused',
			message:
				'connection refused by relay.example.org:22 — is sshd running there, and is the port right?',
		});
	});

	it('names the host on DNS failures', () => {
		expect(classifyError(errno('ENOTFOUND', 'getaddrinfo ENOTFOUND x'), ctx).message).toMatch(
			/cannot resolve relay\.example\.org/,
		);
	});

	it('maps ssh2 levels', () => {
		expect(
			classifyError(
				leveled('client-authentication', 'All configured authentication methods failed'),
				ctx,
			).kind,
		).toBe('auth');
		expect(classifyError(leveled('client-timeout', 'Keepalive timeout'), ctx).kind).toBe('timeout');
		expect(
			classifyError(leveled('client-timeout', 'Timed out while waiting for handshake'), ctx).kind,
		).toBe('timeout');
		expect(classifyError(leveled('handshake', 'Host denied (verification failed)'), ctx).kind).toBe(
			'host-key',
		);
		expect(
			classifyError(leveled('handshake', 'Handshake failed: no matching cipher'), ctx).kind,
		).toBe('protocol');
		expect(classifyError(leveled('protocol', 'Connection lost before handshake'), ctx).kind).toBe(
			'closed',
		);
	});

	it('maps channel open failures by reason code and words', () => {
		const prohibited = Object.assign(new Error('(SSH) Channel open failure: open failed'), {
			reason: 1,
		});
		expect(classifyError(prohibited, {host: 'localhost', port: 19506}).kind).toBe('forbidden');
		const textOnly = new Error('(SSH) Channel open failure: administratively prohibited');
		expect(classifyError(textOnly).kind).toBe('forbidden');
		const refused = Object.assign(new Error('(SSH) Channel open failure: Connection refused'), {
			reason: 2,
		});
		const classified = classifyError(refused, {host: 'localhost', port: 19506});
		expect(classified.kind).toBe('refused');
		expect(classified.message).toContain('localhost:19506');
	});

	it('maps SSH disconnect reasons', () => {
		expect(
			classifyError(Object.assign(new Error('Too many authentication failures'), {code: 2})).kind,
		).toBe('auth');
		expect(classifyError(Object.assign(new Error('bad packet'), {code: 2})).kind).toBe('protocol');
		expect(classifyError(Object.assign(new Error('x'), {code: 14})).kind).toBe('auth');
		expect(classifyError(Object.assign(new Error('bye'), {code: 11})).kind).toBe('closed');
	});

	it('maps ssh2 close echoes to closed', () => {
		expect(classifyError(new Error('No response from server')).kind).toBe('closed');
		expect(classifyError(new Error('Not connected')).kind).toBe('closed');
	});

	it('passes HopError and already classified errors through', () => {
		const classified = {kind: 'port-in-use', message: '127.0.0.1:19507 is already in use'} as const;
		expect(classifyError(new HopError(classified))).toBe(classified);
		const error = new HopError(classified, {cause: new Error('EADDRINUSE')});
		expect(error.message).toBe(classified.message);
		expect(error).toBeInstanceOf(Error);
		expect(classifyError(Object.assign(new Error('x'), {classified})).kind).toBe('port-in-use');
	});

	it('handles non-errors', () => {
		expect(classifyError('weird')).toEqual({kind: 'protocol', message: 'the server: weird'});
		expect(classifyError(undefined).kind).toBe('protocol');
	});
});

describe('isTerminal / isNetworkKind', () => {
	it('stops only on auth and host-key', () => {
		expect(isTerminal('auth')).toBe(true);
		expect(isTerminal('host-key')).toBe(true);
		for (const kind of [
			'dns',
			'refused',
			'timeout',
			'port-in-use',
			'forbidden',
			'protocol',
			'closed',
		] as const)
			expect(isTerminal(kind)).toBe(false);
	});

	it('lets the probe help only for network kinds', () => {
		expect(isNetworkKind('timeout')).toBe(true);
		expect(isNetworkKind('refused')).toBe(true);
		expect(isNetworkKind('protocol')).toBe(false);
		expect(isNetworkKind('auth')).toBe(false);
	});
});

describe('classifyError sanitises what the server said', () => {
	it('a DISCONNECT description with OSC 52 and CSI comes out as plain text', () => {
		const err = Object.assign(new Error('bye \u001B]52;c;ZXZpbA==\u0007\u001B[2J\u009B7777X now'), {
			code: 14,
		});
		const classified = classifyError(err, {host: 'relay', port: 22});
		expect(classified.kind).toBe('auth');
		expect(classified.message).toContain('bye  now');
		// eslint-disable-next-line no-control-regex
		expect(classified.message).not.toMatch(/[\u0000-\u001F\u007F-\u009F]|52;c;|7777X/);
	});

	it('a pre-classified error passes through, sanitised too', () => {
		const err = new HopError({kind: 'closed', message: 'gone \u001B]0;title\u0007 away'});
		expect(classifyError(err)).toEqual({kind: 'closed', message: 'gone  away'});
	});
});
