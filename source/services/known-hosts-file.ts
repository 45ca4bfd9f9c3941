/**
 * Reading and appending the known_hosts file; every decision about its content is in
 * core/known-hosts.ts.
 */
import {randomBytes} from 'node:crypto';
import {mkdir, open, readFile} from 'node:fs/promises';
import {dirname} from 'node:path';
import {errnoOf} from '../core/classify-error.js';
import {hashHostName, type KnownHostsEntry, parseKnownHosts} from '../core/known-hosts.js';

/**
 * Reads and parses known_hosts files, in order, each entry tagged with its file (ssh reads the
 * user's files, then the global ones, as one list). A missing file is empty (first connection);
 * any other read failure is thrown for the caller to classify, naming the file.
 */
export async function loadKnownHosts(paths: readonly string[]): Promise<KnownHostsEntry[]> {
	const entries: KnownHostsEntry[] = [];
	for (const path of paths) {
		let text: string;
		try {
			text = await readFile(path, 'utf8');
		} catch (error) {
			if (isErrno(error, 'ENOENT') || isErrno(error, 'ENOTDIR')) continue;
			throw error;
		}

		entries.push(...parseKnownHosts(text, path));
	}

	return entries;
}

/**
 * Appends `hostPattern keyType keyBase64`, as ssh's `StrictHostKeyChecking accept-new` does:
 * with the name hashed when `hash` (`HashKnownHosts yes`), plain otherwise. Creates the directory
 * (0700) and file (0600) when missing; an existing file keeps its mode. A last line without a
 * newline is terminated first so the new entry never fuses with it.
 */
export async function appendKnownHost(
	path: string,
	hostPattern: string,
	keyType: string,
	keyBase64: string,
	options: {readonly hash?: boolean} = {},
): Promise<void> {
	if (/\s/.test(hostPattern) || /\s/.test(keyType) || /\s/.test(keyBase64)) {
		throw new Error('known_hosts fields must not contain whitespace');
	}

	await mkdir(dirname(path), {recursive: true, mode: 0o700});
	const handle = await open(path, 'a+', 0o600);
	try {
		const {size} = await handle.stat();
		let prefix = '';
		if (size > 0) {
			const last = Buffer.alloc(1);
			await handle.read(last, 0, 1, size - 1);
			if (last[0] !== 0x0a) prefix = '\n';
		}

		const name = options.hash ? hashHostName(hostPattern, randomBytes(20)) : hostPattern;
		await handle.appendFile(`${prefix}${name} ${keyType} ${keyBase64}\n`);
		await handle.sync();
	} finally {
		await handle.close();
	}
}

function isErrno(error: unknown, code: string): boolean {
	return error instanceof Error && errnoOf(error) === code;
}
