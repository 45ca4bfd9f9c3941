/**
 * The chain read from an ssh config, checked against OpenSSH itself: for each alias the test walks
 * the chain as ssh does, hop by hop: `ssh -G` for the hop's settings, and the real ssh dialling
 * it (helpers/openssh-dial.ts) for its identity files and its implicit `ssh -J rest -W host:port
 * last`, tokens expanded, which names the hop before it. Every hop's HostName, Port, User,
 * IdentityFile, HostKeyAlias and UserKnownHostsFile is compared with ours. No config here has
 * `Match exec` (ssh -G would run it).
 */
import {spawnSync} from 'node:child_process';
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs';
import {homedir, tmpdir, userInfo} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, test} from 'vitest';
import {parseJumpEntry, resolveSshChain} from '../../source/config/ssh-chain.js';
import {SshConfigError} from '../../source/config/ssh-config.js';
import {sshDial} from '../helpers/openssh-dial.js';

let dir = '';
// ssh expands ~ from the password database, so compare with the real home.
const home = homedir();
const localUser = userInfo().username;

beforeAll(() => {
	dir = mkdtempSync(join(tmpdir(), 'gpujup-sshchain-'));
});

afterAll(() => {
	rmSync(dir, {recursive: true, force: true});
});

type Hop = {
	name: string;
	hostname: string;
	port: string;
	user: string;
	identityfile: string[];
	hostkeyalias: string;
	userknownhostsfile: string;
};

function sshG(path: string, args: readonly string[]): string[] {
	const result = spawnSync('ssh', ['-G', '-F', path, ...args], {
		encoding: 'utf8',
		stdio: ['ignore', 'pipe', 'pipe'],
	});
	expect(result.status, result.stderr).toBe(0);
	return result.stdout.split('\n');
}

/**
 * The chain as OpenSSH walks it: each hop's settings from `ssh -G`, its identity files and the
 * next hop (ProxyJump, `%` tokens expanded) from what the real ssh does when it dials it.
 */
function opensshChain(path: string, alias: string): Hop[] {
	const hops: Hop[] = [];
	let next: {name: string; args: string[]} | null = {name: alias, args: []};
	while (next) {
		expect(hops.length).toBeLessThan(20);
		const lines = sshG(path, [...next.args, next.name]);
		const one = (key: string): string =>
			lines.find((line) => line.startsWith(`${key} `))?.slice(key.length + 1) ?? '';
		const jump = one('proxyjump');
		const dialed = sshDial(path, next.args, next.name, jump !== '' && jump !== 'none');
		hops.unshift({
			name: next.name,
			hostname: one('hostname'),
			port: one('port'),
			user: one('user'),
			identityfile: dialed.identityFiles,
			hostkeyalias: one('hostkeyalias'),
			userknownhostsfile: one('userknownhostsfile'),
		});
		if (!dialed.jump) break;
		// The jump forwards to this hop as ssh resolved it.
		expect(dialed.jump.forward).toBe(`[${one('hostname')}]:${one('port')}`);
		const {host, user, port, jump: rest} = dialed.jump;
		next = {
			name: host,
			args: [
				...(user ? ['-l', user] : []),
				...(port ? ['-p', port] : []),
				...(rest ? ['-J', rest] : []),
			],
		};
	}

	return hops;
}

function ourChain(path: string, alias: string): Hop[] {
	return resolveSshChain(alias, {home, localUser, path, systemPath: null}).map((link) => ({
		name: link.name,
		hostname: link.hostName,
		port: String(link.port ?? link.config.port ?? 22),
		user: link.user ?? link.config.user ?? localUser,
		identityfile: link.config.identityFiles,
		hostkeyalias: link.config.hostKeyAlias ?? '',
		userknownhostsfile: (
			link.config.userKnownHostsFiles ?? [
				join(home, '.ssh', 'known_hosts'),
				join(home, '.ssh', 'known_hosts2'),
			]
		).join(' '),
	}));
}

function write(name: string, lines: readonly string[]): string {
	const path = join(dir, name);
	// Every hop names an IdentityFile: without one ssh -G lists its defaults, we list none.
	writeFileSync(path, [...lines, 'Host *', '  IdentityFile ~/.ssh/id_all', ''].join('\n'));
	return path;
}

describe('resolveSshChain agrees with ssh -G', () => {
	test('a ProxyJump alias: two hops (the issue`s p507)', () => {
		const path = write('two', [
			'Host relay',
			'  HostName relay.example.org',
			'Host p507',
			'  HostName localhost',
			'  Port 19506',
			'  ProxyJump relay',
		]);
		const chain = ourChain(path, 'p507');
		expect(chain).toEqual(opensshChain(path, 'p507'));
		expect(chain.map((hop) => [hop.name, hop.hostname, hop.port])).toEqual([
			['relay', 'relay.example.org', '22'],
			['p507', 'localhost', '19506'],
		]);
	});

	test('nested jumps, comma lists, user@host:port, ssh://, none, per-hop key settings', () => {
		const path = write('many', [
			'Host bastion',
			'  HostName 127.0.0.9',
			'  Port 2022',
			'  User bast',
			'  IdentityFile ~/.ssh/id_bastion',
			'  UserKnownHostsFile ~/.ssh/kh_%h_%p',
			'Host relay',
			'  HostName relay.example.org',
			'  ProxyJump bastion',
			'  HostKeyAlias Relay-Key',
			'Host gw',
			'  HostName gw.example.org',
			'  ProxyJump bastion',
			'Host p3',
			'  HostName localhost',
			'  Port 19506',
			'  ProxyJump relay',
			// The list's last entry is reached through -J gw, which replaces relay's own ProxyJump;
			// gw, first, keeps its own (bastion).
			'Host pc',
			'  HostName 10.9.8.7',
			'  ProxyJump gw,alice@relay:2200',
			'Host pn',
			'  ProxyJump carol@[10.0.0.1]:2022,ssh://bob@bastion:2023',
			'Match originalhost pm',
			'  HostName m.example.org',
			'  ProxyJump relay',
			'Host *.lab',
			'  ProxyJump bastion',
			'Host direct.lab',
			'  ProxyJump gw',
			'Host none.lab',
			'  HostName n.example.org',
		]);
		const none = write('none', [
			'Host bastion',
			'  HostName 127.0.0.9',
			'  ProxyJump none',
			'Host solo',
			'  HostName solo.example.org',
			'  ProxyJump none',
			'Host *',
			'  ProxyJump bastion',
		]);
		const cases: Array<[string, string, string[]]> = [
			[path, 'p3', ['bastion', 'relay', 'p3']],
			[path, 'pc', ['bastion', 'gw', 'relay', 'pc']],
			[path, 'pn', ['10.0.0.1', 'bastion', 'pn']],
			[path, 'pm', ['bastion', 'relay', 'pm']],
			[path, 'x.lab', ['bastion', 'x.lab']],
			// First value wins: `Host *.lab` comes before `Host direct.lab`.
			[path, 'direct.lab', ['bastion', 'direct.lab']],
			[path, 'bastion', ['bastion']],
			[none, 'solo', ['solo']],
			[none, 'other', ['bastion', 'other']],
		];
		for (const [file, alias, names] of cases) {
			const chain = ourChain(file, alias);
			expect({alias, chain}).toEqual({alias, chain: opensshChain(file, alias)});
			expect(chain.map((hop) => hop.name)).toEqual(names);
		}

		// The comparison exercised real per-hop differences.
		const pc = ourChain(path, 'pc');
		expect(pc[2]).toMatchObject({user: 'alice', port: '2200', hostkeyalias: 'relay-key'});
		expect(pc[0]).toMatchObject({
			user: 'bast',
			userknownhostsfile: join(home, '.ssh', 'kh_127.0.0.9_2022'),
			identityfile: [join(home, '.ssh', 'id_bastion'), join(home, '.ssh', 'id_all')],
		});
		expect(ourChain(path, 'pn')[1]).toMatchObject({user: 'bob', port: '2023'});
	});

	test('% tokens in ProxyJump, HostName, IdentityFile, UserKnownHostsFile; HostName lowercased', () => {
		const path = write('tokens', [
			'Host gpu-*',
			'  HostName %h.Lab.Example.ORG',
			'  User Alice',
			'  Port 2201',
			// Expanded with the GPU host's own %h %n %r %p, as ssh's implicit ProxyCommand is.
			'  ProxyJump bastion-%n,%r@relay-%h',
			'  IdentityFile ~/.ssh/id_%h_%r_%p_%n',
			'  UserKnownHostsFile ~/.ssh/kh_%C %d/kh_%k_%l_%L_%u_%i_%%',
			// ssh takes HostKeyAlias as written (lowercased): no tokens.
			'  HostKeyAlias Key-%h',
			'Host relay-*',
			'  HostName %h',
			'  IdentityFile ~/.ssh/id_relay_%h_%r',
			'Host bastion-*',
			'  HostName 127.0.0.9',
			'  Port 2022',
			'  User bast',
			'  IdentityFile ${HOME}/.ssh/id_b_%u_%k',
			'Host up',
			'  HostName Mixed.Case.Org',
			'  ProxyJump Jump-%h:2222,%%odd',
			'Host v6',
			'  HostName FE80::ABCD',
			'Host *',
			'  UserKnownHostsFile ~/.ssh/kh_all_%h',
		]);
		const cases: Array<[string, string[]]> = [
			['gpu-A', ['bastion-gpu-A', 'relay-gpu-a.lab.example.org', 'gpu-A']],
			['up', ['Jump-mixed.case.org', '%odd', 'up']],
			['v6', ['v6']],
			['Other.Example.ORG', ['Other.Example.ORG']],
		];
		for (const [alias, names] of cases) {
			const chain = ourChain(path, alias);
			expect({alias, chain}).toEqual({alias, chain: opensshChain(path, alias)});
			expect(chain.map((hop) => hop.name)).toEqual(names);
		}

		// The comparison exercised real expansions.
		const gpu = ourChain(path, 'gpu-A');
		expect(gpu.map((hop) => [hop.hostname, hop.user, hop.port])).toEqual([
			['127.0.0.9', 'bast', '2022'],
			['relay-gpu-a.lab.example.org', 'Alice', '22'],
			['gpu-a.lab.example.org', 'Alice', '2201'],
		]);
		expect(gpu[2]?.identityfile[0]).toBe(
			join(home, '.ssh', 'id_gpu-a.lab.example.org_Alice_2201_gpu-A'),
		);
		expect(gpu[2]?.hostkeyalias).toBe('key-%h');
		expect(gpu[0]?.identityfile[0]).toBe(join(home, '.ssh', `id_b_${localUser}_bastion-gpu-A`));
		expect(ourChain(path, 'v6')[0]?.hostname).toBe('FE80::ABCD');
		expect(ourChain(path, 'Other.Example.ORG')[0]?.hostname).toBe('other.example.org');
	});

	test('a token ssh refuses is a config error naming the keyword', () => {
		const path = write('badtokens', [
			'Host hn',
			'  HostName %n.example.org',
			'Host pj',
			'  ProxyJump relay-%u',
			'Host id',
			'  IdentityFile ~/.ssh/id_%z',
			'Host env',
			'  UserKnownHostsFile ${GPUJUP_TEST_UNSET_VARIABLE}/kh',
		]);
		const refused = (alias: string) =>
			spawnSync('ssh', ['-G', '-F', path, alias], {stdio: 'ignore'}).status !== 0 ||
			(() => {
				try {
					sshDial(path, [], alias, alias === 'pj');
					return false;
				} catch {
					return true;
				}
			})();
		for (const [alias, message] of [
			['hn', 'HostName for "hn": unknown token %n (it takes %h and %%)'],
			['pj', 'ProxyJump for "pj": unknown token %u (it takes %h, %n, %p, %r and %%)'],
			['id', 'IdentityFile for "id": unknown token %z'],
			['env', 'UserKnownHostsFile for "env": ${GPUJUP_TEST_UNSET_VARIABLE} is not set'],
		] as const) {
			expect({alias, refused: refused(alias)}).toEqual({alias, refused: true});
			expect(() => resolveSshChain(alias, {home, localUser, path, systemPath: null})).toThrow(
				message,
			);
		}
	});

	test('ProxyCommand is refused, naming the host and the way out; the first of the two wins', () => {
		const path = write('command', [
			'Host pcmd',
			'  ProxyCommand nc %h %p',
			'Host jumpfirst',
			'  ProxyJump relay',
			'Host cmdnone',
			'  ProxyCommand none',
			'Host *',
			'  ProxyCommand nc %h %p',
			'  ProxyJump bastion',
		]);
		expect(sshG(path, ['pcmd'])).toContain('proxycommand nc %h %p');
		let error: unknown;
		try {
			resolveSshChain('pcmd', {home, localUser, path, systemPath: null});
		} catch (caught) {
			error = caught;
		}

		expect(error).toBeInstanceOf(SshConfigError);
		expect((error as SshConfigError).message).toBe(
			'"pcmd" uses ProxyCommand (nc %h %p), which runs a program: gpujup does not run it. Write the chain with ProxyJump instead (ProxyJump relay, or a,b for several hops), or give --relay',
		);
		// ProxyJump first: ProxyCommand is ignored (for the hop itself; relay then has the Host *
		// ProxyCommand and is refused); ProxyCommand none turns both off.
		expect(sshG(path, ['jumpfirst'])).toContain('proxyjump relay');
		expect(() => resolveSshChain('jumpfirst', {home, localUser, path, systemPath: null})).toThrow(
			'"relay" uses ProxyCommand',
		);
		expect(sshG(path, ['cmdnone']).some((line) => line.startsWith('proxyjump '))).toBe(false);
		expect(ourChain(path, 'cmdnone')).toEqual(opensshChain(path, 'cmdnone'));
		expect(ourChain(path, 'cmdnone')).toHaveLength(1);
	});

	test('a ProxyJump loop and an unreadable entry are config errors', () => {
		const path = write('loop', [
			'Host a',
			'  ProxyJump b',
			'Host b',
			'  ProxyJump a',
			'Host bad',
			'  ProxyJump relay:99999',
		]);
		expect(() => resolveSshChain('a', {home, localUser, path, systemPath: null})).toThrow(
			'ProxyJump for "a" leads through more than 16 hops — is there a loop (a → b → a → b',
		);
		expect(() => resolveSshChain('bad', {home, localUser, path, systemPath: null})).toThrow(
			'ProxyJump for "bad": cannot read "relay:99999"; expected [user@]host[:port] entries separated by commas, or none',
		);
	});
});

test('parseJumpEntry reads what ssh reads', () => {
	expect(parseJumpEntry('relay')).toEqual({user: null, host: 'relay', port: null});
	expect(parseJumpEntry('me@relay:2222')).toEqual({user: 'me', host: 'relay', port: 2222});
	expect(parseJumpEntry('me@[::1]:2222')).toEqual({user: 'me', host: '::1', port: 2222});
	expect(parseJumpEntry('ssh://me@relay:2222')).toEqual({user: 'me', host: 'relay', port: 2222});
	expect(parseJumpEntry('ssh://relay/path')).toBeNull();
	expect(parseJumpEntry('relay:0')).toBeNull();
	expect(parseJumpEntry('@relay')).toBeNull();
	expect(parseJumpEntry('')).toBeNull();
});
