/**
 * SlurmJobService against a real single-node Slurm (test/helpers/slurm.ts), through a real OpenSSH
 * sshd playing the login node (its sessions get the cluster's SLURM_CONF from authorized_keys), with
 * Debian's Jupyter started by the job script on the node. Also core/slurm.ts's squeue parsers on
 * what this cluster's real squeue prints, in both forms.
 */
import {readFile, stat, writeFile} from 'node:fs/promises';
import type {Client} from 'ssh2';
import {afterAll, beforeAll, expect, test} from 'vitest';
import {
	jobFiles,
	parseSqueueJson,
	parseSqueueText,
	slurmDir,
	squeueCommand,
	type SlurmJob,
} from '../../source/core/slurm.js';
import {sshRunner} from '../../source/services/command-runner.js';
import {SlurmError, SlurmJobService, type SlurmJobEvent} from '../../source/services/slurm-job.js';
import {startLab, type Lab} from '../helpers/openssh-lab.js';
import {isAlive} from '../helpers/proc.js';
import {gpuHostSession} from '../helpers/ssh2-client.js';
import {startSlurm, type SlurmCluster} from '../helpers/slurm.js';
import {waitFor} from '../helpers/wait-for.js';

let cluster: SlurmCluster;
let lab: Lab;
const clients: Client[] = [];

beforeAll(async () => {
	cluster = await startSlurm();
	lab = await startLab({reverse: 'none', hostEnv: cluster.sessionEnv()});
}, 120_000);

afterAll(async () => {
	for (const client of clients) client.destroy();
	await cluster?.stop();
	await lab?.dispose();
}, 60_000);

/** A session on the login node (the lab's GPU host sshd), its host key checked. */
async function loginNode(): Promise<Client> {
	const client = await gpuHostSession(lab);
	clients.push(client);
	return client;
}

const service = async (
	profile: string,
	extra: Partial<ConstructorParameters<typeof SlurmJobService>[0]> = {},
) => {
	const client = await loginNode();
	return new SlurmJobService({
		runner: sshRunner(() => client),
		profile,
		sbatchArgs: ['--time=30', '--gres=gpu:1'],
		env: {kind: 'none'},
		jupyterCmd: null,
		notebookDir: null,
		pollMs: 300,
		...extra,
	});
};

/** Run a command line on the login node as gpujup would and return its stdout. */
const onLogin = async (command: string): Promise<string> => {
	const client = await loginNode();
	const running = sshRunner(() => client).spawn(command, {deadlineMs: 30_000});
	let out = '';
	running.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
	running.stderr.resume();
	await running.exited;
	client.destroy();
	return out;
};

const jupyterStatus = async (port: number, token: string | null): Promise<number> => {
	const response = await fetch(`http://127.0.0.1:${port}/api/status`, {
		headers: token ? {authorization: `token ${token}`} : {},
	});
	await response.arrayBuffer();
	return response.status;
};

test('squeue --json and --Format parse to the same jobs: pending with a reason, running with node, GPUs and time left, ended', async () => {
	const name = 'gpujup-parse';
	const script = `${cluster.dir}/parse.sh`;
	await writeFile(script, '#!/bin/sh\nexec sleep 600\n', {mode: 0o700});
	await cluster.drain('parse test');
	const submitted = await cluster.run([
		'sbatch',
		'--parsable',
		`--job-name=${name}`,
		'--time=20',
		'--gres=gpu:1',
		'--output=/dev/null',
		script,
	]);
	expect(submitted.code).toBe(0);
	const id = submitted.stdout.trim();
	// Another job of the same user: squeue --json on 22.05 lists it even with --name.
	const other = await cluster.run([
		'sbatch',
		'--parsable',
		'--job-name=someone-else',
		'--output=/dev/null',
		script,
	]);
	expect(other.code).toBe(0);

	const both = async (): Promise<{text: SlurmJob[]; json: SlurmJob[]; rawJson: string}> => {
		const text = await onLogin(squeueCommand(name, 'text'));
		const rawJson = await onLogin(squeueCommand(name, 'json'));
		const json = parseSqueueJson(rawJson, name, 'root', Date.now());
		expect(json).not.toBeNull();
		return {text: parseSqueueText(text, name), json: json!, rawJson};
	};
	const agree = (a: readonly SlurmJob[], b: readonly SlurmJob[]) => {
		expect(a.map((job) => ({...job, timeLeftS: null}))).toEqual(
			b.map((job) => ({...job, timeLeftS: null})),
		);
		for (const [i, job] of a.entries()) {
			if (job.timeLeftS === null) expect(b[i]!.timeLeftS).toBeNull();
			else expect(Math.abs(job.timeLeftS - b[i]!.timeLeftS!)).toBeLessThanOrEqual(5);
		}
	};

	try {
		const pending = await waitFor(
			async () => {
				const seen = await both();
				return seen.text[0]?.reason ? seen : null;
			},
			{message: 'the pending job with a reason'},
		);
		expect(pending.rawJson).toContain('someone-else');
		expect(pending.text).toEqual([
			{
				id,
				name,
				state: 'PENDING',
				slurmState: 'PENDING',
				reason: expect.stringMatching(/^ReqNodeNotAvail/),
				node: null,
				gpus: 1,
				timeLeftS: null,
			},
		]);
		agree(pending.text, pending.json);

		await cluster.resume();
		const running = await waitFor(
			async () => {
				const seen = await both();
				return seen.text[0]?.state === 'RUNNING' && seen.json[0]?.state === 'RUNNING' ? seen : null;
			},
			{timeoutMs: 60_000, message: 'the job running'},
		);
		expect(running.text).toEqual([
			{
				id,
				name,
				state: 'RUNNING',
				slurmState: 'RUNNING',
				reason: null,
				node: 'localhost',
				gpus: 1,
				timeLeftS: expect.any(Number),
			},
		]);
		expect(running.text[0]!.timeLeftS).toBeGreaterThan(20 * 60 - 120);
		expect(running.text[0]!.timeLeftS).toBeLessThanOrEqual(20 * 60);
		agree(running.text, running.json);

		await cluster.run(['scancel', id]);
		const ended = await waitFor(
			async () => {
				const seen = await both();
				return seen.text[0]?.state === 'ENDED' && seen.json[0]?.state === 'ENDED' ? seen : null;
			},
			{message: 'the job ended'},
		);
		expect(ended.text[0]).toMatchObject({
			id,
			state: 'ENDED',
			slurmState: 'CANCELLED',
			reason: 'CANCELLED',
			node: 'localhost',
			timeLeftS: null,
		});
		agree(ended.text, ended.json);
	} finally {
		await cluster.resume().catch(() => {});
		await cluster.run(['scancel', id, other.stdout.trim()]);
	}
}, 180_000);

test('submit while drained: PENDING with the reason; resume: RUNNING on localhost with Jupyter on the written port; a second gpujup re-attaches; scancel from outside: ENDED', async () => {
	await cluster.drain('gpujup service test');
	const first = await service('svc');
	const events: SlurmJobEvent[] = [];
	first.on((event) => events.push(event));
	let secondId: string | null = null;
	try {
		const submitted = await first.attach();
		expect(submitted.state).toBe('PENDING');
		first.start();
		const pending = await waitFor(
			() =>
				events.find((e) => e.type === 'job' && e.job.state === 'PENDING' && e.job.reason !== null),
			{
				message: 'a PENDING event with a reason',
			},
		);
		// Slurm's word, or, while slurmctld has set only its description (its word still None, as
		// a CI run saw just after the submit), the description's sentence for a drained node.
		expect(pending.type === 'job' && pending.job.reason).toMatch(
			/^ReqNodeNotAvail|^Nodes required for job are DOWN, DRAINED/,
		);

		await cluster.resume();
		const running = await waitFor(
			() => events.find((e) => e.type === 'job' && e.job.state === 'RUNNING'),
			{
				timeoutMs: 60_000,
				message: 'a RUNNING event',
			},
		);
		expect(running).toMatchObject({
			type: 'job',
			job: {id: submitted.id, node: 'localhost', gpus: 1},
		});
		const endpointEvent = await waitFor(() => events.find((e) => e.type === 'endpoint'), {
			timeoutMs: 60_000,
			message: 'the endpoint the job wrote',
		});
		const endpoint = endpointEvent.type === 'endpoint' ? endpointEvent.endpoint : null;
		expect(endpoint).toMatchObject({jobId: submitted.id, node: 'localhost', host: '127.0.0.1'});
		const token = await first.readToken();
		expect(token).toMatch(/^[\da-f]{64}$/);
		await waitFor(async () => (await jupyterStatus(endpoint!.port, token)) === 200, {
			timeoutMs: 90_000,
			message: `Jupyter answering on 127.0.0.1:${endpoint!.port} with the token`,
		});
		expect(await jupyterStatus(endpoint!.port, null)).toBe(403);
		expect(await jupyterStatus(endpoint!.port, 'f'.repeat(64))).toBe(403);

		// The pid is Jupyter's (the script exec'd it), and the token is in no process's arguments.
		const cmdline = (await readFile(`/proc/${endpoint!.pid}/cmdline`, 'utf8')).split('\0');
		expect(cmdline.join(' ')).toMatch(/jupyter/);
		expect(cmdline).toContain(`--port=${endpoint!.port}`);
		expect(cmdline).toContain('--port-retries=0');
		expect(cmdline).toContain('--ip=127.0.0.1');
		expect(cmdline.join(' ')).not.toContain(token);
		// Nothing of the token in any event.
		expect(JSON.stringify(events)).not.toContain(token);

		// The files: 0700 dir, 0600 token, endpoint and log.
		const dir = slurmDir(`${lab.gpuHome}/.local/state`, 'svc');
		const files = jobFiles(dir, submitted.id);
		expect((await stat(dir)).mode & 0o777).toBe(0o700);
		for (const file of [files.token, files.endpoint, files.log])
			expect((await stat(file)).mode & 0o777, file).toBe(0o600);

		// gpujup restarted elsewhere (a new session, a new service): the same job, Jupyter and token.
		const second = await service('svc');
		const again = await second.attach();
		secondId = again.id;
		expect(again).toMatchObject({id: submitted.id, state: 'RUNNING', node: 'localhost'});
		expect(second.endpoint).toEqual(endpoint);
		expect(await second.readToken()).toBe(token);
		second.dispose();

		// Cancelled from outside (the user, an admin, preemption): shown as ended with Slurm's word.
		await cluster.run(['scancel', submitted.id]);
		const ended = await waitFor(
			() => events.find((e) => e.type === 'job' && e.job.state === 'ENDED'),
			{
				message: 'an ENDED event',
			},
		);
		expect(ended).toMatchObject({
			type: 'job',
			job: {id: submitted.id, state: 'ENDED', reason: 'CANCELLED'},
		});
		await waitFor(async () => !(await isAlive(endpoint!.pid)), {
			message: 'Jupyter gone with its job',
		});
		expect(events.filter((e) => e.type === 'error')).toEqual([]);
	} finally {
		first.dispose();
		await cluster.resume().catch(() => {});
		if (secondId) await cluster.run(['scancel', secondId]);
	}
}, 240_000);

test('listen node: Jupyter on the address the node’s name resolves to (127.0.0.1 for this one-machine cluster), with the token', async () => {
	const job = await service('listen-node', {listen: 'node'});
	try {
		await job.attach();
		const endpoint = await waitFor(
			async () => {
				await job.refresh();
				return job.endpoint;
			},
			{timeoutMs: 60_000, message: 'the endpoint'},
		);
		expect(endpoint).toMatchObject({node: 'localhost', host: '127.0.0.1'});
		const token = await job.readToken();
		await waitFor(async () => (await jupyterStatus(endpoint.port, token)) === 200, {
			timeoutMs: 90_000,
			message: 'Jupyter answering with the token',
		});
		expect(await jupyterStatus(endpoint.port, null)).toBe(403);
		const cmdline = (await readFile(`/proc/${endpoint.pid}/cmdline`, 'utf8')).split('\0');
		expect(cmdline).toContain('--ip=127.0.0.1');
	} finally {
		await job.cancel();
		job.dispose();
	}
}, 180_000);

test('cancel() frees the job: squeue then has no active job of the profile', async () => {
	const job = await service('cancel');
	const submitted = await job.attach();
	await waitFor(async () => (await job.refresh())?.state === 'RUNNING', {
		timeoutMs: 60_000,
		message: 'running',
	});
	await job.cancel();
	await waitFor(async () => (await job.find()) === null, {message: 'no active job left'});
	expect((await job.refresh())?.state).toBe('ENDED');
	const listed = await cluster.run(['squeue', '-h', '-j', submitted.id, '-o', '%T']);
	expect(listed.stdout.trim()).toMatch(/^(CANCELLED|)$/);
	job.dispose();
}, 120_000);

test('Slurm refusing the arguments, and arguments gpujup sets itself, are errors that say why', async () => {
	const bad = await service('bad', {sbatchArgs: ['--partition', 'nosuch']});
	await expect(bad.attach()).rejects.toThrow(/sbatch refused the job: .*invalid partition/i);
	await expect(bad.attach()).rejects.toBeInstanceOf(SlurmError);
	expect(
		() => new SlurmJobService({...optionsOf(bad), sbatchArgs: ['--job-name', 'mine']}),
	).toThrow(/"--job-name" cannot be given: gpujup names the job itself/);
	expect(() => new SlurmJobService({...optionsOf(bad), profile: '../x'})).toThrow(
		/cannot name a Slurm job/,
	);
	bad.dispose();
}, 60_000);

const optionsOf = (
	_service: SlurmJobService,
): ConstructorParameters<typeof SlurmJobService>[0] => ({
	runner: sshRunner(() => null),
	profile: 'x',
	sbatchArgs: [],
	env: {kind: 'none'},
	jupyterCmd: null,
	notebookDir: null,
});
