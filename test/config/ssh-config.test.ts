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
import {lookupSshHost, patternListMatches} from '../../source/config/ssh-config.js';

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
