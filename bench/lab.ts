/**
 * The bench's lab: the OpenSSH relay and GPU host (test/helpers/openssh-lab.ts), Debian's Jupyter,
 * the replaying fake nvidia-smi, a blob server on the GPU host, fault proxies for shaped and dead
 * paths, and the processes under test (gpujup, OpenSSH's `ssh -J -L`) with what they are timed by.
 */
import {spawn, type ChildProcess} from 'node:child_process';
import {randomBytes, randomUUID} from 'node:crypto';
import {copyFile, mkdir, readFile, writeFile} from 'node:fs/promises';
import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import process from 'node:process';
import WebSocket from 'ws';
import {startFaultProxy, type FaultProxy} from '../test/helpers/fault-proxy.js';
import {executeRequest, startJupyter, type RunningJupyter} from '../test/helpers/jupyter.js';
import {samplePath, samples, repoRoot} from '../test/helpers/nvidia-smi-samples.js';
import {sshClientOptions, startLab, type Lab} from '../test/helpers/openssh-lab.js';
import {freePort, tempDir, type TempDir} from '../test/helpers/ports.js';
import {stopChild} from '../test/helpers/proc.js';

// ---------------------------------------------------------------------------------------------
// Places

const root = repoRoot;
export const cli = path.join(root, 'dist', 'cli.js');
const fakeWrapper = path.join(root, 'test', 'helpers', 'fake-nvidia-smi-bin', 'nvidia-smi');
const fakeScript = path.join(root, 'test', 'helpers', 'fake-nvidia-smi.mjs');
/** Four GPUs: the real captures in ../shared when present, else the project's fixtures. */
const captures = samples.captures.map((name) => samplePath(name));

export const log = (text: string) => process.stderr.write(`bench: ${text}\n`);

// ---------------------------------------------------------------------------------------------
// The lab's extra pieces: fake nvidia-smi, a blob server, an ssh_config for the shaped path

export const installFake = async (binDir: string, logFile: string) => {
	await copyFile(fakeWrapper, path.join(binDir, 'nvidia-smi'));
	const values: Record<string, string> = {
		FAKE_NVIDIA_SMI_NODE: process.execPath,
		FAKE_NVIDIA_SMI_SCRIPT: fakeScript,
		FAKE_NVIDIA_SMI_ID: binDir,
		FAKE_NVIDIA_SMI_CAPTURES: captures.join(','),
		FAKE_NVIDIA_SMI_MODE: 'replay',
		FAKE_NVIDIA_SMI_STATE: 'cycle',
		FAKE_NVIDIA_SMI_INVALID: '',
		FAKE_NVIDIA_SMI_PID_MAP: '',
		FAKE_NVIDIA_SMI_LOG: logFile,
	};
	const quote = (value: string) => `'${value.replaceAll("'", `'\\''`)}'`;
	await writeFile(
		path.join(binDir, 'fake-nvidia-smi.env'),
		Object.entries(values)
			.map(([key, value]) => `${key}=${quote(value)}; export ${key}\n`)
			.join(''),
	);
};

/** HTTP on the GPU host's loopback: `/blob?bytes=N` streams N bytes of random data. */
export const startBlobServer = async (): Promise<{port: number; close(): Promise<void>}> => {
	const chunk = randomBytes(1024 * 1024);
	const server = http.createServer((request, response) => {
		const url = new URL(request.url ?? '/', 'http://x');
		const total = Number(url.searchParams.get('bytes') ?? 0);
		response.writeHead(200, {'content-type': 'application/octet-stream', 'content-length': total});
		let left = total;
		const pump = () => {
			while (left > 0) {
				const part = left >= chunk.length ? chunk : chunk.subarray(0, left);
				left -= part.length;
				if (!response.write(part)) {
					response.once('drain', pump);
					return;
				}
			}
			response.end();
		};
		pump();
	});
	await new Promise<void>((resolve) => server.listen({host: '127.0.0.1', port: 0}, resolve));
	return {
		port: (server.address() as net.AddressInfo).port,
		async close() {
			server.closeAllConnections();
			await new Promise<void>((resolve) => server.close(() => resolve()));
		},
	};
};

/** An ssh_config with `relay-<name>` (at `port`) and `gpu-<name>` (ProxyJump it) per path. */
export const writeSshConfig = async (
	lab: Lab,
	dir: string,
	paths: Record<string, number>,
	alive: {interval: number; count: number},
): Promise<{file: string; knownHosts: string}> => {
	const knownHosts = path.join(dir, 'known_hosts');
	const base = await readFile(lab.knownHosts, 'utf8');
	const extra = Object.values(paths)
		.map((port) => `[127.0.0.1]:${port} ${lab.relay.hostKeyPub}\n`)
		.join('');
	await writeFile(knownHosts, base + extra, {mode: 0o600});
	const common = [
		...sshClientOptions(lab.clientKey, knownHosts, alive),
		'  ExitOnForwardFailure yes',
		'  LogLevel ERROR',
	];
	const lines: string[] = [];
	for (const [name, port] of Object.entries(paths)) {
		lines.push(`Host relay-${name}`, '  HostName 127.0.0.1', `  Port ${port}`, ...common);
		lines.push(
			`Host gpu-${name}`,
			'  HostName localhost',
			`  Port ${lab.relayPort}`,
			`  ProxyJump relay-${name}`,
			...common,
		);
	}
	const file = path.join(dir, `ssh_config-${alive.interval}x${alive.count}`);
	await writeFile(file, lines.join('\n') + '\n', {mode: 0o600});
	return {file, knownHosts};
};

// ---------------------------------------------------------------------------------------------
// Processes under test

export type Gpujup = {
	readonly child: ChildProcess;
	readonly lines: Array<Record<string, unknown>>;
	/** `promise`, or a rejection as soon as gpujup exits (a crash never reads as "slow"). */
	alive<T>(promise: Promise<T>): Promise<T>;
	stop(): Promise<void>;
};

export const startGpujup = (args: readonly string[], env: NodeJS.ProcessEnv): Gpujup => {
	const child = spawn(cli, args, {env, stdio: ['ignore', 'pipe', 'pipe']});
	const lines: Array<Record<string, unknown>> = [];
	let pending = '';
	let stderr = '';
	child.stdout!.setEncoding('utf8');
	child.stdout!.on('data', (chunk: string) => {
		pending += chunk;
		for (let nl = pending.indexOf('\n'); nl !== -1; nl = pending.indexOf('\n')) {
			const line = pending.slice(0, nl);
			pending = pending.slice(nl + 1);
			try {
				if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
			} catch {
				// Not JSON: ignore.
			}
		}
	});
	child.stderr!.setEncoding('utf8');
	child.stderr!.on('data', (chunk: string) => {
		stderr = (stderr + chunk).slice(-4000);
	});
	let stopping = false;
	const exited = new Promise<never>((_resolve, reject) => {
		child.on('exit', (code, signal) => {
			if (!stopping) reject(new Error(`gpujup exited (${code ?? signal}): ${stderr}`));
		});
	});
	exited.catch(() => undefined);
	return {
		child,
		lines,
		alive: async (promise) => Promise.race([promise, exited]),
		async stop() {
			stopping = true;
			await stopChild(child, {graceMs: 5000});
		},
	};
};

export const hopState = (proc: Gpujup, hop: string): string | undefined =>
	proc.lines.findLast((line) => line['type'] === 'hop' && line['hop'] === hop)?.['state'] as
		string | undefined;

export const bothReady = (proc: Gpujup) =>
	hopState(proc, 'relay') === 'ready' && hopState(proc, 'host') === 'ready';

/** Download `bytes` from the blob server through `port`; MB/s (10^6 bytes). */
export const download = async (port: number, bytes: number): Promise<number> =>
	new Promise((resolve, reject) => {
		const started = process.hrtime.bigint();
		const request = http.get(
			{host: '127.0.0.1', port, path: `/blob?bytes=${bytes}`, agent: false},
			(response) => {
				let got = 0;
				response.on('data', (chunk: Buffer) => {
					got += chunk.length;
				});
				response.on('end', () => {
					const seconds = Number(process.hrtime.bigint() - started) / 1e9;
					if (got === bytes) resolve(bytes / 1e6 / seconds);
					else reject(new Error(`download through ${port}: ${got} of ${bytes} bytes`));
				});
				response.on('error', reject);
			},
		);
		request.setTimeout(300_000, () => request.destroy(new Error('download timed out')));
		request.on('error', reject);
	});

/** Round trips of `cells` tiny cells in one kernel through `port`, in ms. */
export const cellRoundTrips = async (
	port: number,
	token: string,
	cells: number,
): Promise<number[]> => {
	const base = `http://127.0.0.1:${port}/`;
	const headers = {authorization: `token ${token}`, 'content-type': 'application/json'};
	const created = await fetch(`${base}api/kernels`, {
		method: 'POST',
		headers,
		body: JSON.stringify({name: 'python3'}),
	});
	if (!created.ok) throw new Error(`POST api/kernels: ${created.status}`);
	const {id} = (await created.json()) as {id: string};
	const session = randomUUID();
	const ws = new WebSocket(
		`ws://127.0.0.1:${port}/api/kernels/${id}/channels?session_id=${session}`,
		{
			headers: {authorization: `token ${token}`},
		},
	);
	try {
		await new Promise<void>((resolve, reject) => {
			ws.once('open', () => resolve());
			ws.once('error', reject);
		});
		const execute = async (code: string): Promise<number> =>
			new Promise((resolve, reject) => {
				const msgId = randomUUID();
				let replied = false;
				let idle = false;
				const started = process.hrtime.bigint();
				const timer = setTimeout(() => reject(new Error('cell timed out')), 60_000);
				const onMessage = (data: WebSocket.RawData, isBinary: boolean) => {
					if (isBinary) return;
					const message = JSON.parse(String(data)) as {
						header: {msg_type: string};
						parent_header: {msg_id?: string};
						content: {execution_state?: string};
					};
					if (message.parent_header.msg_id !== msgId) return;
					if (message.header.msg_type === 'execute_reply') replied = true;
					if (message.header.msg_type === 'status' && message.content.execution_state === 'idle')
						idle = true;
					if (replied && idle) {
						clearTimeout(timer);
						ws.off('message', onMessage);
						resolve(Number(process.hrtime.bigint() - started) / 1e6);
					}
				};
				ws.on('message', onMessage);
				ws.send(JSON.stringify(executeRequest(code, session, msgId, 'bench')));
			});
		// The first cell pays for the kernel's warm-up; it is not counted.
		await execute('1');
		const times: number[] = [];
		for (let i = 0; i < cells; i++) times.push(await execute(`${i} + 1`));
		return times;
	} finally {
		ws.terminate();
		await fetch(`${base}api/kernels/${id}`, {method: 'DELETE', headers}).catch(() => undefined);
	}
};

// ---------------------------------------------------------------------------------------------
// The lab, set up once for every scenario

export type BenchLab = {
	readonly lab: Lab;
	readonly scratch: string;
	readonly smiLog: string;
	readonly token: string;
	readonly jupyterPort: number;
	readonly blob: {readonly port: number};
	/**
	 * The relay's sshd as seen through each path: direct, shaped (200 Mbit/s, 20 ms RTT), far
	 * (1 Gbit/s, 100 ms RTT), dead.
	 */
	readonly paths: {
		readonly direct: number;
		readonly shaped: number;
		readonly far: number;
		readonly dead: number;
	};
	readonly shaped: FaultProxy;
	readonly dead: FaultProxy;
	/** ServerAlive 5 × 3 and 1 × 3. */
	readonly ssh: {file: string; knownHosts: string};
	readonly sshFast: {file: string; knownHosts: string};
	/** lab.env() with a state dir per launch: measured launches never meet a previous one's socket. */
	gpujupEnv(): NodeJS.ProcessEnv;
	connectArgs(
		relayPort: number,
		knownHosts: string,
		localPort: number,
		extra?: readonly string[],
		keepalive?: readonly string[],
	): string[];
	startOpenSsh(
		host: string,
		config: string,
		forwards: Array<[number, number]>,
	): Promise<ChildProcess>;
	/** Undo everything, last started first. */
	dispose(): Promise<void>;
};

export async function startBenchLab(): Promise<BenchLab> {
	const cleanups: Array<() => Promise<unknown>> = [];
	const dispose = async () => {
		for (const cleanup of cleanups)
			await cleanup().catch((error: unknown) => log(`cleanup: ${String(error)}`));
	};
	try {
		const scratch: TempDir = await tempDir('bench');
		cleanups.push(async () => scratch.dispose());
		const bin = path.join(scratch.path, 'bin');
		await mkdir(bin, {recursive: true});
		const smiLog = path.join(scratch.path, 'nvidia-smi.log');
		await installFake(bin, smiLog);

		log(`nvidia-smi samples: ${samples.label}`);
		log('starting the OpenSSH lab (relay + GPU host sshd, seed ssh -R)…');
		const lab = await startLab({hostEnvPath: bin});
		cleanups.unshift(async () => lab.dispose());
		const token = randomBytes(16).toString('hex');
		const jupyterPort = await freePort();
		const notebooks = path.join(scratch.path, 'nb');
		await mkdir(notebooks, {recursive: true});
		const jupyter: RunningJupyter = await startJupyter({
			port: jupyterPort,
			token,
			dir: notebooks,
			env: lab.gpuEnv(),
		});
		cleanups.unshift(async () => jupyter.dispose());
		const blob = await startBlobServer();
		cleanups.unshift(async () => blob.close());
		const shaped: FaultProxy = await startFaultProxy({targetPort: lab.relay.port});
		cleanups.unshift(async () => shaped.dispose());
		// ~200 Mbit/s each way, 10 ms each way = 20 ms RTT.
		shaped.throttle(25_000_000);
		shaped.delay(10);
		// 1 Gbit/s each way, 50 ms each way = 100 ms RTT; it holds more than the 6.25 MB in flight.
		const farProxy: FaultProxy = await startFaultProxy({
			targetPort: lab.relay.port,
			holdBytes: 32 * 1024 * 1024,
		});
		cleanups.unshift(async () => farProxy.dispose());
		farProxy.throttle(125_000_000);
		farProxy.delay(50);
		const dead: FaultProxy = await startFaultProxy({targetPort: lab.relay.port});
		cleanups.unshift(async () => dead.dispose());

		const paths = {
			direct: lab.relay.port,
			shaped: shaped.port,
			far: farProxy.port,
			dead: dead.port,
		};
		const ssh = await writeSshConfig(lab, scratch.path, paths, {interval: 5, count: 3});
		const sshFast = await writeSshConfig(lab, scratch.path, paths, {interval: 1, count: 3});

		let stateCounter = 0;
		return {
			lab,
			scratch: scratch.path,
			smiLog,
			token,
			jupyterPort,
			blob,
			paths,
			shaped,
			dead,
			ssh,
			sshFast,
			gpujupEnv() {
				const env = lab.env();
				env.XDG_STATE_HOME = path.join(scratch.path, `state-${++stateCounter}`);
				return env;
			},
			connectArgs: (
				relayPort,
				knownHosts,
				localPort,
				extra = [],
				keepalive = ['--keepalive', '5', '--keepalive-count', '3'],
			) => [
				'connect',
				'--no-tui',
				'--relay',
				`root@127.0.0.1:${relayPort}`,
				'--relay-port',
				String(lab.relayPort),
				'--jupyter-port',
				String(jupyterPort),
				'--local-port',
				String(localPort),
				'-i',
				lab.clientKey,
				'--known-hosts',
				knownHosts,
				...keepalive,
				...extra,
			],
			async startOpenSsh(host, config, forwards) {
				return lab.spawnSsh([
					'-N',
					...forwards.flatMap(([local, remote]) => [
						'-L',
						`127.0.0.1:${local}:127.0.0.1:${remote}`,
					]),
					'-F',
					config,
					host,
				]);
			},
			dispose,
		};
	} catch (error) {
		await dispose();
		throw error;
	}
}
