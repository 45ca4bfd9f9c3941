/** FileLogTail on real files: how the supervisor follows Jupyter's log (its own file, polled). */
import {appendFileSync, renameSync, writeFileSync} from 'node:fs';
import path from 'node:path';
import {afterEach, describe, expect, test} from 'vitest';
import {FileLogTail} from '../../source/services/log-tail.js';
import {tempDir, type TempDir} from '../helpers/ports.js';

const dirs: TempDir[] = [];
afterEach(async () => {
	for (const dir of dirs.splice(0)) await dir.dispose();
});

async function tail(): Promise<{file: string; lines: string[]; tail: FileLogTail}> {
	const dir = await tempDir('file-tail');
	dirs.push(dir);
	const file = path.join(dir.path, 'jupyter.log');
	const lines: string[] = [];
	const follower = new FileLogTail({
		path: file,
		mask: (line) => line.replaceAll('s3cret', '<token>'),
		onLines: (batch) => lines.push(...batch),
	});
	return {file, lines, tail: follower};
}

describe('FileLogTail', () => {
	test('a new start shows only what is written after it, whole lines, masked', async () => {
		const {file, lines, tail: follower} = await tail();
		writeFileSync(file, 'from an earlier run\n');
		follower.start(false);
		expect(lines).toEqual([]);
		appendFileSync(file, 'ServerApp at http://127.0.0.1:8888/?token=s3cret\nhalf a li');
		follower.read();
		expect(lines).toEqual(['ServerApp at http://127.0.0.1:8888/?token=<token>']);
		appendFileSync(file, 'ne\n');
		follower.read();
		expect(lines.at(-1)).toBe('half a line');
		expect(follower.lastLine).toBe('half a line');
	});

	test('adoption reads back the recent end, dropping the line it starts inside', async () => {
		const {file, lines, tail: follower} = await tail();
		const old = Array.from({length: 400}, (_, i) => `old line ${i} ${'x'.repeat(30)}`);
		writeFileSync(file, `${old.join('\n')}\n`);
		follower.start(true);
		expect(lines.length).toBeGreaterThan(0);
		expect(lines.length).toBeLessThan(old.length);
		expect(lines.at(-1)).toBe(old.at(-1));
		// Every line shown is a whole one of the file.
		for (const line of lines) expect(old).toContain(line);
	});

	test('a rotated or truncated log is read again from its beginning', async () => {
		const {file, lines, tail: follower} = await tail();
		writeFileSync(file, 'first\n');
		follower.start(false);
		renameSync(file, `${file}.1`);
		writeFileSync(file, 'after rotation\n');
		follower.read();
		expect(lines).toEqual(['after rotation']);
		writeFileSync(file, 'cut\n');
		follower.read();
		expect(lines).toEqual(['after rotation', 'cut']);
	});
});
