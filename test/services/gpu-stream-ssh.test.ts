/**
 * The GPU stream over real OpenSSH: a relay sshd and a GPU host sshd on loopback (the seed's
 * `ssh -R` between them), the replaying nvidia-smi first on the GPU host's PATH, and ssh2 clients
 * built here for the two hops, as `connect` does.
 */
import {mkdir, readFile} from 'node:fs/promises';
import path from 'node:path';
import ssh2, {type Client} from 'ssh2';
import {afterAll, afterEach, beforeAll, describe, expect, test} from 'vitest';
import type {GpuStatus} from '../../source/core/types.js';
import {sshRunner} from '../../source/services/command-runner.js';
import {GpuStream} from '../../source/services/gpu-stream.js';
import {installFakeNvidiaSmi, pgrep, type FakeNvidiaSmi} from '../helpers/fake-nvidia-smi.js';
import {expectedHost} from '../helpers/fake-nvidia-smi-expect.js';
import {samples} from '../helpers/nvidia-smi-samples.js';
import {startLab, type Lab} from '../helpers/openssh-lab.js';
import {tempDir, type TempDir} from '../helpers/ports.js';
import {waitFor} from '../helpers/wait-for.js';

const [dataCentre, , desktop] = samples.captures;

let dir: TempDir;
let lab: Lab;
let fake: FakeNvidiaSmi;
let logFile: string;
let privateKey: Buffer;
const clients = new Set<Client>();

beforeAll(async () => {
	dir = await tempDir('gpu-ssh');
	const bin = path.join(dir.path, 'bin');
	await mkdir(bin);
	logFile = path.join(dir.path, 'invocations.log');
	fake = await installFakeNvidiaSmi(bin, {captures: [desktop, dataCentre], state: 'load', logFile});
	lab = await startLab({hostEnvPath: bin});
	privateKey = await readFile(lab.clientKey);
});

afterEach(async () => {
	for (const client of clients) client.destroy();
	clients.clear();
	// Whatever a failed test left: the check for leftovers is in the tests themselves.
	for (const pid of await fake.pids()) process.kill(pid, 'SIGKILL');
});

afterAll(async () => {
	await lab?.dispose();
	await dir?.dispose();
});

const ready = async (client: Client, config: ssh2.ConnectConfig) =>
	new Promise<Client>((resolve, reject) => {
		client.once('ready', () => resolve(client));
		client.once('error', reject);
		// Host keys are checked in the hop tests; this one is about the GPU stream.
		client.connect({...config, hostVerifier: () => true, readyTimeout: 20_000});
	});

/** Both hops: relay, then the GPU host through the relay's loopback port (as `ssh -J`). */
async function connectHops(): Promise<{relay: Client; host: Client}> {
	const relay = new ssh2.Client();
	clients.add(relay);
	relay.on('error', () => {});
	await ready(relay, {host: '127.0.0.1', port: lab.relay.port, username: lab.user, privateKey});
	const sock = await new Promise<ssh2.ClientChannel>((resolve, reject) => {
		relay.forwardOut('127.0.0.1', 0, 'localhost', lab.relayPort, (error, channel) =>
			error ? reject(error) : resolve(channel),
		);
	});
	const host = new ssh2.Client();
	clients.add(host);
	host.on('error', () => {});
	await ready(host, {sock, username: lab.user, privateKey});
	return {relay, host};
}

const fakeProcesses = async (query: 'gpu' | 'compute-apps') =>
	(await pgrep(`${fake.marker} --query-${query}=`)).length;

describe('GPU stream over the second hop (real OpenSSH)', () => {
	test('a sample per interval from ONE remote nvidia-smi; survives a hop reconnect; nothing left', async () => {
		await fake.configure({captures: [desktop, dataCentre], state: 'load', logFile});
		let current: Client | null = (await connectHops()).host;
		const statuses: GpuStatus[] = [];
		const stream = new GpuStream({
			runner: sshRunner(() => current),
			nvidiaSmi: 'nvidia-smi',
			onStatus: (status) => statuses.push(status),
		});
		const expected = expectedHost([desktop, dataCentre], 'load');
		try {
			stream.start();
			await waitFor(() => statuses.length >= 4, {message: 'four samples over ssh'});
			for (const status of statuses) {
				expect(status.error).toBeNull();
				expect(status.gpus).toEqual(expected.gpus);
			}
			// One device stream and one process stream on the GPU host, whatever the sample count.
			expect(await fakeProcesses('gpu')).toBe(1);
			expect(await fakeProcesses('compute-apps')).toBe(1);
			const processes = await waitFor(
				() => statuses.find((s) => s.processes.length === expected.processes.length),
				{message: 'the processes of both GPUs'},
			);
			expect(processes.processes.map((p) => p.pid).sort()).toEqual(
				expected.processes.map((p) => p.pid).sort(),
			);

			// The hop drops (the whole connection, as a dead relay would): the remote streams die with it.
			for (const client of clients) client.destroy();
			clients.clear();
			current = null;
			await stream.stop();
			await waitFor(async () => (await fake.pids()).length === 0, {
				message: 'no nvidia-smi left on the GPU host after the hop dropped',
			});

			// Reconnected: the lead calls start() again with the new client.
			current = (await connectHops()).host;
			const at = statuses.length;
			stream.start();
			await waitFor(() => statuses.length >= at + 3, {message: 'samples after the reconnect'});
			expect(statuses.slice(at).every((s) => s.error === null && s.gpus.length === 2)).toBe(true);
			expect(await fakeProcesses('gpu')).toBe(1);
		} finally {
			await stream.dispose();
		}
		await waitFor(async () => (await fake.pids()).length === 0, {
			message: 'no nvidia-smi left after dispose',
		});
		// Four nvidia-smi in all: two streams, twice. Never one per sample.
		const calls = (await readFile(logFile, 'utf8')).split('\n').filter(Boolean);
		expect(calls).toHaveLength(4);
	});

	test('a hung nvidia-smi: timeout reported, and it dies with its channel', async () => {
		await fake.configure({captures: [desktop], mode: 'hang'});
		const {host} = await connectHops();
		const statuses: GpuStatus[] = [];
		const stream = new GpuStream({
			runner: sshRunner(() => host),
			nvidiaSmi: 'nvidia-smi',
			timeoutMs: 2000,
			onStatus: (status) => statuses.push(status),
		});
		try {
			stream.start();
			await waitFor(() => statuses.some((s) => s.error?.kind === 'timeout'), {
				message: 'a timeout',
			});
		} finally {
			await stream.dispose();
		}
		// The hung fake ignores SIGTERM: only the guard's SIGKILL gets it.
		await waitFor(async () => (await fake.pids()).length === 0, {message: 'no hung fake left'});
	});

	test('closing the connection under a hung command leaves no orphan (no kill() from here)', async () => {
		await fake.configure({captures: [desktop], mode: 'hang'});
		const {relay, host} = await connectHops();
		const running = sshRunner(() => host).spawn(
			'nvidia-smi --query-gpu=uuid --format=csv -lms 1000',
		);
		await waitFor(async () => (await fake.hungPids()).length === 1, {
			message: 'the fake hangs, deaf to SIGTERM',
		});
		host.end();
		relay.end();
		expect(await running.exited).toEqual({code: null, signal: null});
		await waitFor(async () => (await fake.pids()).length === 0, {message: 'no orphan left'});
	});

	test('a broken driver on the GPU host is reported with nvidia-smi’s message', async () => {
		await fake.configure({captures: [desktop], mode: 'no-driver'});
		const {host} = await connectHops();
		const statuses: GpuStatus[] = [];
		const stream = new GpuStream({
			runner: sshRunner(() => host),
			nvidiaSmi: 'nvidia-smi',
			onStatus: (status) => statuses.push(status),
		});
		try {
			stream.start();
			const status = await waitFor(() => statuses[0], {message: 'an error report'});
			expect(status.error?.kind).toBe('no-driver');
			expect(status.error?.message).toContain("couldn't communicate with the NVIDIA driver");
		} finally {
			await stream.dispose();
		}
	});
});
