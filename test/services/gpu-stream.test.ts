import {spawn, type ChildProcess} from 'node:child_process';
import {mkdir, readFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {afterEach, beforeEach, describe, expect, test} from 'vitest';
import type {GpuStatus} from '../../source/core/types.js';
import {localRunner} from '../../source/services/command-runner.js';
import {GpuStream, type GpuStreamOptions} from '../../source/services/gpu-stream.js';
import {
	installFakeNvidiaSmi,
	type FakeNvidiaSmi,
	type FakeNvidiaSmiConfig,
} from '../helpers/fake-nvidia-smi.js';
import {expectedHost} from '../helpers/fake-nvidia-smi-expect.js';
import {samples} from '../helpers/nvidia-smi-samples.js';
import {tempDir, type TempDir} from '../helpers/ports.js';
import {waitFor} from '../helpers/wait-for.js';

let dir: TempDir;
let fake: FakeNvidiaSmi;
let logFile: string;
let stream: GpuStream | undefined;
const children: ChildProcess[] = [];
let statuses: GpuStatus[];

const captureFiles = samples.captures;
const desktop = samples.captures[2];
/** Per set: a process of the desktop GPU under load, and the data-centre GPU's load utilization. */
const facts = {
	shared: {job: {pid: 5022, usedMemoryMiB: 503}, loadUtilization: 100},
	fixtures: {job: {pid: 7301, usedMemoryMiB: 602}, loadUtilization: 97},
}[samples.kind];
const quickBackoff = {initialMs: 50, stepMs: 100, multiplier: 2, maxMs: 400, jitter: 0};

beforeEach(async () => {
	dir = await tempDir('gpu-stream');
	const bin = path.join(dir.path, 'bin');
	await mkdir(bin);
	logFile = path.join(dir.path, 'invocations.log');
	fake = await installFakeNvidiaSmi(bin, {captures: [desktop], logFile});
	statuses = [];
});

afterEach(async () => {
	await stream?.dispose();
	stream = undefined;
	for (const child of children.splice(0)) child.kill('SIGKILL');
	for (const pid of await fake.pids()) process.kill(pid, 'SIGKILL');
	await dir.dispose();
});

async function configure(config: FakeNvidiaSmiConfig) {
	await fake.configure({logFile, ...config});
}

function startStream(options: Partial<GpuStreamOptions> = {}): GpuStream {
	const env = {...process.env, PATH: `${path.dirname(fake.command)}:${process.env.PATH ?? ''}`};
	stream = new GpuStream({
		runner: localRunner(env),
		nvidiaSmi: 'nvidia-smi',
		onStatus: (status) => statuses.push(status),
		backoff: quickBackoff,
		...options,
	});
	stream.start();
	return stream;
}

const invocations = async () =>
	(await readFile(logFile, 'utf8').catch(() => '')).split('\n').filter(Boolean);

/** A live process whose command line names `program`, so ps can vouch for it. */
function liveProcess(program: string): number {
	const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1e9)', program], {
		stdio: 'ignore',
	});
	children.push(child);
	return child.pid!;
}

describe('GpuStream through the replaying nvidia-smi', () => {
	test('one GPU: every sample equals the capture, processes joined with ps', async () => {
		const ffmpeg = liveProcess('ffmpeg');
		await configure({captures: [desktop], state: 'load', pidMap: {[facts.job.pid]: ffmpeg}});
		const expected = expectedHost([desktop], 'load');
		startStream({intervalMs: 200, processIntervalMs: 400});
		// The process round and the ps answer arrive a little after the first device samples.
		const joined = await waitFor(
			() => statuses.find((s) => s.processes.some((p) => p.pid === ffmpeg && p.user !== null)),
			{message: 'a status with the live ffmpeg named by ps'},
		);
		expect(statuses.every((s) => s.error === null)).toBe(true);
		for (const status of statuses) {
			expect(status.gpus).toEqual(expected.gpus);
			expect(status.driverVersion).toBe(samples.desktop.driverVersion);
			expect(status.simulated).toBe(false);
		}
		// Every captured process, in memory order; the mapped one with its user and command line.
		const byMemory = [...expected.processes].sort(
			(a, b) => (b.usedMemoryMiB ?? -1) - (a.usedMemoryMiB ?? -1),
		);
		expect(joined.processes.map((p) => [p.gpuUuid, p.usedMemoryMiB])).toEqual(
			byMemory.map((p) => [p.gpuUuid, p.usedMemoryMiB]),
		);
		const live = joined.processes.find((p) => p.pid === ffmpeg)!;
		expect(live.user).toBe(os.userInfo().username);
		expect(live.command).toMatch(/ffmpeg$/);
		expect(live.usedMemoryMiB).toBe(facts.job.usedMemoryMiB);
	});

	test('four GPUs: idle and load samples alternate, distinct uuids, two nvidia-smi in all', async () => {
		await configure({captures: [...captureFiles]});
		const idle = expectedHost(captureFiles, 'idle');
		const load = expectedHost(captureFiles, 'load');
		startStream({intervalMs: 200, processIntervalMs: 400});
		await waitFor(() => statuses.length >= 6, {message: 'six samples'});
		for (const status of statuses) {
			expect(status.error).toBeNull();
			expect([idle.gpus, load.gpus]).toContainEqual(status.gpus);
		}
		expect(statuses.some((s) => s.gpus[0]!.utilizationGpu === facts.loadUtilization)).toBe(true);
		expect(new Set(statuses[0]!.gpus.map((gpu) => gpu.uuid)).size).toBe(4);
		// Long-lived streams, never one nvidia-smi per sample.
		const calls = await invocations();
		expect(calls).toHaveLength(2);
		expect(calls.some((c) => c.includes('--query-gpu=') && c.includes('-lms 200'))).toBe(true);
		expect(calls.some((c) => c.includes('--query-compute-apps=') && c.includes('-lms 400'))).toBe(
			true,
		);
		// The MIG GPU (GPU 1): known as MIG, its utilization unknown rather than 0.
		expect(statuses[0]!.gpus[1]).toMatchObject({mig: true, utilizationGpu: null});
		// Processes of every GPU arrive, in GPU order.
		const withProcesses = await waitFor(
			() => statuses.find((s) => s.processes.length === load.processes.length),
			{message: 'the load round of processes'},
		);
		const indexOf = new Map(withProcesses.gpus.map((gpu) => [gpu.uuid, gpu.index]));
		const order = withProcesses.processes.map((p) => indexOf.get(p.gpuUuid)!);
		expect(order).toEqual([...order].sort((a, b) => a - b));
	});

	test('a field this driver lacks is dropped and the query goes on', async () => {
		await configure({captures: [desktop], state: 'idle', invalidFields: ['mig.mode.current']});
		startStream({intervalMs: 200});
		await waitFor(() => statuses.length >= 2, {message: 'samples without mig.mode.current'});
		expect(statuses.every((s) => s.error === null)).toBe(true);
		expect(statuses[0]!.gpus).toEqual(expectedHost([desktop], 'idle').gpus);
		const calls = (await invocations()).filter((c) => c.includes('--query-gpu='));
		expect(calls).toHaveLength(2);
		expect(calls[0]).toContain('mig.mode.current');
		expect(calls[1]).not.toContain('mig.mode.current');
	});

	test('the short CSV: an old capture without index, bus id, limits: what it has, the rest unknown', async () => {
		await configure({captures: [samples.shortCsv]});
		startStream({intervalMs: 200});
		await waitFor(() => statuses.length >= 2, {message: 'short CSV samples'});
		expect(statuses.at(-1)).toEqual({
			gpus: [samples.shortCsvGpu],
			processes: [],
			error: null,
			driverVersion: null,
			simulated: false,
		});
	});

	test('no driver: nvidia-smi’s own message and a fix, retried with backoff', async () => {
		await configure({captures: [desktop], mode: 'no-driver'});
		startStream();
		await waitFor(() => statuses.length >= 3, {message: 'three error reports'});
		for (const status of statuses) {
			expect(status).toMatchObject({gpus: [], processes: [], error: {kind: 'no-driver'}});
			expect(status.error!.message).toContain("couldn't communicate with the NVIDIA driver");
		}
		// Once the driver is back, samples come without a restart of gpujup.
		await configure({captures: [desktop], state: 'idle'});
		await waitFor(() => statuses.at(-1)?.gpus.length === 1, {message: 'recovered'});
		expect(statuses.at(-1)!.error).toBeNull();
	});

	test('driver/library mismatch is reported as such', async () => {
		await configure({captures: [desktop], mode: 'mismatch'});
		startStream();
		const status = await waitFor(() => statuses[0], {message: 'an error report'});
		expect(status.error).toEqual({
			kind: 'no-driver',
			message:
				'Failed to initialize NVML: Driver/library version mismatch NVML library version: 590.48',
		});
	});

	test('no nvidia-smi at all: no-driver, with the shell’s message', async () => {
		startStream({nvidiaSmi: path.join(dir.path, 'missing', 'nvidia-smi')});
		const status = await waitFor(() => statuses[0], {message: 'an error report'});
		expect(status.error?.kind).toBe('no-driver');
		expect(status.error?.message).toMatch(/not found/);
	});

	test('a hung nvidia-smi: timeout reported, nothing blocks, nothing is left', async () => {
		await configure({captures: [desktop], mode: 'hang'});
		startStream({timeoutMs: 1500});
		await waitFor(() => statuses.filter((s) => s.error?.kind === 'timeout').length >= 2, {
			message: 'two timeouts',
		});
		expect(statuses[0]!.error!.message).toMatch(/no answer/);
		await stream!.stop();
		await waitFor(async () => (await fake.pids()).length === 0, {message: 'no hung fake left'});
	});

	test('hangs after two samples: the samples, then a timeout, then it comes back', async () => {
		await configure({captures: [desktop], state: 'idle', mode: 'hang-after:2'});
		startStream({intervalMs: 200, timeoutMs: 1500});
		await waitFor(() => statuses.some((s) => s.error?.kind === 'timeout'), {message: 'timeout'});
		expect(statuses[0]!.gpus).toHaveLength(1);
		await configure({captures: [desktop], state: 'idle'});
		const at = statuses.length;
		await waitFor(() => statuses.slice(at).some((s) => s.gpus.length === 1), {
			message: 'samples again',
		});
	});

	test('start() after stop() works, and stop() leaves no process', async () => {
		await configure({captures: [desktop], state: 'idle'});
		const s = startStream({intervalMs: 200});
		await waitFor(() => statuses.length >= 2, {message: 'first samples'});
		await s.stop();
		await waitFor(async () => (await fake.pids()).length === 0, {message: 'stopped'});
		const at = statuses.length;
		s.start();
		await waitFor(() => statuses.length >= at + 2, {message: 'samples after restart'});
		expect(statuses.at(-1)!.gpus).toEqual(expectedHost([desktop], 'idle').gpus);
		await s.dispose();
		await waitFor(async () => (await fake.pids()).length === 0, {message: 'disposed'});
		s.start();
		expect(await fake.pids()).toEqual([]);
	});
});
