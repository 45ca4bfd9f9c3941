/**
 * The bench's scenarios, each measured side by side with its OpenSSH anchor in the same run. Each
 * one takes the lab and the settings and gives its rows of the table.
 */
import {execFileSync, type ChildProcess} from 'node:child_process';
import {readFile, writeFile} from 'node:fs/promises';
import path from 'node:path';
import process from 'node:process';
import {jupyterAnswers} from '../test/helpers/jupyter.js';
import {samples} from '../test/helpers/nvidia-smi-samples.js';
import {freePort} from '../test/helpers/ports.js';
import {stopChild} from '../test/helpers/proc.js';
import {startTmux} from '../test/helpers/tmux.js';
import {waitFor} from '../test/helpers/wait-for.js';
import {
	bothReady,
	cellRoundTrips,
	cli,
	download,
	hopState,
	log,
	startGpujup,
	type BenchLab,
} from './lab.js';
import {fmt, median, percentile, type Row} from './report.js';

export type Settings = {
	readonly runs: number;
	readonly quick: boolean;
	readonly sizes: {
		readonly loopback: number;
		readonly shaped: number;
		readonly far: number;
		readonly cells: number;
		readonly idleSeconds: number;
		/** When the steady idle window starts, counted from the dashboard showing its GPUs. */
		readonly idleSteadyFromSeconds: number;
	};
};

type PathName = keyof BenchLab['paths'];

/** One throughput row: `bytes` through gpujup's forward and OpenSSH's `ssh -J -L` on one path. */
async function throughputOn(
	b: BenchLab,
	s: Settings,
	path: {name: string; key: PathName; bytes: number; target: string},
): Promise<Row> {
	const {paths, ssh, blob, gpujupEnv, connectArgs, startOpenSsh} = b;
	const {name, key, bytes} = path;
	log(`throughput, ${name}…`);
	const gPort = await freePort();
	const g = startGpujup(
		connectArgs(paths[key], ssh.knownHosts, 0, ['--forward', `${gPort}:${blob.port}`]),
		gpujupEnv(),
	);
	const oPort = await freePort();
	const o = await startOpenSsh(`gpu-${key}`, ssh.file, [[oPort, blob.port]]);
	try {
		await g.alive(waitFor(() => bothReady(g), {timeoutMs: 90_000, message: 'gpujup ready'}));
		await g.alive(waitFor(async () => (await download(gPort, 1000)) > 0, {timeoutMs: 60_000}));
		await waitFor(async () => (await download(oPort, 1000)) > 0, {timeoutMs: 60_000});
		const gRates: number[] = [];
		const oRates: number[] = [];
		for (let run = 0; run < s.runs; run++) {
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
		return {
			what: `forward throughput, two hops, ${name} (${bytes / 1e6} MB, MB/s)`,
			gpujup: fmt(gm),
			anchor: `${fmt(om)} (ssh -J -L)`,
			ratio: `${fmt(gm / om, 2)}×`,
			target: path.target,
		};
	} finally {
		await g.stop();
		await stopChild(o, {graceMs: 2000});
	}
}

/** Forward throughput, loopback and shaped (200 Mbit/s, 20 ms RTT). */
async function throughput(b: BenchLab, s: Settings): Promise<Row[]> {
	const rows: Row[] = [];
	rows.push(
		await throughputOn(b, s, {
			name: 'loopback',
			key: 'direct',
			bytes: s.sizes.loopback,
			target: '≥ 1.0×',
		}),
		await throughputOn(b, s, {
			name: 'shaped 200 Mbit/s, 20 ms RTT',
			key: 'shaped',
			bytes: s.sizes.shaped,
			target: '≥ 1.0×',
		}),
	);
	return rows;
}

/**
 * Forward throughput over a far relay (a laptop far from its relay): shaped to 1 Gbit/s with
 * 100 ms RTT, where the receive window shows. OpenSSH's 2 MiB channel window caps it at about
 * 2 MiB per round trip (≈ 21 MB/s); gpujup widens its own.
 */
async function far(b: BenchLab, s: Settings): Promise<Row[]> {
	return [
		await throughputOn(b, s, {
			name: 'far relay, shaped 1 Gbit/s, 100 ms RTT',
			key: 'far',
			bytes: s.sizes.far,
			target: '≥ 2× (OpenSSH: 2 MiB window per RTT ≈ 21 MB/s)',
		}),
	];
}

/** Time to ready: launch to the first Jupyter HTTP answer through the forward. */
async function ready(b: BenchLab, s: Settings): Promise<Row[]> {
	const {paths, ssh, token, jupyterPort, gpujupEnv, connectArgs, startOpenSsh} = b;
	const rows: Row[] = [];
	log('time to ready…');
	{
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
		for (let run = 0; run < s.runs; run++) {
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

	return rows;
}

/** Notebook cell round trips through the forward. */
async function cells(b: BenchLab, s: Settings): Promise<Row[]> {
	const {paths, ssh, token, jupyterPort, gpujupEnv, connectArgs, startOpenSsh} = b;
	const rows: Row[] = [];
	log('notebook round trips…');
	{
		const gPort = await freePort();
		const g = startGpujup(connectArgs(paths.direct, ssh.knownHosts, gPort), gpujupEnv());
		const oPort = await freePort();
		const o = await startOpenSsh('gpu-direct', ssh.file, [[oPort, jupyterPort]]);
		try {
			await g.alive(waitFor(async () => jupyterAnswers(gPort, token), {timeoutMs: 90_000}));
			await waitFor(async () => jupyterAnswers(oPort, token), {timeoutMs: 90_000});
			const gAll: number[] = [];
			const oAll: number[] = [];
			for (let run = 0; run < s.runs; run++) {
				gAll.push(...(await cellRoundTrips(gPort, token, s.sizes.cells)));
				oAll.push(...(await cellRoundTrips(oPort, token, s.sizes.cells)));
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

	return rows;
}

/** A dead link: declared lost, then back. */
async function dead(b: BenchLab, s: Settings): Promise<Row[]> {
	const {paths, ssh, sshFast, token, jupyterPort, dead, gpujupEnv, connectArgs, startOpenSsh} = b;
	const rows: Row[] = [];
	log('dead link detection and recovery…');
	{
		const gLost: number[] = [];
		const gBack: number[] = [];
		const oLost: number[] = [];
		const oBack: number[] = [];
		for (let run = 0; run < s.runs; run++) {
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

	return rows;
}

/** The host hop after the reverse tunnel returns. */
async function tunnel(b: BenchLab, s: Settings): Promise<Row[]> {
	const {paths, ssh, lab, gpujupEnv, connectArgs} = b;
	const rows: Row[] = [];
	log('host hop ready after the tunnel returns…');
	{
		const returns: number[] = [];
		const g = startGpujup(connectArgs(paths.direct, ssh.knownHosts, 0), gpujupEnv());
		const hostAttempt = () =>
			Number(
				g.lines.findLast((line) => line['type'] === 'hop' && line['hop'] === 'host')?.['attempt'] ??
					0,
			);
		try {
			await g.alive(waitFor(() => bothReady(g), {timeoutMs: 90_000, message: 'gpujup ready'}));
			for (let run = 0; run < s.runs; run++) {
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

	return rows;
}

/** A dashboard's idle cost over a window: CPU (% of one core), max RSS, nvidia-smi started. */
async function idleCost(
	pid: number,
	seconds: number,
	smiLog: string,
): Promise<{cpu: number; rssMb: number; smiStarted: number; seconds: number}> {
	const ticks = async () => {
		const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
		const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
		// utime and stime are fields 14 and 15 of the whole line (11 and 12 after the name).
		return Number(fields[11]) + Number(fields[12]);
	};
	const rss = async () =>
		Number(/^VmRSS:\s+(\d+)/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024;
	const hz = Number(execFileSync('getconf', ['CLK_TCK'], {encoding: 'utf8'}).trim()) || 100;
	const smiBefore = (await readFile(smiLog, 'utf8').catch(() => '')).split('\n').length;
	const t0 = await ticks();
	const s0 = process.hrtime.bigint();
	const rssSamples: number[] = [];
	for (let i = 0; i < seconds; i++) {
		await new Promise((resolve) => setTimeout(resolve, 1000));
		rssSamples.push(await rss());
	}
	const elapsed = Number(process.hrtime.bigint() - s0) / 1e9;
	return {
		cpu: (((await ticks()) - t0) / hz / elapsed) * 100,
		rssMb: Math.max(...rssSamples),
		smiStarted: (await readFile(smiLog, 'utf8').catch(() => '')).split('\n').length - smiBefore,
		seconds: elapsed,
	};
}

/** What the idle rows of one scenario name, and the targets they are read against. */
type IdleSubject = {
	/** `dashboard`, `fleet`. */
	readonly name: string;
	/** `4 GPUs at 1 Hz`. */
	readonly load: string;
	readonly cpuTarget: string;
	readonly rssTarget: string;
	/** GPU hosts sampled, each one nvidia-smi per sample in systeminformation's way. */
	readonly hosts: number;
};

/**
 * The idle rows of a dashboard that just showed its GPUs, from two windows: the first, from 3 s
 * on, while V8 is still optimizing what a frame runs (its worker thread compiles most of the time
 * then), and the steady one from `idleSteadyFromSeconds` on, which is what a dashboard left open
 * costs. RSS is the most of either; nvidia-smi starts are the steady window's.
 */
async function idleRows(
	pid: number,
	s: Settings,
	smiLog: string,
	subject: IdleSubject,
): Promise<Row[]> {
	const shown = Date.now();
	await new Promise((resolve) => setTimeout(resolve, 3000));
	const first = await idleCost(pid, s.sizes.idleSeconds, smiLog);
	const steadyAt = shown + s.sizes.idleSteadyFromSeconds * 1000;
	await new Promise((resolve) => setTimeout(resolve, Math.max(0, steadyAt - Date.now())));
	const steady = await idleCost(pid, s.sizes.idleSeconds, smiLog);
	const {name, load, hosts} = subject;
	return [
		{
			what: `${name} idle CPU, ${load}, steady (% of one core, ${Math.round(steady.seconds)} s from ${s.sizes.idleSteadyFromSeconds} s on)`,
			gpujup: fmt(steady.cpu, 2),
			anchor: '—',
			ratio: '—',
			target: subject.cpuTarget,
		},
		{
			what: `${name} idle CPU in its first ${Math.round(first.seconds)} s (V8 still optimizing)`,
			gpujup: fmt(first.cpu, 2),
			anchor: '—',
			ratio: '—',
			target: '—',
		},
		{
			what: `${name} RSS (MB, max over both windows)`,
			gpujup: fmt(Math.max(first.rssMb, steady.rssMb), 0),
			anchor: '—',
			ratio: '—',
			target: subject.rssTarget,
		},
		{
			what:
				hosts === 1
					? 'nvidia-smi started on the GPU host during the steady window'
					: `nvidia-smi started on the GPU hosts during the steady window (${hosts} hosts)`,
			gpujup: String(steady.smiStarted),
			anchor: `${Math.round(steady.seconds * 1.5 * hosts)} (one per sample, as systeminformation)`,
			ratio: '—',
			target: 'long-lived: ≈ 0',
		},
	];
}

/** The pid the tmux pane's `sh` wrote before it exec'd the dashboard. */
async function panePid(pidFile: string): Promise<number> {
	return Number(
		(await waitFor(async () => (await readFile(pidFile, 'utf8').catch(() => '')).trim())) ||
			Number.NaN,
	);
}

/** The dashboard's idle cost in tmux, 4 GPUs at 1 Hz. */
async function idle(b: BenchLab, s: Settings): Promise<Row[]> {
	const {paths, ssh, smiLog, gpujupEnv, connectArgs} = b;
	const rows: Row[] = [];
	log('dashboard idle cost (tmux, 4 GPUs at 1 Hz)…');
	{
		const pidFile = path.join(b.scratch, 'dashboard.pid');
		const args = connectArgs(paths.direct, ssh.knownHosts, 0).filter((arg) => arg !== '--no-tui');
		const tmux = await startTmux(['sh', '-c', 'echo $$ > "$0"; exec "$@"', pidFile, cli, ...args], {
			env: gpujupEnv(),
			width: 160,
			height: 48,
		});
		try {
			const pid = await panePid(pidFile);
			// Four GPUs on screen: the data-centre GPU, its MIG twin, the desktop and the Windows one.
			await tmux.waitForText(samples.desktop.model, 120_000).catch(async () => {
				throw new Error(`dashboard never showed the GPUs:\n${await tmux.capture()}`);
			});
			rows.push(
				...(await idleRows(pid, s, smiLog, {
					name: 'dashboard',
					load: '4 GPUs at 1 Hz',
					cpuTarget: '< 2 %',
					rssTarget: '< 100 MB',
					hosts: 1,
				})),
			);
		} finally {
			await tmux.dispose();
		}
	}
	return rows;
}

/**
 * Idle with a fleet (3 hosts × 4 GPUs): the fleet view in tmux over one relay connection, three
 * `[fleet.*]` hosts (the lab's one GPU host behind the relay port three times: three chain tails,
 * three GPU streams of the four captured GPUs each).
 */
async function fleetIdle(b: BenchLab, s: Settings): Promise<Row[]> {
	const {lab, paths, ssh, smiLog, gpujupEnv, jupyterPort} = b;
	log('fleet idle cost (tmux, 3 hosts × 4 GPUs at 1 Hz)…');
	const configFile = path.join(b.scratch, 'fleet.toml');
	await writeFile(
		configFile,
		[
			`relay = "root@127.0.0.1:${paths.direct}"`,
			`identity = "${lab.clientKey}"`,
			`known-hosts = "${ssh.knownHosts}"`,
			`jupyter-port = ${jupyterPort}`,
			'local-port = 0',
			...['gpu-a', 'gpu-b', 'gpu-c'].flatMap((name) => [
				`[fleet.${name}]`,
				`relay-port = ${lab.relayPort}`,
			]),
			'',
		].join('\n'),
	);
	const pidFile = path.join(b.scratch, 'fleet.pid');
	const tmux = await startTmux(
		['sh', '-c', 'echo $$ > "$0"; exec "$@"', pidFile, cli, '--config', configFile],
		{env: gpujupEnv(), width: 160, height: 48},
	);
	try {
		const pid = await panePid(pidFile);
		await tmux
			.waitForScreen((screen) => (screen.match(/ 4× /g) ?? []).length === 3, {
				timeoutMs: 120_000,
				what: 'three hosts with four GPUs each',
			})
			.catch(async () => {
				throw new Error(`the fleet view never showed 3 × 4 GPUs:\n${await tmux.capture()}`);
			});
		return await idleRows(pid, s, smiLog, {
			name: 'fleet',
			load: '3 hosts × 4 GPUs at 1 Hz',
			cpuTarget: '< 3 %',
			rssTarget: '< 120 MB',
			hosts: 3,
		});
	} finally {
		await tmux.dispose();
	}
}

/** Every scenario by name, in the order the table lists them. */
export const scenarios = {
	throughput,
	far,
	ready,
	notebook: cells,
	'dead-link': dead,
	'tunnel-return': tunnel,
	idle,
	'fleet-idle': fleetIdle,
} as const;
