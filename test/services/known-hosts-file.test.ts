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
	expect(await loadKnownHosts([join(dir, 'nope', 'known_hosts')])).toEqual([]);
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

	const entries = await loadKnownHosts([path]);
	expect(checkHostKey(entries, [pattern], key.type, key.base64)).toEqual({
		status: 'ok',
		file: path,
	});
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
	const entries = await loadKnownHosts([path]);
	expect(entries.map((entry) => entry.line)).toEqual([1, 2]);
});

test('whitespace in a field is refused rather than writing a broken line', async () => {
	await expect(appendKnownHost(join(dir, 'kh'), 'a b', 'ssh-ed25519', 'AAAA')).rejects.toThrow(
		/whitespace/,
	);
});

test('with HashKnownHosts, the name is written hashed, as ssh does: ssh-keygen -F finds it', async () => {
	const path = join(dir, 'hashed_known_hosts');
	const key = newKey();
	await appendKnownHost(path, '[LocalHost]:19506', key.type, key.base64.trim(), {hash: true});
	const text = readFileSync(path, 'utf8');
	expect(text).toMatch(/^\|1\|[A-Za-z\d+/]{27}=\|[A-Za-z\d+/]{27}= ssh-ed25519 /);
	expect(text).not.toMatch(/localhost/i);
	// Of the lowercased name, the one ssh looks up.
	const found = spawnSync('ssh-keygen', ['-F', '[localhost]:19506', '-f', path], {
		encoding: 'utf8',
	});
	expect(found.stdout).toContain('found: line 1');
	const entries = await loadKnownHosts([path]);
	expect(checkHostKey(entries, ['[localhost]:19506'], key.type, key.base64.trim())).toEqual({
		status: 'ok',
		file: path,
	});
});

test('several files are read as one list, each entry tagged with its file', async () => {
	const [a, b] = [newKey(), newKey()];
	const user = join(dir, 'user_known_hosts');
	const global = join(dir, 'global_known_hosts');
	writeFileSync(user, `relay ${a.type} ${a.base64.trim()}\n`);
	writeFileSync(global, `# global\nrelay ${b.type} ${b.base64.trim()}\n`);
	const entries = await loadKnownHosts([user, join(dir, 'missing'), global]);
	expect(entries.map((entry) => [entry.file, entry.line])).toEqual([
		[user, 1],
		[global, 2],
	]);
	expect(checkHostKey(entries, ['relay'], b.type, b.base64.trim())).toEqual({
		status: 'ok',
		file: global,
	});
	const other = newKey();
	expect(checkHostKey(entries, ['relay'], other.type, other.base64.trim())).toMatchObject({
		status: 'changed',
		lines: [1, 2],
		files: [user, global],
	});
});
