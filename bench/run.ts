/**
 * `npm run bench`: gpujup side by side with the OpenSSH chain it replaces, in the same run, on a
 * real OpenSSH lab (relay + GPU host sshd on loopback, the seed's `ssh -R`), Debian's Jupyter and
 * the replaying fake nvidia-smi. Prints a Markdown table of medians; each row compares gpujup with
 * its anchor measured in the same run, as a ratio.
 *
 *   node dist/bench/run.js [--runs N] [--quick] [--only NAME[,NAME…]]
 *
 * NAME: throughput, ready, notebook, dead-link, tunnel-return, idle (default: all of them).
 *
 * Not a test: nothing here passes or fails; the numbers go into the README.
 */
import {spawn, spawnSync, execFileSync, type ChildProcess} from 'node:child_process';
import {randomBytes, randomUUID} from 'node:crypto';
import {copyFile, mkdir, readFile, writeFile} from 'node:fs/promises';
import {existsSync} from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';
import WebSocket from 'ws';
import {startFaultProxy, type FaultProxy} from '../test/helpers/fault-proxy.js';
import {executeRequest, startJupyter, type RunningJupyter} from '../test/helpers/jupyter.js';
import {samplePath, samples, repoRoot} from '../test/helpers/nvidia-smi-samples.js';
import {startLab, type Lab} from '../test/helpers/openssh-lab.js';
import {freePort, tempDir, type TempDir} from '../test/helpers/ports.js';
import {stopChild} from '../test/helpers/proc.js';
import {startTmux} from '../test/helpers/tmux.js';
import {waitFor} from '../test/helpers/wait-for.js';

// ---------------------------------------------------------------------------------------------
// Options and places

const scenarios = [
	'throughput',
	'ready',
	'notebook',
	'dead-link',
	'tunnel-return',
	'idle',
] as const;
type Scenario = (typeof scenarios)[number];

type Options = {
	readonly runs: number;
	readonly quick: boolean;
	/** `--only`: the scenarios to run; null runs them all. */
	readonly only: ReadonlySet<Scenario> | null;
};

const parseOptions = (argv: readonly string[]): Options => {
	let runs: number | undefined;
	let quick = false;
	let only: Set<Scenario> | null = null;
	const addOnly = (list: string | undefined) => {
		for (const name of (list ?? '').split(',')) {
			if (!scenarios.includes(name as Scenario)) {
				process.stderr.write(`bench: --only takes ${scenarios.join(', ')}; got "${name}"\n`);
				process.exit(2);
			}
			(only ??= new Set()).add(name as Scenario);
		}
	};
	for (let i = 0; i < argv.length; i++) {
		const arg = argv[i]!;
		if (arg === '--quick') quick = true;
		else if (arg === '--runs') runs = Number(argv[++i]);
		else if (arg.startsWith('--runs=')) runs = Number(arg.slice('--runs='.length));
		else if (arg === '--only') addOnly(argv[++i]);
		else if (arg.startsWith('--only=')) addOnly(arg.slice('--only='.length));
		else if (arg === '--help' || arg === '-h') {
			process.stdout.write(
				`Usage: npm run bench -- [--runs N] [--quick] [--only ${scenarios.join('|')}[,…]]\n`,
			);
			process.exit(0);
		} else {
			process.stderr.write(`bench: unknown argument ${arg}\n`);
			process.exit(2);
		}
	}
	if (runs !== undefined && !(Number.isInteger(runs) && runs > 0)) {
		process.stderr.write('bench: --runs wants a positive integer\n');
		process.exit(2);
	}
	return {runs: runs ?? (quick ? 2 : 5), quick, only};
};

const root = repoRoot;
const cli = path.join(root, 'dist', 'cli.js');
const fakeWrapper = path.join(root, 'test', 'helpers', 'fake-nvidia-smi-bin', 'nvidia-smi');
const fakeScript = path.join(root, 'test', 'helpers', 'fake-nvidia-smi.mjs');
/** Four GPUs: the real captures in ../shared when present, else the project's fixtures. */
const captures = samples.captures.map((name) => samplePath(name));

const log = (text: string) => process.stderr.write(`bench: ${text}\n`);

// ---------------------------------------------------------------------------------------------
// Statistics

const median = (values: readonly number[]): number => {
	const sorted = [...values].sort((a, b) => a - b);
	if (sorted.length === 0) return Number.NaN;
	const mid = Math.floor(sorted.length / 2);
	return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

const percentile = (values: readonly number[], p: number): number => {
	const sorted = [...values].sort((a, b) => a - b);
	if (sorted.length === 0) return Number.NaN;
	return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
};

// ---------------------------------------------------------------------------------------------
// The lab's extra pieces: fake nvidia-smi, a blob server, an ssh_config for the shaped path

const installFake = async (binDir: string, logFile: string) => {
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
const startBlobServer = async (): Promise<{port: number; close(): Promise<void>}> => {
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
const writeSshConfig = async (
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
		'  User root',
		`  IdentityFile ${lab.clientKey}`,
		'  IdentitiesOnly yes',
		'  IdentityAgent none',
		`  UserKnownHostsFile ${knownHosts}`,
		'  GlobalKnownHostsFile /dev/null',
		'  StrictHostKeyChecking yes',
		'  UpdateHostKeys no',
		'  BatchMode yes',
		'  ConnectTimeout 15',
		`  ServerAliveInterval ${alive.interval}`,
		`  ServerAliveCountMax ${alive.count}`,
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

type Gpujup = {
	readonly child: ChildProcess;
	readonly lines: Array<Record<string, unknown>>;
	/** `promise`, or a rejection as soon as gpujup exits (a crash never reads as "slow"). */
	alive<T>(promise: Promise<T>): Promise<T>;
	stop(): Promise<void>;
};

const startGpujup = (args: readonly string[], env: NodeJS.ProcessEnv): Gpujup => {
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

const hopState = (proc: Gpujup, hop: string): string | undefined =>
	proc.lines.findLast((line) => line['type'] === 'hop' && line['hop'] === hop)?.['state'] as
		string | undefined;

const bothReady = (proc: Gpujup) =>
	hopState(proc, 'relay') === 'ready' && hopState(proc, 'host') === 'ready';

const jupyterAnswers = async (port: number, token: string): Promise<boolean> => {
	const response = await fetch(`http://127.0.0.1:${port}/api/status`, {
		headers: {authorization: `token ${token}`},
		signal: AbortSignal.timeout(5000),
	}).catch(() => undefined);
	await response?.arrayBuffer().catch(() => undefined);
	return response?.status === 200;
};

/** Download `bytes` from the blob server through `port`; MB/s (10^6 bytes). */
const download = async (port: number, bytes: number): Promise<number> =>
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
const cellRoundTrips = async (port: number, token: string, cells: number): Promise<number[]> => {
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
// The bench

type Row = {
	readonly what: string;
	readonly gpujup: string;
	readonly anchor: string;
	readonly ratio: string;
	readonly target: string;
};

const fmt = (value: number, digits = 1) => (Number.isFinite(value) ? value.toFixed(digits) : 'n/a');

async function main(): Promise<void> {
	const options = parseOptions(process.argv.slice(2));
	const want = (name: Scenario) => options.only === null || options.only.has(name);
	const sizes = options.quick
		? {loopback: 32e6, shaped: 8e6, cells: 20, idleSeconds: 8}
		: {loopback: 128e6, shaped: 24e6, cells: 50, idleSeconds: 20};
	if (!existsSync(cli)) throw new Error(`bench: ${cli} is missing; run npm run build`);

	const cleanups: Array<() => Promise<unknown>> = [];
	const scratch: TempDir = await tempDir('bench');
	cleanups.push(async () => scratch.dispose());
	const rows: Row[] = [];
	try {
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
		const dead: FaultProxy = await startFaultProxy({targetPort: lab.relay.port});
		cleanups.unshift(async () => dead.dispose());

		const paths = {direct: lab.relay.port, shaped: shaped.port, dead: dead.port};
		const ssh = await writeSshConfig(lab, scratch.path, paths, {interval: 5, count: 3});
		const sshFast = await writeSshConfig(lab, scratch.path, paths, {interval: 1, count: 3});

		let stateCounter = 0;
		const gpujupEnv = () => {
			// A state dir per launch: measured launches never meet a previous one's socket.
			const env = lab.env();
			env.XDG_STATE_HOME = path.join(scratch.path, `state-${++stateCounter}`);
			return env;
		};
		const connectArgs = (
			relayPort: number,
			knownHosts: string,
			localPort: number,
			extra: readonly string[] = [],
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
		];

		const startOpenSsh = async (
			host: string,
			config: string,
			forwards: Array<[number, number]>,
		) => {
			const child = lab.spawnSsh([
				'-N',
				...forwards.flatMap(([local, remote]) => ['-L', `127.0.0.1:${local}:127.0.0.1:${remote}`]),
				'-F',
				config,
				host,
			]);
			return child;
		};

		// --- Throughput ---------------------------------------------------------------------------
		for (const [name, relayPort, bytes] of (
			[
				['loopback', paths.direct, sizes.loopback],
				['shaped 200 Mbit/s, 20 ms RTT', paths.shaped, sizes.shaped],
			] as const
		).filter(() => want('throughput'))) {
			log(`throughput, ${name}…`);
			const pathName = relayPort === paths.direct ? 'direct' : 'shaped';
			const gPort = await freePort();
			const g = startGpujup(
				connectArgs(relayPort, ssh.knownHosts, 0, ['--forward', `${gPort}:${blob.port}`]),
				gpujupEnv(),
			);
			const oPort = await freePort();
			const o = await startOpenSsh(`gpu-${pathName}`, ssh.file, [[oPort, blob.port]]);
			try {
				await g.alive(waitFor(() => bothReady(g), {timeoutMs: 90_000, message: 'gpujup ready'}));
				await g.alive(waitFor(async () => (await download(gPort, 1000)) > 0, {timeoutMs: 60_000}));
				await waitFor(async () => (await download(oPort, 1000)) > 0, {timeoutMs: 60_000});
				const gRates: number[] = [];
				const oRates: number[] = [];
				for (let run = 0; run < options.runs; run++) {
					// Alternate who goes first, so neither always gets the warmer caches.
					if (run % 2 === 0) {
						gRates.push(await download(gPort, bytes));
						oRates.push(await download(oPort, bytes));
					} else {
						oRates.push(await download(oPort, bytes));
						gRates.push(await download(gPort, bytes));
					}
				}
				const gm = median(gRates);
				const om = median(oRates);
				rows.push({
					what: `forward throughput, two hops, ${name} (${bytes / 1e6} MB, MB/s)`,
					gpujup: fmt(gm),
					anchor: `${fmt(om)} (ssh -J -L)`,
					ratio: `${fmt(gm / om, 2)}×`,
					target: '≥ 1.0×',
				});
			} finally {
				await g.stop();
				await stopChild(o, {graceMs: 2000});
			}
		}

		// --- Time to ready ------------------------------------------------------------------------
		if (want('ready')) {
			log('time to ready…');
			const gTimes: number[] = [];
			const oTimes: number[] = [];
			type Launched = {
				stop(): Promise<void>;
				alive<T>(promise: Promise<T>): Promise<T>;
			};
			const measure = async (launch: (port: number) => Promise<Launched>) => {
				const port = await freePort();
				const started = process.hrtime.bigint();
				const {stop, alive} = await launch(port);
				try {
					await alive(
						waitFor(async () => jupyterAnswers(port, token), {
							timeoutMs: 90_000,
							intervalMs: 10,
							message: `Jupyter through ${port}`,
						}),
					);
					return Number(process.hrtime.bigint() - started) / 1e6;
				} finally {
					await stop();
				}
			};
			for (let run = 0; run < options.runs; run++) {
				gTimes.push(
					await measure(async (port) => {
						return startGpujup(connectArgs(paths.direct, ssh.knownHosts, port), gpujupEnv());
					}),
				);
				oTimes.push(
					await measure(async (port) => {
						const o = await startOpenSsh('gpu-direct', ssh.file, [[port, jupyterPort]]);
						return {
							stop: async () => stopChild(o, {graceMs: 2000}),
							alive: async <T>(promise: Promise<T>) => promise,
						};
					}),
				);
			}
			const gm = median(gTimes);
			const om = median(oTimes);
			rows.push({
				what: 'time to ready: launch → first Jupyter answer through the forward (ms)',
				gpujup: fmt(gm, 0),
				anchor: `${fmt(om, 0)} (ssh -N -J -L, port polled)`,
				ratio: `${fmt(gm / om, 2)}×`,
				target: '≤ 1.2×',
			});
		}

		// --- Notebook round trip ------------------------------------------------------------------
		if (want('notebook')) {
			log('notebook round trips…');
			const gPort = await freePort();
			const g = startGpujup(connectArgs(paths.direct, ssh.knownHosts, gPort), gpujupEnv());
			const oPort = await freePort();
			const o = await startOpenSsh('gpu-direct', ssh.file, [[oPort, jupyterPort]]);
			try {
				await g.alive(waitFor(async () => jupyterAnswers(gPort, token), {timeoutMs: 90_000}));
				await waitFor(async () => jupyterAnswers(oPort, token), {timeoutMs: 90_000});
				const gAll: number[] = [];
				const oAll: number[] = [];
				for (let run = 0; run < options.runs; run++) {
					gAll.push(...(await cellRoundTrips(gPort, token, sizes.cells)));
					oAll.push(...(await cellRoundTrips(oPort, token, sizes.cells)));
				}
				for (const p of [50, 99]) {
					const gv = percentile(gAll, p);
					const ov = percentile(oAll, p);
					rows.push({
						what: `notebook cell round trip p${p} (ms, ${gAll.length} cells)`,
						gpujup: fmt(gv),
						anchor: `${fmt(ov)} (ssh -J -L)`,
						ratio: `${fmt(gv / ov, 2)}×`,
						target: '≈ 1.0×',
					});
				}
			} finally {
				await g.stop();
				await stopChild(o, {graceMs: 2000});
			}
		}

		// --- Dead link: detection and recovery ----------------------------------------------------
		if (want('dead-link')) {
			log('dead link detection and recovery…');
			const gLost: number[] = [];
			const gBack: number[] = [];
			const oLost: number[] = [];
			const oBack: number[] = [];
			for (let run = 0; run < options.runs; run++) {
				// gpujup, keepalive 1 s × 3.
				dead.setMode('pass');
				const port = await freePort();
				const g = startGpujup(
					connectArgs(
						paths.dead,
						ssh.knownHosts,
						port,
						[],
						['--keepalive', '1', '--keepalive-count', '3'],
					),
					gpujupEnv(),
				);
				try {
					await g.alive(
						waitFor(async () => bothReady(g) && (await jupyterAnswers(port, token)), {
							timeoutMs: 90_000,
						}),
					);
					const mark = g.lines.length;
					const cut = process.hrtime.bigint();
					dead.setMode('blackhole');
					await g.alive(
						waitFor(
							() =>
								g.lines
									.slice(mark)
									.some(
										(line) =>
											line['type'] === 'hop' && line['hop'] === 'relay' && line['state'] === 'lost',
									),
							{timeoutMs: 120_000, intervalMs: 10, message: 'gpujup declares the relay lost'},
						),
					);
					gLost.push(Number(process.hrtime.bigint() - cut) / 1e9);
					const back = process.hrtime.bigint();
					dead.setMode('pass');
					await g.alive(
						waitFor(async () => bothReady(g) && (await jupyterAnswers(port, token)), {
							timeoutMs: 120_000,
							intervalMs: 10,
						}),
					);
					gBack.push(Number(process.hrtime.bigint() - back) / 1e9);
				} finally {
					dead.setMode('pass');
					await g.stop();
				}

				// OpenSSH, ServerAliveInterval 1 × CountMax 3, restarted at once when it exits (autossh
				// -M 0 does that; the seed's outer loop only sleeps 1000 s when autossh itself gives up).
				const oPort = await freePort();
				let current: ChildProcess | undefined;
				let stopping = false;
				let exitedAt: bigint | undefined;
				const respawn = async () => {
					if (stopping) return;
					const child = await startOpenSsh('gpu-dead', sshFast.file, [[oPort, jupyterPort]]);
					current = child;
					child.once('exit', () => {
						exitedAt ??= process.hrtime.bigint();
						if (!stopping) setTimeout(() => void respawn(), 0);
					});
				};
				try {
					await respawn();
					await waitFor(async () => jupyterAnswers(oPort, token), {timeoutMs: 90_000});
					exitedAt = undefined;
					const cut = process.hrtime.bigint();
					dead.setMode('blackhole');
					await waitFor(() => exitedAt !== undefined, {
						timeoutMs: 120_000,
						intervalMs: 10,
						message: 'ssh notices the dead link',
					});
					oLost.push(Number(exitedAt! - cut) / 1e9);
					const back = process.hrtime.bigint();
					dead.setMode('pass');
					await waitFor(async () => jupyterAnswers(oPort, token), {
						timeoutMs: 120_000,
						intervalMs: 10,
					});
					oBack.push(Number(process.hrtime.bigint() - back) / 1e9);
				} finally {
					stopping = true;
					dead.setMode('pass');
					if (current) await stopChild(current, {graceMs: 2000});
				}
			}
			rows.push(
				{
					what: 'dead link declared lost (s), keepalive 1 s × 3',
					gpujup: fmt(median(gLost), 2),
					anchor: `${fmt(median(oLost), 2)} (ssh, ServerAlive 1 × 3)`,
					ratio: `${fmt(median(gLost) / median(oLost), 2)}×`,
					target: '≤ keepalive × count; seed 30 × 5: ≈ 30× these, ≈ 180 s',
				},
				{
					what: 'recovery after the link returns (s, to Jupyter answering)',
					gpujup: fmt(median(gBack), 2),
					anchor: `${fmt(median(oBack), 2)} (ssh respawned at once)`,
					ratio: `${fmt(median(gBack) / median(oBack), 2)}×`,
					target: '≤ 3 s; seed: up to 1000 s (outer sleep)',
				},
			);
		}

		// --- Tunnel return -------------------------------------------------------------------------
		if (want('tunnel-return')) {
			log('host hop ready after the tunnel returns…');
			const returns: number[] = [];
			const g = startGpujup(connectArgs(paths.direct, ssh.knownHosts, 0), gpujupEnv());
			const hostAttempt = () =>
				Number(
					g.lines.findLast((line) => line['type'] === 'hop' && line['hop'] === 'host')?.[
						'attempt'
					] ?? 0,
				);
			try {
				await g.alive(waitFor(() => bothReady(g), {timeoutMs: 90_000, message: 'gpujup ready'}));
				for (let run = 0; run < options.runs; run++) {
					await lab.stopReverse();
					const stopped = Date.now();
					// As after a real restart, the backoff has reached a long step (the fifth wait is 4 s).
					// A loss soon after the last ready continues the backoff where it was, waiting on the
					// reverse-port probe without new attempts: then 10 s down stands for it.
					await g.alive(
						waitFor(
							() =>
								hostAttempt() >= 5 ||
								(hopState(g, 'host') !== 'ready' && Date.now() - stopped > 10_000),
							{timeoutMs: 60_000},
						),
					);
					await lab.startReverse();
					const back = process.hrtime.bigint();
					await g.alive(waitFor(() => bothReady(g), {timeoutMs: 60_000, intervalMs: 10}));
					returns.push(Number(process.hrtime.bigint() - back) / 1e9);
				}
			} finally {
				await g.stop();
			}
			rows.push({
				what: 'host hop ready after the tunnel returns (s, ssh -R back on the relay)',
				gpujup: fmt(median(returns), 2),
				anchor: '—',
				ratio: '—',
				target: '≤ 3 s; without the probe, up to a 20 s backoff step',
			});
		}

		// --- Dashboard idle cost ------------------------------------------------------------------
		if (want('idle')) {
			log('dashboard idle cost (tmux, 4 GPUs at 1 Hz)…');
			const pidFile = path.join(scratch.path, 'dashboard.pid');
			const args = connectArgs(paths.direct, ssh.knownHosts, 0).filter((arg) => arg !== '--no-tui');
			const tmux = await startTmux(
				['sh', '-c', 'echo $$ > "$0"; exec "$@"', pidFile, cli, ...args],
				{env: gpujupEnv(), width: 160, height: 48},
			);
			try {
				const pid = Number(
					(await waitFor(async () => (await readFile(pidFile, 'utf8').catch(() => '')).trim())) ||
						Number.NaN,
				);
				// Four GPUs on screen: the H100, its MIG twin, the 4080 and the 2080.
				await tmux.waitForText(/4080/, 120_000).catch(async () => {
					throw new Error(`dashboard never showed the GPUs:\n${await tmux.capture()}`);
				});
				await new Promise((resolve) => setTimeout(resolve, 3000));
				const ticks = async () => {
					const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
					const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
					// utime and stime are fields 14 and 15 of the whole line (11 and 12 after the name).
					return Number(fields[11]) + Number(fields[12]);
				};
				const rss = async () =>
					Number(/^VmRSS:\s+(\d+)/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1]) /
					1024;
				const hz = Number(execFileSync('getconf', ['CLK_TCK'], {encoding: 'utf8'}).trim()) || 100;
				const smiBefore = (await readFile(smiLog, 'utf8').catch(() => '')).split('\n').length;
				const t0 = await ticks();
				const s0 = process.hrtime.bigint();
				const rssSamples: number[] = [];
				for (let i = 0; i < sizes.idleSeconds; i++) {
					await new Promise((resolve) => setTimeout(resolve, 1000));
					rssSamples.push(await rss());
				}
				const seconds = Number(process.hrtime.bigint() - s0) / 1e9;
				const cpu = (((await ticks()) - t0) / hz / seconds) * 100;
				const smiStarted =
					(await readFile(smiLog, 'utf8').catch(() => '')).split('\n').length - smiBefore;
				rows.push(
					{
						what: `dashboard idle CPU, 4 GPUs at 1 Hz (% of one core, ${Math.round(seconds)} s)`,
						gpujup: fmt(cpu, 2),
						anchor: '—',
						ratio: '—',
						target: '< 2 %',
					},
					{
						what: 'dashboard RSS (MB, max over the window)',
						gpujup: fmt(Math.max(...rssSamples), 0),
						anchor: '—',
						ratio: '—',
						target: '< 100 MB',
					},
					{
						what: `nvidia-smi started on the GPU host during the window`,
						gpujup: String(smiStarted),
						anchor: `${Math.round(seconds * 1.5)} (one per sample, as systeminformation)`,
						ratio: '—',
						target: 'long-lived: ≈ 0',
					},
				);
			} finally {
				await tmux.dispose();
			}
		}
	} finally {
		for (const cleanup of cleanups)
			await cleanup().catch((error: unknown) => log(`cleanup: ${String(error)}`));
	}

	// `ssh -V` prints on stderr.
	const sshVersion = spawnSync('ssh', ['-V'], {encoding: 'utf8'}).stderr.trim();
	const out = [
		`gpujup bench — ${new Date().toISOString()}, ${options.runs} run(s)${options.quick ? ', --quick' : ''}${options.only ? `, --only ${[...options.only].join(',')}` : ''}; medians`,
		`node ${process.version}, ${sshVersion || 'OpenSSH'}, ${os.cpus().length} CPU(s) ${os.cpus()[0]?.model ?? ''}`,
		'',
		'| what | gpujup | anchor (same run) | ratio | target |',
		'| --- | ---: | ---: | ---: | --- |',
		...rows.map(
			(row) => `| ${row.what} | ${row.gpujup} | ${row.anchor} | ${row.ratio} | ${row.target} |`,
		),
		'',
	];
	process.stdout.write(out.join('\n'));
}

await main().then(
	() => process.exit(0),
	(error: unknown) => {
		process.stderr.write(`bench failed: ${error instanceof Error ? error.stack : String(error)}\n`);
		process.exit(1);
	},
);
