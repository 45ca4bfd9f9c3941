import {execFileSync, spawnSync} from 'node:child_process';
import {mkdtempSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterEach, beforeEach, expect, test} from 'vitest';
import {checkHostKey, hostPatternFor} from '../../source/core/known-hosts.js';
import {appendKnownHost, loadKnownHosts} from '../../source/services/known-hosts-file.js';

let dir = '';

beforeEach(() => {
	dir = mkdtempSync(join(tmpdir(), 'gpujup-khf-'));
});

afterEach(() => {
	rmSync(dir, {recursive: true, force: true});
});

function newKey(): {type: string; base64: string} {
	const path = join(dir, `key-${Math.random().toString(36).slice(2)}`);
	execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path]);
	const [type = '', base64 = ''] = readFileSync(`${path}.pub`, 'utf8').split(' ');
	return {type, base64};
}

test('a missing file is an empty list', async () => {
	expect(await loadKnownHosts(join(dir, 'nope', 'known_hosts'))).toEqual([]);
});

test('append creates 0700 dir and 0600 file, and ssh-keygen -F finds the entry', async () => {
	const path = join(dir, 'ssh', 'known_hosts');
	const key = newKey();
	const pattern = hostPatternFor('localhost', 19506);
	await appendKnownHost(path, pattern, key.type, key.base64);
	expect(statSync(join(dir, 'ssh')).mode & 0o777).toBe(0o700);
	expect(statSync(path).mode & 0o777).toBe(0o600);
	expect(readFileSync(path, 'utf8')).toBe(`[localhost]:19506 ${key.type} ${key.base64}\n`);

	const found = spawnSync('ssh-keygen', ['-F', '[localhost]:19506', '-f', path], {
		encoding: 'utf8',
	});
	expect(found.status).toBe(0);
	expect(found.stdout).toContain('found: line 1');

	const entries = await loadKnownHosts(path);
	expect(checkHostKey(entries, [pattern], key.type, key.base64)).toEqual({status: 'ok'});
});

test('append terminates a last line without newline and keeps an existing mode', async () => {
	const path = join(dir, 'known_hosts');
	const first = newKey();
	const second = newKey();
	writeFileSync(path, `relay ${first.type} ${first.base64.trim()}`, {mode: 0o644});
	await appendKnownHost(path, 'other', second.type, second.base64.trim());
	expect(readFileSync(path, 'utf8').split('\n')).toEqual([
		`relay ${first.type} ${first.base64.trim()}`,
		`other ${second.type} ${second.base64.trim()}`,
		'',
	]);
	expect(statSync(path).mode & 0o777).toBe(0o644);
	const entries = await loadKnownHosts(path);
	expect(entries.map((entry) => entry.line)).toEqual([1, 2]);
});

test('whitespace in a field is refused rather than writing a broken line', async () => {
	await expect(appendKnownHost(join(dir, 'kh'), 'a b', 'ssh-ed25519', 'AAAA')).rejects.toThrow(
		/whitespace/,
	);
});
