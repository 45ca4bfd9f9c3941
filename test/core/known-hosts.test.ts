/**
 * known_hosts matching checked against what the real OpenSSH tools produce and decide:
 * keys from `ssh-keygen`, hashed copies from `ssh-keygen -H`, lookups compared with
 * `ssh-keygen -F`, fingerprints with `ssh-keygen -l -E sha256`.
 */
import {type ChildProcess, execFileSync, spawn, spawnSync} from 'node:child_process';
import {mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs';
import {connect, createServer} from 'node:net';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, test} from 'vitest';
import {
	checkHostKey,
	findHostEntries,
	fingerprintSha256,
	hostPatternFor,
	keyTypeOf,
	knownKeyTypes,
	parseKnownHosts,
} from '../../source/core/known-hosts.js';

type Key = {type: string; base64: string; pubPath: string};

let dir = '';
const keys: Record<string, Key> = {};

function generate(name: string, type: 'ed25519' | 'rsa' | 'ecdsa'): Key {
	const path = join(dir, name);
	const extra = type === 'rsa' ? ['-b', '2048'] : [];
	execFileSync('ssh-keygen', ['-q', '-t', type, ...extra, '-N', '', '-C', name, '-f', path]);
	const [keyType = '', base64 = ''] = readFileSync(`${path}.pub`, 'utf8').trim().split(' ');
	return {type: keyType, base64, pubPath: `${path}.pub`};
}

function line(hosts: string, key: Key, marker = ''): string {
	return `${marker ? `${marker} ` : ''}${hosts} ${key.type} ${key.base64}`;
}

function writeHosts(name: string, lines: string[], hashed = false): string {
	const path = join(dir, name);
	writeFileSync(path, `${lines.join('\n')}\n`);
	if (hashed) {
		execFileSync('ssh-keygen', ['-H', '-f', path], {stdio: 'ignore'});
		rmSync(`${path}.old`, {force: true});
	}

	return path;
}

/** The line numbers `ssh-keygen -F name -f file` reports, the oracle for host matching. */
function sshKeygenLines(path: string, name: string): number[] {
	const result = spawnSync('ssh-keygen', ['-F', name, '-f', path], {encoding: 'utf8'});
	return [...result.stdout.matchAll(/^# Host .* found: line (\d+)/gm)].map((match) =>
		Number(match[1]),
	);
}

function ourLines(path: string, name: string): number[] {
	const entries = parseKnownHosts(readFileSync(path, 'utf8'));
	return findHostEntries(entries, [name]).map((entry) => entry.line);
}

beforeAll(() => {
	dir = mkdtempSync(join(tmpdir(), 'gpujup-kh-'));
	keys.ed = generate('ed', 'ed25519');
	keys.ed2 = generate('ed2', 'ed25519');
	keys.rsa = generate('rsa', 'rsa');
	keys.ecdsa = generate('ecdsa', 'ecdsa');
});

afterAll(() => {
	rmSync(dir, {recursive: true, force: true});
});

function k(name: string): Key {
	const key = keys[name];
	if (!key) throw new Error(`no key ${name}`);
	return key;
}

describe('matching agrees with ssh-keygen -F', () => {
	const names = [
		'relay.example.org',
		'RELAY.example.org',
		'other.example.org',
		'bad.example.org',
		'[localhost]:19506',
		'[127.0.0.1]:19506',
		'localhost',
		'[localhost]:2222',
		'10.0.0.7',
		'10.0.0.77',
		'gpu-a1',
		'gpu-a12',
		'nomatch',
	];

	function fileLines(withGarbage: boolean): string[] {
		return [
			'# a comment, then a blank line',
			'',
			line('relay.example.org,10.0.0.7', k('ed')),
			line('*.example.org,!bad.example.org', k('rsa')),
			line('[localhost]:19506,[127.0.0.1]:19506', k('ecdsa')),
			line('localhost', k('ed2')),
			line('gpu-a?', k('ed')),
			line('[localhost]:*', k('rsa'), '@revoked'),
			line('*', k('ed2'), '@cert-authority'),
			// ssh-keygen -H refuses to hash a file with a broken line, so only the plain one has it.
			withGarbage ? 'garbage line without a key' : '# placeholder',
			line('10.0.0.7*', k('ecdsa')),
		];
	}

	test('plain file', () => {
		const path = writeHosts('plain', fileLines(true));
		for (const name of names) {
			expect({name, lines: ourLines(path, name)}).toEqual({
				name,
				lines: sshKeygenLines(path, name),
			});
		}

		// The oracle must actually find things, or the comparison proves nothing (line 9 is the
		// @cert-authority line, which ssh-keygen -F lists too).
		expect(sshKeygenLines(path, 'relay.example.org')).toEqual([3, 4, 9]);
		expect(sshKeygenLines(path, 'bad.example.org')).toEqual([9]);
	});

	test('hashed copy made by ssh-keygen -H', () => {
		const path = writeHosts('hashed', fileLines(false), true);
		const text = readFileSync(path, 'utf8');
		expect(text).toMatch(/^\|1\|/m);
		expect(text).not.toContain('relay.example.org');
		for (const name of names) {
			// ssh lowercases a name before it hashes it; ssh-keygen -F takes it as typed.
			expect({name, lines: ourLines(path, name)}).toEqual({
				name,
				lines: sshKeygenLines(path, name.toLowerCase()),
			});
		}

		expect(sshKeygenLines(path, '[127.0.0.1]:19506').length).toBeGreaterThan(0);
	});

	test('names are lowercased before lookup, as ssh does (ssh-keygen -F itself does not)', () => {
		const path = writeHosts('hashed-case', fileLines(false), true);
		for (const name of ['[LOCALHOST]:19506', 'Relay.Example.ORG', 'LocalHost', 'GPU-A1']) {
			const lower = name.toLowerCase();
			expect({name, lines: ourLines(path, name)}).toEqual({
				name,
				lines: sshKeygenLines(path, lower),
			});
			expect(sshKeygenLines(path, lower).length, lower).toBeGreaterThan(0);
		}

		// The name a new key is recorded under is lowercased too.
		expect(hostPatternFor('LOCALHOST', 19506)).toBe('[localhost]:19506');
		expect(hostPatternFor('Relay.Example.ORG', 22)).toBe('relay.example.org');
	});
});

describe('checkHostKey', () => {
	test('ok, unknown type, changed, for plain and hashed entries', () => {
		for (const hashed of [false, true]) {
			const path = writeHosts(`check-${hashed}`, [line('[localhost]:19506', k('ed'))], hashed);
			const entries = parseKnownHosts(readFileSync(path, 'utf8'));
			const names = ['[localhost]:19506', '[127.0.0.1]:19506'];
			expect(checkHostKey(entries, names, k('ed').type, k('ed').base64)).toEqual({
				status: 'ok',
			});
			// Another type than the one recorded is a change too: the real client says so (below).
			expect(checkHostKey(entries, names, k('rsa').type, k('rsa').base64)).toMatchObject({
				status: 'changed',
				lines: [1],
			});
			const changed = checkHostKey(entries, names, k('ed2').type, k('ed2').base64);
			const known = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', k('ed').pubPath], {
				encoding: 'utf8',
			}).split(' ')[1];
			expect(changed).toEqual({status: 'changed', knownFingerprints: [known], lines: [1]});
			expect(checkHostKey(entries, ['[localhost]:2222'], k('ed').type, k('ed').base64)).toEqual({
				status: 'unknown',
			});
		}
	});

	test('@revoked wins over a line that lists the same key', () => {
		const path = writeHosts('revoked', [
			line('relay.example.org', k('rsa')),
			line('*', k('rsa'), '@revoked'),
		]);
		const entries = parseKnownHosts(readFileSync(path, 'utf8'));
		expect(checkHostKey(entries, ['relay.example.org'], k('rsa').type, k('rsa').base64)).toEqual({
			status: 'revoked',
			line: 2,
		});
		// Revocation is per key: another key for the host stays usable.
		expect(knownKeyTypes(entries, ['relay.example.org'])).toEqual(['ssh-rsa']);
	});

	test('a negated pattern excludes the line, wildcards match', () => {
		const path = writeHosts('neg', [line('*.example.org,!bad.example.org', k('ed'))]);
		const entries = parseKnownHosts(readFileSync(path, 'utf8'));
		expect(checkHostKey(entries, ['good.example.org'], k('ed').type, k('ed').base64)).toEqual({
			status: 'ok',
		});
		expect(checkHostKey(entries, ['bad.example.org'], k('ed').type, k('ed').base64)).toEqual({
			status: 'unknown',
		});
	});

	test('@cert-authority lines are never taken as host keys', () => {
		const entries = parseKnownHosts(line('*', k('ed'), '@cert-authority'));
		expect(entries).toHaveLength(1);
		expect(checkHostKey(entries, ['relay'], k('ed').type, k('ed').base64)).toEqual({
			status: 'unknown',
		});
		expect(knownKeyTypes(entries, ['relay'])).toEqual([]);
	});

	test('changed lists every conflicting line', () => {
		const entries = parseKnownHosts(
			[line('relay', k('ed')), line('relay', k('ecdsa')), line('relay,other', k('ed'))].join('\n'),
		);
		const verdict = checkHostKey(entries, ['relay'], k('ed2').type, k('ed2').base64);
		expect(verdict).toEqual({
			status: 'changed',
			knownFingerprints: [
				fingerprintSha256(Buffer.from(k('ed').base64, 'base64')),
				fingerprintSha256(Buffer.from(k('ecdsa').base64, 'base64')),
			],
			lines: [1, 2, 3],
		});
		// One matching key among others is enough.
		expect(checkHostKey(entries, ['relay'], k('ecdsa').type, k('ecdsa').base64)).toEqual({
			status: 'ok',
		});
	});
});

describe('helpers', () => {
	test('knownKeyTypes in file order without repeats', () => {
		const entries = parseKnownHosts(
			[
				line('[localhost]:19506', k('rsa')),
				line('[127.0.0.1]:19506', k('ecdsa')),
				line('[localhost]:19506', k('rsa')),
				line('elsewhere', k('ed')),
			].join('\n'),
		);
		expect(knownKeyTypes(entries, ['[localhost]:19506', '[127.0.0.1]:19506'])).toEqual([
			'ssh-rsa',
			'ecdsa-sha2-nistp256',
		]);
	});

	test('fingerprintSha256 equals ssh-keygen -l -E sha256, keyTypeOf reads the blob', () => {
		for (const name of ['ed', 'rsa', 'ecdsa']) {
			const key = k(name);
			const expected = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', key.pubPath], {
				encoding: 'utf8',
			}).split(' ')[1];
			const blob = Buffer.from(key.base64, 'base64');
			expect(fingerprintSha256(blob)).toBe(expected);
			expect(keyTypeOf(blob)).toBe(key.type);
		}

		expect(() => keyTypeOf(Buffer.from([0, 0]))).toThrow(/malformed/);
	});

	test('hostPatternFor', () => {
		expect(hostPatternFor('relay.example.org', 22)).toBe('relay.example.org');
		expect(hostPatternFor('localhost', 19506)).toBe('[localhost]:19506');
		expect(hostPatternFor('::1', 2222)).toBe('[::1]:2222');
		expect(hostPatternFor('[::1]', 22)).toBe('::1');
	});

	test('malformed lines are skipped, the rest still parse', () => {
		const entries = parseKnownHosts(
			[
				'@bogus relay ssh-ed25519 AAAA',
				'relay ssh-ed25519 not*base64',
				`relay ssh-rsa ${k('ed').base64}`,
				'|1|short|hash ssh-ed25519 AAAA',
				line('relay', k('ed')),
			].join('\r\n'),
		);
		expect(entries.map((entry) => entry.line)).toEqual([5]);
	});
});

describe('verdicts agree with the real ssh client against a real sshd', () => {
	let sshd: ChildProcess | null = null;
	let port = 0;
	let serverKey: Key = {type: '', base64: '', pubPath: ''};

	beforeAll(async () => {
		mkdirSync('/run/sshd', {recursive: true});
		const hostKeyPath = join(dir, 'sshd-host-key');
		execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKeyPath]);
		const [type = '', base64 = ''] = readFileSync(`${hostKeyPath}.pub`, 'utf8').split(' ');
		serverKey = {type, base64, pubPath: `${hostKeyPath}.pub`};
		port = await freePort();
		const configPath = join(dir, 'sshd_config');
		writeFileSync(
			configPath,
			[
				`Port ${port}`,
				'ListenAddress 127.0.0.1',
				`HostKey ${hostKeyPath}`,
				'PidFile none',
				'StrictModes no',
				'UsePAM no',
				'PasswordAuthentication no',
				'KbdInteractiveAuthentication no',
				'AuthorizedKeysFile none',
				'',
			].join('\n'),
		);
		sshd = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', configPath], {stdio: 'ignore'});
		await waitForBanner(port, 30_000);
	});

	afterAll(() => {
		sshd?.kill();
	});

	/** What OpenSSH decides, read from its messages (auth failing means the key was accepted). */
	function sshVerdict(knownHostsPath: string, host = 'localhost'): string {
		const result = spawnSync(
			'ssh',
			[
				'-F',
				'/dev/null',
				'-o',
				'BatchMode=yes',
				'-o',
				`UserKnownHostsFile=${knownHostsPath}`,
				'-o',
				'GlobalKnownHostsFile=/dev/null',
				'-o',
				'StrictHostKeyChecking=yes',
				'-o',
				'CheckHostIP=no',
				'-o',
				'HostKeyAlgorithms=ssh-ed25519',
				'-p',
				String(port),
				host,
				'true',
			],
			{encoding: 'utf8', timeout: 30_000},
		);
		const output = result.stderr;
		if (/is marked as revoked/.test(output)) return 'revoked';
		if (/REMOTE HOST IDENTIFICATION HAS CHANGED/.test(output)) return 'changed';
		if (/host key is known for/.test(output)) return 'unknown';
		if (/Permission denied/.test(output)) return 'ok';
		return `unexpected: ${output}`;
	}

	test('plain, hashed, wildcard, negated, other type, changed, revoked, CA', () => {
		const name = `[localhost]:${port}`;
		const server = (hosts: string, marker = ''): string => line(hosts, serverKey, marker);
		const cases: Array<{
			label: string;
			lines: string[];
			hashed?: boolean;
			expected: string;
			host?: string;
		}> = [
			{label: 'empty', lines: [], expected: 'unknown'},
			{label: 'plain', lines: [server(name)], expected: 'ok'},
			{label: 'hashed', lines: [server(name)], hashed: true, expected: 'ok'},
			{label: 'wildcard', lines: [server('[localhost]:*')], expected: 'ok'},
			{
				label: 'negated',
				lines: [server(`[localhost]:*,!${name}`)],
				expected: 'unknown',
			},
			// Not what one might guess: OpenSSH refuses a key of a type the host was not known by.
			{label: 'other type only', lines: [line(name, k('rsa'))], expected: 'changed'},
			{label: 'changed', lines: [line(name, k('ed'))], expected: 'changed'},
			{label: 'changed hashed', lines: [line(name, k('ed'))], hashed: true, expected: 'changed'},
			{
				label: 'changed then ok',
				lines: [line(name, k('ed')), server(name)],
				expected: 'ok',
			},
			{
				label: 'revoked',
				lines: [server(name), server('*', '@revoked')],
				expected: 'revoked',
			},
			{label: 'CA line', lines: [server('*', '@cert-authority')], expected: 'unknown'},
			// `ssh LOCALHOST` looks up the lowercased name, hashed entries included.
			{
				label: 'hashed, upper case',
				lines: [server(name)],
				hashed: true,
				expected: 'ok',
				host: 'LOCALHOST',
			},
			{
				label: 'changed hashed, upper case',
				lines: [line(name, k('ed'))],
				hashed: true,
				expected: 'changed',
				host: 'LocalHost',
			},
		];
		for (const [index, {label, lines, hashed, expected, host}] of cases.entries()) {
			const path = writeHosts(`ssh-${index}`, lines.length > 0 ? lines : ['# empty'], hashed);
			const entries = parseKnownHosts(readFileSync(path, 'utf8'));
			const ourVerdict = checkHostKey(
				entries,
				// Not through hostPatternFor (which lowercases): the lookup itself must.
				[host ? `[${host}]:${port}` : name],
				serverKey.type,
				serverKey.base64,
			).status;
			expect({label, verdict: sshVerdict(path, host)}).toEqual({label, verdict: expected});
			expect({label, verdict: ourVerdict}).toEqual({label, verdict: expected});
		}
	});
});

async function freePort(): Promise<number> {
	return new Promise((resolve, reject) => {
		const server = createServer();
		server.once('error', reject);
		server.listen(0, '127.0.0.1', () => {
			const address = server.address();
			const chosen = typeof address === 'object' && address ? address.port : 0;
			server.close(() => resolve(chosen));
		});
	});
}

/** Polls until sshd answers with its SSH banner. */
async function waitForBanner(port: number, deadlineMs: number): Promise<void> {
	const deadline = Date.now() + deadlineMs;
	while (Date.now() < deadline) {
		const banner = await new Promise<string>((resolve) => {
			const socket = connect(port, '127.0.0.1');
			let data = '';
			socket.setTimeout(2000, () => socket.destroy());
			socket.on('data', (chunk) => {
				data += chunk.toString('latin1');
				if (data.includes('\n')) socket.destroy();
			});
			socket.on('error', () => undefined);
			socket.on('close', () => resolve(data));
		});
		if (banner.startsWith('SSH-2.0-')) return;
		await new Promise((resolve) => setTimeout(resolve, 100));
	}

	throw new Error(`sshd did not answer on 127.0.0.1:${port}`);
}
