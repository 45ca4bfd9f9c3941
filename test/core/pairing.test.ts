/**
 * The pairing string: what `gpujup host --pair` prints and `gpujup pair` reads. Fingerprints come
 * from real keys and are checked against what `ssh-keygen -lf` prints.
 */
import {execFileSync} from 'node:child_process';
import {mkdtempSync, readFileSync, rmSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {parse as parseToml} from 'smol-toml';
import {afterAll, beforeAll, describe, expect, test} from 'vitest';
import {fingerprintSha256} from '../../source/core/known-hosts.js';
import {
	formatPairing,
	isSha256Fingerprint,
	PairingError,
	pairingProfileToml,
	parsePairing,
	type Pairing,
} from '../../source/core/pairing.js';

let dir = '';
/** `ssh-keygen -lf` of two fresh keys, and our own fingerprints of the same blobs. */
const keys: Array<{keygen: string; ours: string}> = [];

beforeAll(() => {
	dir = mkdtempSync(join(tmpdir(), 'gpujup-pairing-'));
	for (const [name, type] of [
		['a', 'ed25519'],
		['b', 'ecdsa'],
	] as const) {
		const path = join(dir, name);
		execFileSync('ssh-keygen', ['-q', '-t', type, '-N', '', '-f', path]);
		const keygen = execFileSync('ssh-keygen', ['-lf', `${path}.pub`], {encoding: 'utf8'}).split(
			' ',
		)[1]!;
		const blob = Buffer.from(readFileSync(`${path}.pub`, 'utf8').split(' ')[1]!, 'base64');
		keys.push({keygen, ours: fingerprintSha256(blob)});
	}
});

afterAll(() => {
	rmSync(dir, {recursive: true, force: true});
});

const sample = (): Pairing => ({
	relay: {user: 'me', host: 'relay.example.org', port: 2222},
	relayPort: 19506,
	hostUser: 'p507user',
	jupyterPort: 19508,
	relayKey: keys[0]!.keygen,
	hostKey: keys[1]!.keygen,
});

describe('pairing string', () => {
	test('fingerprints are what ssh-keygen -lf prints', () => {
		for (const key of keys) {
			expect(key.ours).toBe(key.keygen);
			expect(isSha256Fingerprint(key.keygen)).toBe(true);
		}

		expect(isSha256Fingerprint('SHA256:short')).toBe(false);
		expect(isSha256Fingerprint(`MD5:${keys[0]!.keygen.slice(7)}`)).toBe(false);
		expect(isSha256Fingerprint(`${keys[0]!.keygen}=`)).toBe(false);
	});

	test('formats as the SPEC writes it and parses back', () => {
		const pairing = sample();
		const text = formatPairing(pairing);
		expect(text).toBe(
			`gpujup://me@relay.example.org:2222?relay-port=19506&host-user=p507user&jupyter-port=19508&relay-key=${pairing.relayKey}&host-key=${pairing.hostKey}`,
		);
		expect(parsePairing(text)).toEqual(pairing);
		// Whitespace around it (a pasted line) is fine.
		expect(parsePairing(`  ${text}\n`)).toEqual(pairing);
	});

	test('port 22 and no user are left out; IPv6 is bracketed; all round-trip', () => {
		const variants: Pairing[] = [
			{...sample(), relay: {user: null, host: 'relay', port: 22}},
			{...sample(), relay: {user: 'me', host: '2001:db8::1', port: 22}},
			{...sample(), relay: {user: null, host: '::1', port: 40_001}},
		];
		expect(formatPairing(variants[0]!)).toMatch(/^gpujup:\/\/relay\?relay-port=/);
		expect(formatPairing(variants[1]!)).toMatch(/^gpujup:\/\/me@\[2001:db8::1\]\?/);
		expect(formatPairing(variants[2]!)).toMatch(/^gpujup:\/\/\[::1\]:40001\?/);
		for (const pairing of variants) expect(parsePairing(formatPairing(pairing))).toEqual(pairing);
	});

	test('a + in a fingerprint is a +, never a space; %-escapes are decoded', () => {
		const key = `SHA256:${'a+b/'.repeat(10)}xyz`;
		const pairing = {...sample(), relayKey: key, hostKey: key};
		expect(parsePairing(formatPairing(pairing)).relayKey).toBe(key);
		const escaped = formatPairing(pairing).replace(
			'relay-key=SHA256:a+b/',
			'relay-key=SHA256:a%2Bb%2F',
		);
		expect(parsePairing(escaped).relayKey).toBe(key);
	});

	const bad = (text: string) => {
		try {
			parsePairing(text);
		} catch (error) {
			expect(error).toBeInstanceOf(PairingError);
			return (error as Error).message;
		}

		throw new Error(`accepted: ${text}`);
	};

	test('a bad string says what is wrong with it', () => {
		const good = formatPairing(sample());
		expect(bad('https://relay/?x=1')).toMatch(/starts with gpujup:\/\//);
		expect(bad('gpujup://relay.example.org')).toMatch(/quote it in the shell/);
		// What a shell leaves of an unquoted string: everything up to the first &.
		expect(bad(good.slice(0, good.indexOf('&')))).toMatch(
			/missing host-user, jupyter-port, relay-key, host-key .*quote it/i,
		);
		expect(bad(good.replace('relay-port=19506', 'relay-port=70000'))).toMatch(
			/relay-port: expected a port 1-65535, got "70000"/,
		);
		expect(bad(good.replace(':2222?', ':x?'))).toMatch(/relay port: expected a port/);
		expect(bad(good.replace('host-key=SHA256:', 'host-key=MD5:'))).toMatch(
			/host-key: expected a SHA256 fingerprint/,
		);
		expect(bad(good.replace(keys[0]!.keygen, keys[0]!.keygen.slice(0, -2)))).toMatch(
			/relay-key: expected a SHA256 fingerprint/,
		);
		expect(bad(`${good}&name=p507`)).toMatch(/unknown parameter "name"/);
		expect(bad(`${good}&relay-port=1`)).toMatch(/relay-port is given more than once/);
		expect(bad(good.replace('host-user=p507user', 'host-user='))).toMatch(
			/host-user: expected a user/,
		);
		expect(bad(good.replace('host-user=p507user', 'host-user=a%20b'))).toMatch(/host-user/);
		expect(bad(good.replace('host-user=p507user', 'host-user=%E0%A4%A'))).toMatch(/bad %-escape/);
		expect(bad('gpujup://?relay-port=1')).toMatch(/host is missing/);
		expect(bad('gpujup://[nothex]:22?relay-port=1')).toMatch(/\[IPv6\]:port/);
	});

	test('the profile table is valid TOML with the relay, ports, user and both pins', () => {
		const pairing = sample();
		const text = pairingProfileToml('my box', pairing, new Date('2026-12-02T06:00:00Z'));
		expect(text).toContain('[profiles."my box"]');
		expect(parseToml(text)).toEqual({
			profiles: {
				'my box': {
					relay: 'me@relay.example.org:2222',
					'relay-port': 19506,
					'host-user': 'p507user',
					'jupyter-port': 19508,
					'relay-key': pairing.relayKey,
					'host-key': pairing.hostKey,
				},
			},
		});
		expect(pairingProfileToml('p507', pairing, new Date())).toContain('[profiles.p507]\n');
	});
});
