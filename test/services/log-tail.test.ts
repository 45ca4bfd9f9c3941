/**
 * RemoteLogTail against the lab's real OpenSSH GPU host: the exec fallback's `tail -F` of
 * `--jupyter-log`, resumed from its byte offset after the session drops.
 */
import {appendFile, stat, writeFile} from 'node:fs/promises';
import path from 'node:path';
import type {Client} from 'ssh2';
import {afterAll, beforeAll, expect, test} from 'vitest';
import {RemoteLogTail} from '../../source/services/log-tail.js';
import {pgrep} from '../helpers/fake-nvidia-smi.js';
import {startLab, type Lab} from '../helpers/openssh-lab.js';
import {tempDir, type TempDir} from '../helpers/ports.js';
import {gpuHostSession} from '../helpers/ssh2-client.js';
import {waitFor} from '../helpers/wait-for.js';

let lab: Lab;
let dir: TempDir;

beforeAll(async () => {
	lab = await startLab({reverse: 'none'});
	dir = await tempDir('gpujup-log-tail-');
});

afterAll(async () => {
	await lab?.dispose();
	await dir?.dispose();
});

/** A session on the GPU host's sshd (the hop machinery is tested elsewhere). */
async function connect(): Promise<Client> {
	return gpuHostSession(lab, {checkHostKey: false});
}

test('follows the log, resumes at its offset after a drop, and leaves no tail behind', async () => {
	const log = path.join(dir.path, 'jupyter.log');
	await writeFile(log, 'old line 1\nold line 2\n');
	const lines: string[] = [];
	const tail = new RemoteLogTail({path: log, onLines: (more) => lines.push(...more)});
	let client = await connect();
	try {
		tail.attach(client);
		await waitFor(() => lines.length >= 2, {message: 'the existing lines'});
		await appendFile(log, 'new line 3\n');
		await waitFor(() => lines.includes('new line 3'), {message: 'a line appended while attached'});

		// The session drops; lines written meanwhile must neither be lost nor shown twice.
		tail.detach();
		client.destroy();
		await appendFile(log, 'while down 4\nwhile down 5\n');
		client = await connect();
		tail.attach(client);
		await waitFor(() => lines.includes('while down 5'), {message: 'the lines written while down'});
		await appendFile(log, 'after 6\n');
		await waitFor(() => lines.includes('after 6'), {message: 'a line after the resume'});
		// One tail follows the file now (the check below for none left is not vacuous); `^` skips the
		// wrapper sh, whose command line holds the same words.
		expect(await pgrep(`^tail -c .* -F ${log}`)).toHaveLength(1);
		expect(lines).toEqual([
			'old line 1',
			'old line 2',
			'new line 3',
			'while down 4',
			'while down 5',
			'after 6',
		]);
	} finally {
		tail.detach();
		client.destroy();
	}

	// The exec wrapper ends tail when its channel closes: nothing follows the file any more.
	await waitFor(async () => (await pgrep(`^tail -c .* -F ${log}`)).length === 0, {
		message: 'no tail left on the GPU host',
	});
});

test('multibyte characters split across chunks arrive whole, and the resume offset stays on the byte', async () => {
	const log = path.join(dir.path, 'utf8.log');
	// 3-byte characters (€) and a 4-byte one (🚀) in lines of ~3 KB: the channel's chunks (powers of
	// two) cannot all end on a character boundary.
	const line = (label: string) => `${label} ${'€'.repeat(999)}🚀`;
	const batch = (label: string, count: number) =>
		Array.from({length: count}, (_, i) => line(`${label}${i}`));
	const existing = batch('old', 9);
	await writeFile(log, `${existing.join('\n')}\n`);
	const lines: string[] = [];
	const tail = new RemoteLogTail({path: log, onLines: (more) => lines.push(...more)});
	let client = await connect();
	try {
		tail.attach(client);
		await waitFor(() => lines.length >= 9, {message: 'the existing lines'});
		const attached = batch('new', 9);
		await appendFile(log, `${attached.join('\n')}\n`);
		await waitFor(() => lines.length >= 18, {message: 'the lines written while attached'});
		// The resume point is the end of the last whole line, counted in bytes.
		expect(tail.offset).toBe((await stat(log)).size);
		// Half a line, cut inside a character, then the hop drops.
		const half = Buffer.from(line('split'));
		await appendFile(log, half.subarray(0, 1001));
		tail.detach();
		client.destroy();
		await appendFile(log, Buffer.concat([half.subarray(1001), Buffer.from('\n')]));
		const whileDown = batch('down', 5);
		await appendFile(log, `${whileDown.join('\n')}\n`);
		client = await connect();
		tail.attach(client);
		await waitFor(() => lines.includes(whileDown.at(-1)!), {
			message: 'the lines written while down',
		});
		expect(lines.join('\n')).not.toContain('\uFFFD');
		expect(lines).toEqual([...existing, ...attached, line('split'), ...whileDown]);
		expect(tail.offset).toBe((await stat(log)).size);
	} finally {
		tail.detach();
		client.destroy();
	}
});

test('a first attach to a long log starts at a whole line', async () => {
	const log = path.join(dir.path, 'long.log');
	const all = Array.from({length: 400}, (_, i) => `line ${i} ${'é'.repeat(60)}`);
	await writeFile(log, `${all.join('\n')}\n`);
	const lines: string[] = [];
	const tail = new RemoteLogTail({path: log, onLines: (more) => lines.push(...more)});
	const client = await connect();
	try {
		tail.attach(client);
		await waitFor(() => lines.includes(all.at(-1)!), {message: 'the end of the log'});
		// Only the recent end (32 KB), each line whole.
		expect(lines.length).toBeLessThan(all.length);
		expect(lines).toEqual(all.slice(-lines.length));
	} finally {
		tail.detach();
		client.destroy();
	}
});
