/**
 * `gpujup connect --slurm` end to end, all real: a single-node Slurm cluster (test/helpers/slurm.ts),
 * an OpenSSH sshd playing the login node (its sessions find the cluster through SLURM_CONF) and
 * another playing the compute node `localhost` (same home: the cluster's shared filesystem), and
 * the built binary under --no-tui with `[profiles.cluster]` in its config.toml. The job's Jupyter is
 * Debian's, started by gpujup's job script on the node.
 */
import {appendFile, mkdir, rm, stat, writeFile} from 'node:fs/promises';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {runKernelCode} from '../helpers/jupyter.js';
import {startTmux, type Tmux} from '../helpers/tmux.js';
import {startLab, type Lab} from '../helpers/openssh-lab.js';
import {freePort} from '../helpers/ports.js';
import {startSlurm, type SlurmCluster} from '../helpers/slurm.js';
import {waitFor} from '../helpers/wait-for.js';
import {
	cli,
	runGpujup,
	spawnGpujup,
	waitForHealed,
	type GpujupProcess,
	type JsonLine,
} from './gpujup-process.js';

let cluster: SlurmCluster;
let lab: Lab;
let localPort: number;

beforeAll(async () => {
	cluster = await startSlurm();
	lab = await startLab({reverse: 'none', hostEnv: cluster.sessionEnv(), node: true, bastion: true});
	// The login node is the lab's GPU host sshd, dialled directly.
	await appendFile(lab.knownHosts, `[127.0.0.1]:${lab.gpu.port} ${lab.gpu.hostKeyPub}\n`);
	localPort = await freePort();
	// A university's way in: a bastion, then the login node (`gpujup cluster --slurm`).
	await mkdir(path.join(lab.home, '.ssh'), {recursive: true, mode: 0o700});
	await writeFile(
		path.join(lab.home, '.ssh', 'config'),
		[
			'Host bastion',
			'  HostName 127.0.0.1',
			`  Port ${lab.bastion!.port}`,
			'Host cluster',
			'  HostName 127.0.0.1',
			`  Port ${lab.gpu.port}`,
			'  ProxyJump bastion',
			'Host *',
			'  User root',
			`  IdentityFile ${lab.clientKey}`,
			`  UserKnownHostsFile ${lab.knownHosts}`,
			'',
		].join('\n'),
		{mode: 0o600},
	);
	const configDir = path.join(lab.home, '.config', 'gpujup');
	await mkdir(configDir, {recursive: true, mode: 0o700});
	await writeFile(
		path.join(configDir, 'config.toml'),
		[
			'[profiles.cluster]',
			`relay = "root@127.0.0.1:${lab.gpu.port}"`,
			'slurm = true',
			'sbatch = ["--time=30", "--gres=gpu:1"]',
			`node-ssh-port = ${lab.node!.port}`,
			`local-port = ${localPort}`,
			'jupyter-cmd = "jupyter notebook"',
			`identity = "${lab.clientKey}"`,
			`known-hosts = "${lab.knownHosts}"`,
			'keepalive = 1',
			'on-quit = "keep"',
			'',
		].join('\n'),
		{mode: 0o600},
	);
}, 180_000);

afterAll(async () => {
	await cluster?.stop();
	await lab?.dispose();
}, 60_000);

/** Where the laptop remembers that this cluster refused ssh to its nodes. */
const noNodeSsh = () =>
	path.join(lab.home, '.local', 'state', 'gpujup', 'cluster', 'slurm-no-node-ssh');

const connect = (extra: readonly string[] = []) =>
	spawnGpujup(['--profile', 'cluster', '--no-tui', ...extra], lab.env());

const jobLine = (state: string) => (line: JsonLine) =>
	line.type === 'job' && line['state'] === state;

const squeueIds = async (name = 'gpujup-cluster') =>
	(await cluster.run(['squeue', '-h', `--name=${name}`, '-o', '%i'])).stdout
		.trim()
		.split('\n')
		.filter(Boolean);

/** The job's Jupyter running, with a pid (the line that says so). */
const jupyterRunning = async (gpujup: GpujupProcess) =>
	gpujup.waitForLine((l) => l.type === 'jupyter' && l.state === 'running' && l['pid'] !== null, {
		timeoutMs: 120_000,
	});

/** No job of `name` left in squeue (polled: scancel and squeue take a moment). */
const squeueEmpty = async (message: string, name?: string) =>
	waitFor(async () => (await squeueIds(name)).length === 0, {timeoutMs: 60_000, message});

/** q in the dashboard, the question whether to cancel `jobId` too, y: gpujup exits. */
const quitCancelling = async (tmux: Tmux, jobId: string) => {
	await tmux.sendKeys('q');
	await tmux.waitForText(`Cancel Slurm job ${jobId} too`, 15_000);
	await tmux.sendKeys('y');
	await waitFor(async () => (await tmux.exitCode()) !== null, {
		timeoutMs: 30_000,
		message: 'gpujup exits after the quit question',
	});
};

type Status = {
	ok: boolean;
	hops: Array<{hop: string; name: string; state: string}>;
	jupyter: {state: string; pid: number | null} | null;
	job: {id: string; state: string; node: string | null; gpus: number | null} | null;
};

const liveStatus = async (): Promise<Status> => {
	const result = await runGpujup(['status', '--json', '--profile', 'cluster'], lab.env());
	return JSON.parse(result.stdout) as Status;
};

const urlToken = async () =>
	waitFor(async () => {
		const result = await runGpujup(['url', '--profile', 'cluster'], lab.env());
		const match = /token=([\da-f]+)/.exec(result.stdout);
		return result.code === 0 && match ? match[1] : undefined;
	});

describe('connect --slurm', () => {
	it('submits the job, shows it pending on a drained node, reaches its Jupyter on the node once it runs, re-attaches after a restart, and cancels it on quit', async () => {
		await cluster.drain('gpujup e2e maintenance');
		let gpujup: GpujupProcess = connect();
		try {
			const pending = await gpujup.waitForLine(jobLine('PENDING'), {timeoutMs: 90_000});
			const jobId = String(pending['id']);
			expect(pending['reason']).toEqual(expect.any(String));
			expect(pending['node']).toBeNull();
			expect(pending['gpus']).toBe(1);
			expect(await squeueIds()).toEqual([jobId]);

			await cluster.resume();
			const running = await gpujup.waitForLine(jobLine('RUNNING'), {timeoutMs: 90_000});
			expect(running).toMatchObject({id: jobId, node: 'localhost', gpus: 1});
			expect(running['timeLeftS']).toBeGreaterThan(25 * 60);
			await gpujup.waitForLine(
				(l) =>
					l.type === 'hop' && l.hop === 'host' && l.name === 'localhost' && l.state === 'ready',
				{timeoutMs: 90_000},
			);
			const forward = await gpujup.waitForLine(
				(l) => l.type === 'forward' && l.state === 'listening',
			);
			expect(forward['local']).toBe(`127.0.0.1:${localPort}`);
			const started = await jupyterRunning(gpujup);
			const pid = started['pid'] as number;

			const token = await urlToken();
			const answer = await fetch(`http://127.0.0.1:${localPort}/api/status`, {
				headers: {authorization: `token ${token}`},
			});
			expect(answer.status).toBe(200);
			expect(await runKernelCode(`http://127.0.0.1:${localPort}/`, token!, 'print(6*7)')).toBe(
				'42\n',
			);
			const status = await liveStatus();
			expect(status.ok).toBe(true);
			expect(status.hops.map((h) => [h.hop, h.state])).toEqual([
				['relay', 'ready'],
				['host', 'ready'],
			]);
			expect(status.job).toMatchObject({id: jobId, state: 'RUNNING', node: 'localhost', gpus: 1});
			// The token went nowhere but the url answer.
			expect(gpujup.output()).not.toContain(token);

			// The laptop's link to the login node drops: the chain comes back to the same job.
			const before = gpujup.lines.length;
			await lab.gpu.dropSessions();
			await waitForHealed(gpujup, before, localPort, token);
			expect((await liveStatus()).jupyter?.pid).toBe(pid);
			expect(await squeueIds()).toEqual([jobId]);

			// gpujup dies hard; a new one finds the same job and the same Jupyter.
			gpujup.child.kill('SIGKILL');
			await gpujup.exited();
			expect(await squeueIds()).toEqual([jobId]);
			// With no gpujup running, status checks once: the login node, the job, its Jupyter.
			const once = await runGpujup(['status', '--json', '--profile', 'cluster'], lab.env());
			expect(JSON.parse(once.stdout)).toMatchObject({
				ok: true,
				hops: [
					{hop: 'relay', state: 'ready'},
					{hop: 'host', name: 'localhost', state: 'ready'},
				],
				job: {id: jobId, state: 'RUNNING', node: 'localhost'},
				jupyter: {state: 'running', pid, url: null},
			});
			expect(once.code).toBe(0);
			expect(await squeueIds()).toEqual([jobId]);
			gpujup = connect(['--on-quit', 'cancel']);
			const again = await gpujup.waitForLine(jobLine('RUNNING'), {timeoutMs: 90_000});
			expect(again['id']).toBe(jobId);
			const back = await jupyterRunning(gpujup);
			expect(back['pid']).toBe(pid);
			expect(await urlToken()).toBe(token);
			expect(await squeueIds()).toEqual([jobId]);

			// Quit with --on-quit cancel: the job is gone from squeue.
			expect(await gpujup.stop()).toBe(0);
			await squeueEmpty('the job gone from squeue after quit with --on-quit cancel');
		} finally {
			await gpujup.stop();
			await cluster.resume().catch(() => {});
		}
	}, 420_000);

	it('in the dashboard: the job on its node with its time left; cancelled from outside it shows as ended with Slurm’s reason, r submits a new one, and q asks whether to cancel it', async () => {
		const tmux = await startTmux(
			[process.execPath, cli, '--profile', 'cluster', '--on-quit', 'ask'],
			{env: lab.env(), width: 100, height: 30},
		);
		try {
			let screen = await tmux.waitForText(
				/job \d+ RUNNING on localhost · 1 GPU · \d+m left/,
				120_000,
			);
			const first = /job (\d+) RUNNING/.exec(screen)![1]!;
			expect(await squeueIds()).toEqual([first]);
			await tmux.waitForText(/jupyter running/, 120_000);

			// Cancelled from outside (an admin, preemption): ended, with Slurm's word for it.
			await cluster.run(['scancel', first]);
			screen = await tmux.waitForText(`job ${first} ended (CANCELLED`, 60_000);
			expect(screen).toContain('r submits a new one');

			await tmux.sendKeys('r');
			screen = await tmux.waitForScreen(
				(text) => {
					const id = /job (\d+) RUNNING on localhost/.exec(text)?.[1];
					return id !== undefined && id !== first;
				},
				{timeoutMs: 120_000, what: 'a new job running'},
			);
			const second = /job (\d+) RUNNING/.exec(screen)![1]!;
			await tmux.waitForText(/jupyter running/, 120_000);

			// j: Jupyter is the job's own process; said at once, no question.
			await tmux.sendKeys('j');
			await tmux.waitForText(`Jupyter is Slurm job ${second} itself`, 15_000);

			// q asks; y cancels the job.
			await quitCancelling(tmux, second);
			expect(await tmux.exitCode()).toBe(0);
			await squeueEmpty('the job cancelled by the quit question gone from squeue');
		} finally {
			await tmux.dispose();
		}
	}, 420_000);

	it('doctor --slurm: the login node, Slurm, the partition, Jupyter in the env, and ssh to the job’s node, each failure with its fix', async () => {
		const doctor = async (extra: readonly string[] = []) =>
			runGpujup(['doctor', '--profile', 'cluster', '--slurm', ...extra], lab.env());
		let result = await doctor();
		expect(result.code).toBe(0);
		expect(result.stdout).toMatch(/✓ login node +logged in to 127\.0\.0\.1/);
		expect(result.stdout).toMatch(/✓ Slurm commands +slurm-wlm \d+\.\d+/);
		expect(result.stdout).toMatch(/✓ partition +the default, gpu/);
		expect(result.stdout).toMatch(/✓ Jupyter in the env +none on the login node: Jupyter Notebook/);
		expect(result.stdout).toMatch(/✓ ssh to the node +not checked: no job is running/);

		result = await doctor(['--sbatch=--partition nope --time=5']);
		expect(result.code).toBe(1);
		expect(result.stdout).toMatch(
			/✗ partition +no partition nope on this cluster \(there are: gpu\)/,
		);
		expect(result.stdout).toMatch(/fix: name one of them in --sbatch='--partition NAME'/);

		// With the job running, Jupyter is looked for on its node and the node's sshd is knocked on.
		// Nine minutes of walltime: under ten, the job-ending warning comes at once.
		const gpujup = connect(['--on-quit', 'ask', '--sbatch=--time=9 --gres=gpu:1']);
		let jobId = '';
		try {
			const running = await gpujup.waitForLine(jobLine('RUNNING'), {timeoutMs: 120_000});
			jobId = String(running['id']);
			const ending = await gpujup.waitForLine(
				(l) => l.type === 'notify' && l['kind'] === 'job-ending',
			);
			expect(ending['title']).toMatch(new RegExp(`^Job ${jobId} ends in \\d+ min$`));
			result = await doctor();
			expect(result.code).toBe(0);
			expect(result.stdout).toContain(
				`✓ Jupyter in the env  none on node localhost (job ${String(running['id'])}): Jupyter Notebook`,
			);
			expect(result.stdout).toMatch(
				new RegExp(
					`✓ ssh to the node +localhost:${lab.node!.port} from the login node: SSH-2\\.0-OpenSSH`,
				),
			);
		} finally {
			expect(await gpujup.stop()).toBe(0);
		}
		// --on-quit ask with nobody to ask (--no-tui): the job is kept.
		expect(await squeueIds()).toEqual([jobId]);
		await cluster.run(['scancel', jobId]);
		await squeueEmpty('the job gone after scancel');
	}, 300_000);

	it('where ssh to the node is refused it says so, and r replaces the job with one whose Jupyter the login node forwards to on the node’s address', async () => {
		await lab.node!.stop();
		const tmux = await startTmux(
			[process.execPath, cli, '--profile', 'cluster', '--on-quit', 'ask'],
			{env: lab.env(), width: 120, height: 32},
		);
		try {
			await tmux.waitForText(
				`no ssh to node localhost:${lab.node!.port} from the login node (refused`,
				120_000,
			);
			await tmux.waitForText(/Jupyter is on localhost's loopback only: r replaces the job/, 30_000);
			const [first] = await squeueIds();
			await tmux.sendKeys('r');
			const screen = await tmux.waitForScreen(
				(text) => {
					const id = /job (\d+) RUNNING on localhost/.exec(text)?.[1];
					return id !== undefined && id !== first;
				},
				{timeoutMs: 180_000, what: 'a new job running'},
			);
			const second = /job (\d+) RUNNING/.exec(screen)![1]!;
			expect(await squeueIds()).toEqual([second]);

			const status = await waitFor(
				async () => {
					const now = await liveStatus();
					return now.ok ? now : undefined;
				},
				{timeoutMs: 120_000, message: 'status ok: the hops up and Jupyter answering'},
			);
			await tmux.waitForText(/forwarded by 127\.0\.0\.1; no ssh/, 15_000);
			const token = await urlToken();
			expect(await runKernelCode(`http://127.0.0.1:${localPort}/`, token!, 'print(6*7)')).toBe(
				'42\n',
			);
			expect(status.job).toMatchObject({id: second, state: 'RUNNING'});
			expect(status.jupyter?.pid).toEqual(expect.any(Number));

			await quitCancelling(tmux, second);
			await squeueEmpty('the job cancelled by the quit question gone from squeue');
		} finally {
			await tmux.dispose();
			await lab.node!.start();
			await rm(noNodeSsh(), {force: true});
		}
	}, 420_000);

	it('--no-tui where ssh to the node is refused: the job is replaced at once with one the login node forwards to', async () => {
		await lab.node!.stop();
		await rm(noNodeSsh(), {force: true});
		let gpujup = connect(['--on-quit', 'cancel']);
		try {
			const first = await gpujup.waitForLine(jobLine('RUNNING'), {timeoutMs: 120_000});
			await gpujup.waitForLine(
				(l) =>
					l.type === 'log' &&
					/loopback only: replacing the job with one on the node's address/.test(String(l['line'])),
				{timeoutMs: 90_000},
			);
			const second = await gpujup.waitForLine(
				(l) => jobLine('RUNNING')(l) && l['id'] !== first['id'],
				{timeoutMs: 120_000},
			);
			await jupyterRunning(gpujup);
			const token = await urlToken();
			expect(await runKernelCode(`http://127.0.0.1:${localPort}/`, token!, 'print(6*7)')).toBe(
				'42\n',
			);
			expect(await squeueIds()).toEqual([String(second['id'])]);

			// The laptop remembers (0600): the next job has Jupyter on the node's address from the start.
			expect((await stat(noNodeSsh())).mode & 0o777).toBe(0o600);
			expect(await gpujup.stop()).toBe(0);
			await squeueEmpty('the job cancelled on quit');
			gpujup = connect(['--on-quit', 'cancel']);
			await gpujup.waitForLine(
				(l) => l.type === 'log' && /nodes was refused before/.test(String(l['line'])),
			);
			await jupyterRunning(gpujup);
			expect(gpujup.lines.filter((l) => l.type === 'job' && l['state'] === 'RUNNING').length).toBe(
				1,
			);
			expect(gpujup.output()).not.toMatch(/replacing the job/);
		} finally {
			expect(await gpujup.stop()).toBe(0);
			await lab.node!.start();
			await rm(noNodeSsh(), {force: true});
		}
		await squeueEmpty('the job cancelled on quit');
	}, 300_000);

	it('--no-tui where the node refuses the login (as pam_slurm_adopt would): the same fallback, no exit', async () => {
		await lab.node!.reconfigure(['DenyUsers root']);
		await rm(noNodeSsh(), {force: true});
		const gpujup = connect(['--on-quit', 'cancel']);
		try {
			const first = await gpujup.waitForLine(jobLine('RUNNING'), {timeoutMs: 120_000});
			await gpujup.waitForLine(
				(l) => l.type === 'log' && /the node refused the login/.test(String(l['line'])),
				{timeoutMs: 90_000},
			);
			await gpujup.waitForLine((l) => jobLine('RUNNING')(l) && l['id'] !== first['id'], {
				timeoutMs: 120_000,
			});
			await jupyterRunning(gpujup);
			expect((await liveStatus()).ok).toBe(true);
			expect(gpujup.child.exitCode).toBeNull();
		} finally {
			expect(await gpujup.stop()).toBe(0);
			await lab.node!.reconfigure([]);
			await rm(noNodeSsh(), {force: true});
		}
		await squeueEmpty('the job cancelled on quit');
	}, 300_000);

	it('--on-quit cancel with the login node gone: the job is left running and stderr says so, with the scancel to run', async () => {
		const gpujup = connect(['--on-quit', 'cancel']);
		let jobId = '';
		try {
			const running = await gpujup.waitForLine(jobLine('RUNNING'), {timeoutMs: 120_000});
			jobId = String(running['id']);
			// The login node goes away (its sshd and every session), then the user quits.
			await lab.gpu.stop();
			await gpujup.waitForLine((l) => l.type === 'hop' && l.hop === 'relay' && l.state !== 'ready');
			expect(await gpujup.stop()).toBe(0);
			expect(gpujup.stderr()).toMatch(
				new RegExp(
					`gpujup: Slurm job ${jobId} may still be running \\(.+\\): on the login node, run scancel ${jobId}\n`,
				),
			);
			expect(await squeueIds()).toEqual([jobId]);
		} finally {
			await gpujup.stop();
			if (lab.gpu.pid === undefined) await lab.gpu.start();
			if (jobId) await cluster.run(['scancel', jobId]);
		}
		await waitFor(async () => (await squeueIds()).length === 0, {
			timeoutMs: 60_000,
			message: 'the job left running cancelled by hand',
		});
	}, 300_000);

	it('through an ~/.ssh/config alias with ProxyJump: bastion → login node → the job’s node', async () => {
		const gpujup = spawnGpujup(
			[
				'cluster',
				'--slurm',
				'--no-tui',
				'--sbatch=--time=10',
				'--node-ssh-port',
				String(lab.node!.port),
				'--local-port',
				'0',
				'--keepalive',
				'1',
				'--on-quit',
				'cancel',
			],
			lab.env(),
		);
		try {
			await gpujup.waitForLine(jobLine('RUNNING'), {timeoutMs: 120_000});
			await jupyterRunning(gpujup);
			const ready = (hop: string, index: number) =>
				gpujup.lines.some(
					(l) => l.type === 'hop' && l.hop === hop && l['index'] === index && l.state === 'ready',
				);
			expect([ready('relay', 0), ready('jump', 1), ready('host', 2)]).toEqual([true, true, true]);
			const names = gpujup.lines
				.filter((l) => l.type === 'hop' && l.state === 'ready')
				.map((l) => l.name);
			expect(new Set(names)).toEqual(new Set(['bastion', 'cluster', 'localhost']));
		} finally {
			expect(await gpujup.stop()).toBe(0);
		}
		await squeueEmpty('the job cancelled on quit', 'gpujup-default');
	}, 300_000);
});
