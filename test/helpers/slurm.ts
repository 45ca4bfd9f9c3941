/**
 * A real single-node Slurm cluster on loopback, started by the test: Debian's `munged`,
 * `slurmctld` and `slurmd` (slurm-wlm 22.05 on Debian 12), each with files of the cluster's own in a
 * temp dir — munge key and socket, slurm.conf, state, spool, pid and log files — and ports from
 * {@link freePort}. Clients (`sbatch`, `squeue`, `scancel`, `scontrol`, `srun`) find it through
 * `SLURM_CONF` ({@link SlurmCluster.env}); an sshd playing the login node gives its sessions the same
 * variable (`environment="SLURM_CONF=…"` in authorized_keys, see {@link SlurmCluster.sessionEnv}).
 *
 * One node, `localhost` (127.0.0.1), with this machine's CPUs and two GPUs as a counted gres
 * without device files (`--gres=gpu:N` is scheduled and shows in the job's TRES; nothing real is
 * bound), in one partition, `gpu`. `ProctrackType=proctrack/linuxproc` and `TaskPlugin=task/none`:
 * no cgroups, so it runs in a container. Everything runs as root, as the tests do.
 *
 * slurmctld listens on every address of its port (22.05 has no bind-address setting); slurmd and
 * munged are loopback / Unix socket only. Several clusters side by side never share a file or port.
 */
import {spawn, execFile, type ChildProcess} from 'node:child_process';
import {randomBytes} from 'node:crypto';
import {chmod, mkdir, readdir, readFile, writeFile} from 'node:fs/promises';
import {existsSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {freePort, tempDir} from './ports.js';
import {killAll, stopChild, waitGone} from './proc.js';
import {waitFor} from './wait-for.js';

const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** What a Slurm client command printed and how it exited. */
export type SlurmResult = {
	readonly code: number | null;
	readonly stdout: string;
	readonly stderr: string;
};

export type SlurmCluster = {
	readonly dir: string;
	/** The cluster's slurm.conf: `SLURM_CONF` for every client. */
	readonly conf: string;
	readonly clusterName: string;
	/** The one node's Slurm name. */
	readonly node: 'localhost';
	/** The one partition (the default). */
	readonly partition: 'gpu';
	/** GPUs the node has (a counted gres). */
	readonly gpus: 2;
	readonly ctldPort: number;
	readonly slurmdPort: number;
	/** `base` (default: this process's environment) with SLURM_CONF and the system PATH. */
	env(base?: NodeJS.ProcessEnv): NodeJS.ProcessEnv;
	/** What an ssh session on a node or the login node needs to find this cluster. */
	sessionEnv(): Readonly<Record<string, string>>;
	/** Run a Slurm client (`['squeue', '-h']`); never rejects on a non-zero exit. */
	run(argv: readonly string[], options?: {timeoutMs?: number}): Promise<SlurmResult>;
	/** `scontrol update nodename=localhost state=drain reason=…`: new jobs stay PENDING. */
	drain(reason?: string): Promise<void>;
	/** Back to service: pending jobs start. */
	resume(): Promise<void>;
	/** The node's state as `sinfo` prints it (`idle`, `drained`, `mixed`, …). */
	nodeState(): Promise<string>;
	/** Cancel every job, stop every job process, slurmd, slurmctld and munged; remove the dir. */
	stop(): Promise<void>;
};

const execText = async (
	argv: readonly string[],
	env: NodeJS.ProcessEnv,
	timeoutMs = 30_000,
): Promise<SlurmResult> =>
	new Promise((resolve) => {
		const [program, ...args] = argv;
		execFile(
			program!,
			args,
			{env, timeout: timeoutMs, encoding: 'utf8', maxBuffer: 16 * 1024 * 1024},
			(error, stdout, stderr) => {
				const code =
					error === null
						? 0
						: typeof error.code === 'number'
							? error.code
							: (null as number | null);
				resolve({code, stdout, stderr});
			},
		);
	});

/** Pids of processes whose environment names this cluster's slurm.conf (job steps, their jobs). */
async function processesOf(conf: string): Promise<number[]> {
	const needle = Buffer.from(`SLURM_CONF=${conf}\0`);
	const pids: number[] = [];
	for (const name of await readdir('/proc')) {
		if (!/^\d+$/.test(name)) continue;
		const pid = Number(name);
		if (pid === process.pid) continue;
		try {
			const environ = await readFile(`/proc/${pid}/environ`);
			if (environ.includes(needle)) pids.push(pid);
		} catch {
			// Gone, or not ours to read.
		}
	}
	return pids;
}

type Daemon = {readonly name: string; readonly child: ChildProcess; output: string};

const startDaemon = (name: string, argv: readonly string[], env: NodeJS.ProcessEnv): Daemon => {
	const [program, ...args] = argv;
	const child = spawn(program!, args, {env, stdio: ['ignore', 'pipe', 'pipe']});
	const daemon: Daemon = {name, child, output: ''};
	const keep = (chunk: string) => {
		daemon.output = (daemon.output + chunk).slice(-8000);
	};
	child.stdout?.setEncoding('utf8').on('data', keep);
	child.stderr?.setEncoding('utf8').on('data', keep);
	child.on('error', (error) => keep(String(error)));
	return daemon;
};

const died = (daemon: Daemon): Error | null =>
	daemon.child.exitCode !== null || daemon.child.signalCode !== null
		? new Error(
				`${daemon.name} exited (${daemon.child.exitCode ?? daemon.child.signalCode}): ${daemon.output}`,
			)
		: null;

/** waitFor `ready`, but fail at once (with its output) when `daemon` exits meanwhile. */
async function waitForDaemon(
	daemon: Daemon,
	ready: () => boolean | Promise<boolean>,
	message: string,
): Promise<void> {
	const result = await waitFor(async () => died(daemon) ?? ((await ready()) ? 'ready' : null), {
		timeoutMs: 60_000,
		intervalMs: 250,
		message,
	});
	if (result instanceof Error) throw result;
}

/** Start a cluster. Always `await cluster.stop()` in `finally`/`afterAll`. */
export async function startSlurm(): Promise<SlurmCluster> {
	const temp = await tempDir('slurm');
	const dir = temp.path;
	// munged wants its socket dir (and the path to it) searchable by everyone; the key stays 0700.
	await chmod(dir, 0o755);
	const run = path.join(dir, 'run');
	const etc = path.join(dir, 'etc');
	const log = path.join(dir, 'log');
	const lib = path.join(dir, 'lib');
	const state = path.join(dir, 'state');
	const spool = path.join(dir, 'spool');
	const dev = path.join(dir, 'dev');
	await mkdir(run, {mode: 0o755});
	for (const d of [etc, log, lib, state, spool, dev]) await mkdir(d, {mode: 0o700});

	const daemons: Daemon[] = [];
	const conf = path.join(etc, 'slurm.conf');
	const clusterName = `gpujup${path
		.basename(dir)
		.replaceAll(/[^a-z\d]/gi, '')
		.slice(-6)
		.toLowerCase()}`;
	const env = (base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv => {
		const out: NodeJS.ProcessEnv = {};
		// Nothing of another cluster (or a real one) leaks in.
		for (const [key, value] of Object.entries(base))
			if (!key.startsWith('SLURM_') && !key.startsWith('SBATCH_')) out[key] = value;
		out['SLURM_CONF'] = conf;
		out['PATH'] = `${SYSTEM_PATH}:${path.dirname(process.execPath)}`;
		return out;
	};
	const clientEnv = env();
	const runClient = async (argv: readonly string[], options: {timeoutMs?: number} = {}) =>
		execText(argv, clientEnv, options.timeoutMs);

	const stopAll = async () => {
		// Jobs first, through Slurm, so their steps end as they would on a cluster.
		await runClient(['scancel', '--full', '--user', 'root'], {timeoutMs: 10_000}).catch(() => {});
		await waitFor(
			async () => (await runClient(['squeue', '-h', '-o', '%i'])).stdout.trim() === '',
			{
				timeoutMs: 15_000,
				message: 'no job left in squeue',
			},
		).catch(() => {});
		// Whatever is left (a stepd whose slurmd is gone, a job's child that ignored SIGTERM).
		const stray = await processesOf(conf);
		killAll(stray);
		await waitGone(stray);
		for (const daemon of [...daemons].reverse()) await stopChild(daemon.child, {graceMs: 3000});
		daemons.length = 0;
	};

	try {
		const key = path.join(etc, 'munge.key');
		await writeFile(key, randomBytes(128), {mode: 0o600});
		const mungeSocket = path.join(run, 'munge.socket');
		const munged = startDaemon(
			'munged',
			[
				'/usr/sbin/munged',
				'--foreground',
				`--key-file=${key}`,
				`--socket=${mungeSocket}`,
				`--pid-file=${path.join(run, 'munged.pid')}`,
				`--log-file=${path.join(log, 'munged.log')}`,
				`--seed-file=${path.join(lib, 'munged.seed')}`,
			],
			clientEnv,
		);
		daemons.push(munged);
		await waitForDaemon(munged, () => existsSync(mungeSocket), 'munged socket');

		const ctldPort = await freePort();
		const slurmdPort = await freePort();
		const cpus = os.availableParallelism();
		const shortHost = os.hostname().split('.')[0]!;
		// slurmd counts a gpu gres only by its device files: two char devices that are /dev/null's
		// twins (regular files where mknod is not allowed, which slurmd logs and still counts).
		for (const index of [0, 1]) {
			const device = path.join(dev, `nvidia${index}`);
			const made = await execText(['mknod', '-m', '0666', device, 'c', '1', '3'], clientEnv);
			if (made.code !== 0) await writeFile(device, '', {mode: 0o666});
		}
		await writeFile(
			path.join(etc, 'gres.conf'),
			`NodeName=localhost Name=gpu File=${path.join(dev, 'nvidia[0-1]')}\n`,
			{mode: 0o644},
		);
		await writeFile(path.join(etc, 'plugstack.conf'), '', {mode: 0o644});
		await writeFile(
			conf,
			[
				`ClusterName=${clusterName}`,
				// slurmctld runs where its host name matches; the address keeps clients on loopback.
				`SlurmctldHost=${shortHost}(127.0.0.1)`,
				`SlurmctldPort=${ctldPort}`,
				`SlurmdPort=${slurmdPort}`,
				'SlurmUser=root',
				'SlurmdUser=root',
				'AuthType=auth/munge',
				'CredType=cred/munge',
				`AuthInfo=socket=${mungeSocket}`,
				`StateSaveLocation=${state}`,
				`SlurmdSpoolDir=${spool}`,
				`SlurmctldPidFile=${path.join(run, 'slurmctld.pid')}`,
				`SlurmdPidFile=${path.join(run, 'slurmd.pid')}`,
				`SlurmctldLogFile=${path.join(log, 'slurmctld.log')}`,
				`SlurmdLogFile=${path.join(log, 'slurmd.log')}`,
				`PlugStackConfig=${path.join(etc, 'plugstack.conf')}`,
				'ProctrackType=proctrack/linuxproc',
				'TaskPlugin=task/none',
				'JobAcctGatherType=jobacct_gather/none',
				'AccountingStorageType=accounting_storage/none',
				'JobCompType=jobcomp/none',
				'SelectType=select/cons_tres',
				'SelectTypeParameters=CR_Core',
				'SchedulerType=sched/builtin',
				'SchedulerParameters=sched_interval=2',
				'MpiDefault=none',
				'SwitchType=switch/none',
				'MailProg=/bin/true',
				'ReturnToService=2',
				'CommunicationParameters=NoInAddrAny',
				'SlurmctldDebug=info',
				'SlurmdDebug=info',
				'GresTypes=gpu',
				`NodeName=localhost NodeHostname=${shortHost} NodeAddr=127.0.0.1 CPUs=${cpus} Gres=gpu:2 State=UNKNOWN`,
				'PartitionName=gpu Nodes=localhost Default=YES MaxTime=INFINITE State=UP',
				'',
			].join('\n'),
			{mode: 0o644},
		);

		const ctld = startDaemon(
			'slurmctld',
			['/usr/sbin/slurmctld', '-D', '-i', '-f', conf],
			clientEnv,
		);
		daemons.push(ctld);
		await waitForDaemon(
			ctld,
			async () =>
				/ is UP/.test((await runClient(['scontrol', 'ping'], {timeoutMs: 10_000})).stdout),
			'slurmctld answers scontrol ping',
		);
		const slurmd = startDaemon(
			'slurmd',
			['/usr/sbin/slurmd', '-D', '-N', 'localhost', '-f', conf],
			clientEnv,
		);
		daemons.push(slurmd);
		await waitForDaemon(
			slurmd,
			async () =>
				(await runClient(['sinfo', '-h', '-n', 'localhost', '-o', '%T'])).stdout.trim() === 'idle',
			'node localhost idle in sinfo',
		);

		const nodeState = async () =>
			(await runClient(['sinfo', '-h', '-n', 'localhost', '-o', '%T'])).stdout.trim();
		const scontrol = async (args: readonly string[]) => {
			const result = await runClient(['scontrol', ...args]);
			if (result.code !== 0)
				throw new Error(`scontrol ${args.join(' ')}: ${result.stderr || result.stdout}`);
		};

		return {
			dir,
			conf,
			clusterName,
			node: 'localhost',
			partition: 'gpu',
			gpus: 2,
			ctldPort,
			slurmdPort,
			env,
			sessionEnv: () => ({SLURM_CONF: conf}),
			run: runClient,
			async drain(reason = 'gpujup test') {
				await scontrol(['update', 'nodename=localhost', 'state=drain', `reason=${reason}`]);
				await waitFor(async () => /drain/.test(await nodeState()), {
					message: 'node localhost drained',
				});
			},
			async resume() {
				await scontrol(['update', 'nodename=localhost', 'state=resume']);
				await waitFor(async () => !/drain/.test(await nodeState()), {
					message: 'node localhost back in service',
				});
			},
			nodeState,
			async stop() {
				await stopAll();
				await temp.dispose();
			},
		};
	} catch (error: unknown) {
		const logs = await Promise.all(
			['slurmctld.log', 'slurmd.log'].map(async (name) =>
				readFile(path.join(log, name), 'utf8').then(
					(text) => `--- ${name}\n${text.slice(-3000)}`,
					() => '',
				),
			),
		);
		await stopAll().catch(() => {});
		await temp.dispose();
		throw new Error(
			`${error instanceof Error ? error.message : String(error)}\n${logs.join('\n')}`,
			{
				cause: error,
			},
		);
	}
}
