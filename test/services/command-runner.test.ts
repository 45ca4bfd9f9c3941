import {mkdir} from 'node:fs/promises';
import path from 'node:path';
import type {Readable} from 'node:stream';
import {afterEach, beforeEach, describe, expect, test} from 'vitest';
import {shellQuote} from '../../source/core/shell.js';
import {localRunner} from '../../source/services/command-runner.js';
import {installFakeNvidiaSmi, pgrep, type FakeNvidiaSmi} from '../helpers/fake-nvidia-smi.js';
import {samples} from '../helpers/nvidia-smi-samples.js';
import {tempDir, type TempDir} from '../helpers/ports.js';
import {waitFor} from '../helpers/wait-for.js';

const collect = (stream: Readable) => {
	let text = '';
	stream.setEncoding('utf8');
	stream.on('data', (chunk: string) => (text += chunk));
	return () => text;
};

let dir: TempDir;
let fake: FakeNvidiaSmi;

beforeEach(async () => {
	dir = await tempDir('runner');
	const bin = path.join(dir.path, 'bin');
	await mkdir(bin);
	fake = await installFakeNvidiaSmi(bin, {
		captures: [samples.captures[2]],
	});
});

afterEach(async () => {
	// Never leave a fake behind, whatever the test did.
	for (const pid of await fake.pids()) process.kill(pid, 'SIGKILL');
	await dir.dispose();
});

describe('localRunner', () => {
	test('runs a shell command: stdout, stderr and exit code', async () => {
		const running = localRunner().spawn(`echo out; echo err >&2; exit 3`);
		const out = collect(running.stdout);
		const err = collect(running.stderr);
		expect(await running.exited).toEqual({code: 3, signal: null});
		expect(out()).toBe('out\n');
		expect(err()).toBe('err\n');
	});

	test('arguments with quotes survive the guard', async () => {
		const running = localRunner().spawn(`printf '%s|' ${shellQuote("it's")} "a b"`);
		const out = collect(running.stdout);
		await running.exited;
		expect(out()).toBe("it's|a b|");
	});

	test('the env replaces PATH: the fake answers as nvidia-smi', async () => {
		const env = {...process.env, PATH: `${path.dirname(fake.command)}:${process.env.PATH ?? ''}`};
		const running = localRunner(env).spawn(
			'nvidia-smi --query-gpu=index,name --format=csv,noheader',
		);
		const out = collect(running.stdout);
		expect(await running.exited).toEqual({code: 0, signal: null});
		expect(out()).toBe(`0, ${samples.desktop.name}\n`);
	});

	test('kill() ends a hung nvidia-smi that ignores SIGTERM, and nothing is left', async () => {
		await fake.configure({mode: 'hang'});
		const running = localRunner().spawn(`${fake.command} --query-gpu=uuid --format=csv -lms 1000`);
		await waitFor(async () => (await fake.hungPids()).length === 1, {
			message: 'the fake hangs, deaf to SIGTERM',
		});
		running.kill();
		const exit = await running.exited;
		expect(exit.code === 0).toBe(false);
		await waitFor(async () => (await pgrep(fake.marker)).length === 0, {message: 'no fake left'});
		// Neither the guard nor its watcher: nothing mentions this test's bin dir any more.
		await waitFor(async () => (await pgrep(dir.path)).length === 0, {message: 'no guard left'});
	});

	test('a deadline ends a hung command without any kill() from here', async () => {
		await fake.configure({mode: 'hang'});
		const running = localRunner().spawn(`${fake.command} --query-gpu=uuid --format=csv`, {
			deadlineMs: 1000,
		});
		const exit = await running.exited;
		expect(exit.code === 0).toBe(false);
		await waitFor(async () => (await pgrep(dir.path)).length === 0, {message: 'nothing left'});
	});

	test('a command that ends by itself takes its deadline timer with it', async () => {
		// An odd deadline, so that its `sleep 4321` is this test's own.
		const running = localRunner().spawn(`${fake.command} --query-gpu=uuid --format=csv,noheader`, {
			deadlineMs: 4_321_000,
		});
		const out = collect(running.stdout);
		expect(await running.exited).toEqual({code: 0, signal: null});
		expect(out()).toBe(`${samples.desktop.uuid}\n`);
		await waitFor(async () => (await pgrep('sleep 4321')).length === 0, {message: 'timer gone'});
		expect(await pgrep(dir.path)).toEqual([]);
	});
});
