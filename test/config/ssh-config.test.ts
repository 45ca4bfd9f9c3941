/**
 * The ~/.ssh/config evaluation checked against OpenSSH's own (`ssh -G -F file host`, which
 * prints the effective configuration without connecting). The configs here have no `Match exec`,
 * since `ssh -G` would run it; resolve.test.ts checks that we never do.
 */
import {spawnSync} from 'node:child_process';
import {existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs';
import {homedir, tmpdir, userInfo} from 'node:os';
import {dirname, join} from 'node:path';
import {afterAll, beforeAll, expect, test} from 'vitest';
import {
	defaultGlobalKnownHostsFiles,
	lookupSshHost,
	patternListMatches,
	sshHostName,
	type SshConfigOptions,
} from '../../source/config/ssh-config.js';
import {sshDial} from '../helpers/openssh-dial.js';

let dir = '';
// ssh expands ~ from the password database, so compare with the real home.
const home = homedir();
const localUser = userInfo().username;

beforeAll(() => {
	dir = mkdtempSync(join(tmpdir(), 'gpujup-sshcfg-'));
});

afterAll(() => {
	rmSync(dir, {recursive: true, force: true});
});

function write(path: string, text: string): string {
	mkdirSync(dirname(path), {recursive: true});
	writeFileSync(path, text);
	return path;
}

function openssh(
	path: string,
	host: string,
): {hostname: string; user: string; port: string; identityfile: string[]} {
	const result = spawnSync('ssh', ['-G', '-F', path, host], {
		encoding: 'utf8',
		stdio: ['ignore', 'pipe', 'pipe'],
	});
	expect(result.status, result.stderr).toBe(0);
	const lines = result.stdout.split('\n');
	const one = (key: string): string =>
		lines.find((line) => line.startsWith(`${key} `))?.slice(key.length + 1) ?? '';
	return {
		hostname: one('hostname'),
		user: one('user'),
		port: one('port'),
		identityfile: lines
			.filter((line) => line.startsWith('identityfile '))
			.map((line) => line.slice('identityfile '.length).replace(/^~/, home)),
	};
}

function ours(path: string, host: string): ReturnType<typeof openssh> {
	const found = lookupSshHost(host, {home, localUser, path});
	return {
		hostname: found.hostName ?? host.toLowerCase(),
		user: found.user ?? localUser,
		port: found.port ?? '22',
		identityfile: found.identityFiles,
	};
}

test('agrees with ssh -G on Host patterns, Match host/user, Include, first-value-wins', () => {
	const included = write(
		join(dir, 'conf.d', '10-gpu.conf'),
		['Host gpu', '  HostName 10.1.2.3', '  User gpuuser', 'Host *', '  Port 2200'].join('\n'),
	);
	write(join(dir, 'conf.d', '20-other.conf'), 'Host gpu\n  HostName never.example.org\n');
	const path = write(
		join(dir, 'config'),
		[
			'# top-level defaults come first',
			`Include ${join(dir, 'conf.d')}/*.conf`,
			'Host relay r2 !bad*',
			'  HostName relay.example.org',
			'  IdentityFile ~/.ssh/id_relay',
			'Host *.example.org',
			'  User bob',
			'  Port 2222',
			'Match host relay.example.org user bob',
			'  Port 2201',
			'Match host *.example.org,!y.example.org user bob',
			'  IdentityFile ~/.ssh/id_match',
			'Match originalhost r2',
			'  User r2user',
			'Host nope',
			`  Include ${included}`,
			'Host *',
			'  IdentityFile ~/.ssh/id_all',
			'  User fallback',
		].join('\n'),
	);
	const hosts = [
		'relay',
		'r2',
		'bad1',
		'gpu',
		'x.example.org',
		'y.example.org',
		'X.example.org',
		'nope',
		'other',
	];
	for (const host of hosts) {
		expect({host, ...ours(path, host)}).toEqual({host, ...openssh(path, host)});
	}

	// The comparison must exercise real differences between hosts.
	expect(openssh(path, 'relay')).toMatchObject({
		hostname: 'relay.example.org',
		user: 'fallback',
		port: '2200',
	});
	expect(openssh(path, 'r2').user).toBe('r2user');
	expect(openssh(path, 'x.example.org')).toMatchObject({
		user: 'bob',
		identityfile: [join(home, '.ssh', 'id_match'), join(home, '.ssh', 'id_all')],
	});
	expect(openssh(path, 'gpu')).toMatchObject({hostname: '10.1.2.3', user: 'gpuuser'});
});

test('a missing config is empty; patterns follow match_pattern_list', () => {
	expect(lookupSshHost('relay', {home: dir, localUser, path: join(dir, 'absent')})).toEqual({
		hostName: null,
		user: null,
		port: null,
		identityFiles: [],
		userKnownHostsFiles: null,
		proxyJump: null,
		proxyCommand: null,
		globalKnownHostsFiles: null,
		hostKeyAlias: null,
		strictHostKeyChecking: null,
		hashKnownHosts: null,
	});
	expect(patternListMatches(['*.org', '!bad.org'], 'good.org')).toBe(true);
	expect(patternListMatches(['*.org', '!bad.org'], 'bad.org')).toBe(false);
	expect(patternListMatches(['gpu?'], 'gpu1')).toBe(true);
	expect(patternListMatches(['gpu?'], 'gpu')).toBe(false);
});

test('Match exec is not run even where ssh would reach it', () => {
	const marker = join(dir, 'exec-ran');
	const path = write(
		join(dir, 'exec.conf'),
		[`Match exec "touch ${marker}"`, '  HostName evil', 'Host relay', '  HostName good'].join('\n'),
	);
	expect(lookupSshHost('relay', {home, localUser, path}).hostName).toBe('good');
	expect(existsSync(marker)).toBe(false);
});

/** The host-key settings `ssh -G` prints, with ssh's defaults where the config says nothing. */
function opensshKeys(args: readonly string[], host: string) {
	const result = spawnSync('ssh', ['-G', ...args, host], {
		encoding: 'utf8',
		stdio: ['ignore', 'pipe', 'pipe'],
	});
	expect(result.status, result.stderr).toBe(0);
	const lines = result.stdout.split('\n');
	const one = (key: string): string | null =>
		lines.find((line) => line.startsWith(`${key} `))?.slice(key.length + 1) ?? null;
	return {
		userknownhostsfile: one('userknownhostsfile'),
		globalknownhostsfile: one('globalknownhostsfile'),
		hostkeyalias: one('hostkeyalias'),
		stricthostkeychecking: one('stricthostkeychecking'),
		hashknownhosts: one('hashknownhosts'),
	};
}

/** Ours, printed the way ssh -G prints it, with ssh's defaults filled in. */
function ourKeys(host: string, options: SshConfigOptions): ReturnType<typeof opensshKeys> {
	const found = lookupSshHost(host, options);
	const list = (files: string[] | null, fallback: string[]) =>
		files === null ? fallback.join(' ') : files.length === 0 ? 'none' : files.join(' ');
	const strict = found.strictHostKeyChecking ?? 'ask';
	return {
		userknownhostsfile: list(found.userKnownHostsFiles, [
			join(home, '.ssh', 'known_hosts'),
			join(home, '.ssh', 'known_hosts2'),
		]),
		globalknownhostsfile: list(found.globalKnownHostsFiles, defaultGlobalKnownHostsFiles),
		hostkeyalias: found.hostKeyAlias,
		stricthostkeychecking: strict === 'yes' ? 'true' : strict === 'no' ? 'false' : strict,
		hashknownhosts: found.hashKnownHosts === true ? 'yes' : 'no',
	};
}

test('known_hosts files, HostKeyAlias, StrictHostKeyChecking, HashKnownHosts agree with ssh -G', () => {
	const path = write(
		join(dir, 'keys.conf'),
		[
			'Host relay',
			'  HostName Relay.Example.org',
			'  Port 2222',
			'  UserKnownHostsFile ~/kh/%h_%p "/x y/%r" %d/k2 /k/%k',
			'  GlobalKnownHostsFile none',
			'  HostKeyAlias MyRelay',
			'  StrictHostKeyChecking off',
			'  HashKnownHosts no',
			'Host other',
			'  UserKnownHostsFile none',
			'  StrictHostKeyChecking accept-new',
			'  HashKnownHosts yes',
			'Host third',
			'  StrictHostKeyChecking false',
			'  GlobalKnownHostsFile /etc/g1 /etc/g2',
			'Host fourth',
			'  StrictHostKeyChecking yes',
			'Host *',
			'  UserKnownHostsFile /never/first-value-wins',
			'  StrictHostKeyChecking ask',
		].join('\n'),
	);
	for (const host of ['relay', 'other', 'third', 'fourth', 'x']) {
		expect({host, ...ourKeys(host, {home, localUser, path})}).toEqual({
			host,
			...opensshKeys(['-F', path], host),
		});
	}

	// The comparison must exercise real values.
	expect(opensshKeys(['-F', path], 'relay')).toMatchObject({
		userknownhostsfile: `${home}/kh/relay.example.org_2222 /x y/${localUser} ${home}/k2 /k/myrelay`,
		hostkeyalias: 'myrelay',
		stricthostkeychecking: 'false',
	});
	// A port given on the command line is %p, as `ssh -p` makes it.
	expect(lookupSshHost('relay', {home, localUser, path, port: 2200}).userKnownHostsFiles?.[0]).toBe(
		`${home}/kh/relay.example.org_2200`,
	);
});

test('the system ssh_config is read after the user one, as ssh reads it (HashKnownHosts on Debian)', () => {
	// No -F: ssh reads ~/.ssh/config (of the real home) and /etc/ssh/ssh_config.
	for (const host of ['relay.example.org', 'localhost']) {
		expect({host, ...ourKeys(host, {home, localUser})}).toEqual({
			host,
			...opensshKeys([], host),
		});
	}

	// A system file of our own, with a relative Include (under its own directory).
	const etc = join(dir, 'etc-ssh');
	write(join(etc, 'ssh_config.d', 'hash.conf'), 'Host *\n  HashKnownHosts yes\n');
	const system = write(
		join(etc, 'ssh_config'),
		'Include ssh_config.d/*.conf\nHost *\n  StrictHostKeyChecking accept-new\n  HashKnownHosts no\n',
	);
	const user = write(join(dir, 'user.conf'), 'Host relay\n  StrictHostKeyChecking yes\n');
	expect(lookupSshHost('relay', {home, localUser, path: user, systemPath: system})).toMatchObject({
		strictHostKeyChecking: 'yes',
		hashKnownHosts: true,
	});
	expect(lookupSshHost('other', {home, localUser, path: user, systemPath: system})).toMatchObject({
		strictHostKeyChecking: 'accept-new',
	});
});

test('HostName lowercased (not an address), % tokens and ${VAR} where ssh expands them', () => {
	// ssh's is_addr: addresses canonicalised, never lowercased; nor names with % or :.
	const addresses = ['127.1', '0x7F.1', '010.0.0.1', '1.2.3', '0:0::1', '::FFFF:1.2.3.4', 'Zz%Q'];
	addresses.push('1.2.3.4.5', '08.1.1.1', 'FOO.0x1', 'A:B', 'n-X', 'm-x', 'm-X');
	const path = write(
		join(dir, 'tokens.conf'),
		[
			'Host mixed',
			'  HostName Mixed.Example.ORG',
			'Host t-*',
			'  HostName %h.Lab.%%.Org',
			'  User Alice',
			'  Port 2201',
			'  IdentityFile ~/.ssh/id_%h_%p_%r_%n_%u_%d_%C_%l_%L_%i_%k_%%',
			'  IdentityFile ${HOME}/.ssh/id_env',
			'  UserKnownHostsFile ~/kh/%h_%p_%r_%n_%u_%C_%l_%L_%i_%k_%% ${HOME}/kh2',
			// ssh tilde-expands these and nothing more.
			'  GlobalKnownHostsFile ~/g/%h_%p /etc/g',
			'  HostKeyAlias Alias-%h',
			'Host v6',
			'  HostName FE80::ABCD',
			'Host n-*',
			'  HostName %h.Ex',
			// Match host sees HostName with %h expanded (not lowercased).
			'Host m-*',
			'  HostName %h.match.org',
			'Match host m-*.match.org',
			'  IdentityFile /k/matched_%h',
			'  IdentityFile /k/%h',
			'Host *',
			'  IdentityFile /k/all_%h',
		].join('\n'),
	);
	for (const host of ['mixed', 't-One', 'v6', 'Plain.Example.ORG', ...addresses]) {
		const found = lookupSshHost(host, {home, localUser, path});
		const lines = spawnSync('ssh', ['-G', '-F', path, host], {encoding: 'utf8'}).stdout.split('\n');
		const one = (key: string) =>
			lines.find((line) => line.startsWith(`${key} `))?.slice(key.length + 1) ?? null;
		expect({
			host,
			hostname: found.hostName ?? sshHostName(host),
			identityfile: found.identityFiles,
			userknownhostsfile: found.userKnownHostsFiles?.join(' ') ?? null,
			globalknownhostsfile: found.globalKnownHostsFiles?.join(' ') ?? null,
			hostkeyalias: found.hostKeyAlias,
		}).toEqual({
			host,
			hostname: one('hostname'),
			identityfile: sshDial(path, [], host, false).identityFiles,
			userknownhostsfile: found.userKnownHostsFiles ? one('userknownhostsfile') : null,
			globalknownhostsfile: found.globalKnownHostsFiles
				? (one('globalknownhostsfile')?.replaceAll(/(^| )~\//g, `$1${home}/`) ?? null)
				: null,
			hostkeyalias: one('hostkeyalias'),
		});
	}

	// The comparison exercised real expansions.
	expect(lookupSshHost('mixed', {home, localUser, path}).hostName).toBe('mixed.example.org');
	expect(lookupSshHost('v6', {home, localUser, path}).hostName).toBe('FE80::ABCD');
	expect(lookupSshHost('n-X', {home, localUser, path}).hostName).toBe('n-x.ex');
	expect(lookupSshHost('m-x', {home, localUser, path}).identityFiles[0]).toBe(
		'/k/matched_m-x.match.org',
	);
	const t = lookupSshHost('t-One', {home, localUser, path});
	// A name with % in it is not lowercased (ssh takes it for an address with a scope).
	expect(t.hostName).toBe('t-One.Lab.%.Org');
	expect(t.identityFiles[0]).toMatch(
		new RegExp(
			`^${home}/\\.ssh/id_t-One\\.Lab\\.%\\.Org_2201_Alice_t-One_${localUser}_${home}_[0-9a-f]{40}_`,
		),
	);
	expect(t.globalKnownHostsFiles).toEqual([`${home}/g/%h_%p`, '/etc/g']);
	expect(t.hostKeyAlias).toBe('alias-%h');
	expect(sshHostName('127.1')).toBe('127.0.0.1');
	expect(sshHostName('0:0::1')).toBe('::1');
	expect(sshHostName('FE80::ABCD')).toBe('FE80::ABCD');
	expect(sshHostName('Relay.Example.org')).toBe('relay.example.org');
});
