/**
 * Reading and appending the known_hosts file; every decision about its content is in
 * core/known-hosts.ts.
 */
import {mkdir, open, readFile} from 'node:fs/promises';
import {dirname} from 'node:path';
import {type KnownHostsEntry, parseKnownHosts} from '../core/known-hosts.js';

/**
 * Reads and parses a known_hosts file. A missing file is an empty list (first connection);
 * any other read failure is thrown for the caller to classify.
 */
export async function loadKnownHosts(path: string): Promise<KnownHostsEntry[]> {
	let text: string;
	try {
		text = await readFile(path, 'utf8');
	} catch (error) {
		if (isErrno(error, 'ENOENT')) return [];
		throw error;
	}

	return parseKnownHosts(text);
}

/**
 * Appends `hostPattern keyType keyBase64` as a plain line, as ssh's
 * `StrictHostKeyChecking accept-new` does. Creates the directory (0700) and file (0600) when
 * missing; an existing file keeps its mode. A last line without a newline is terminated first so
 * the new entry never fuses with it.
 */
export async function appendKnownHost(
	path: string,
	hostPattern: string,
	keyType: string,
	keyBase64: string,
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

		await handle.appendFile(`${prefix}${hostPattern} ${keyType} ${keyBase64}\n`);
		await handle.sync();
	} finally {
		await handle.close();
	}
}

function isErrno(error: unknown, code: string): boolean {
	return error instanceof Error && (error as NodeJS.ErrnoException).code === code;
}
