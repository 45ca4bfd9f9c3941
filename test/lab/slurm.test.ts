/**
 * The test Slurm cluster itself (test/helpers/slurm.ts): real munged, slurmctld and slurmd on
 * loopback ports of its own, driven with Debian's sbatch, squeue, srun, scontrol and scancel.
 */
import {readFile, writeFile} from 'node:fs/promises';
import path from 'node:path';
import {afterAll, beforeAll, expect, test} from 'vitest';
import {isAlive} from '../helpers/proc.js';
import {startSlurm, type SlurmCluster} from '../helpers/slurm.js';
import {waitFor} from '../helpers/wait-for.js';

let cluster: SlurmCluster;

beforeAll(async () => {
	cluster = await startSlurm();
}, 120_000);

afterAll(async () => {
	await cluster?.stop();
}, 60_000);

/** `squeue` for one job: `STATE|NODELIST|REASON`, or '' once Slurm forgot it. */
const jobLine = async (id: string) =>
	(await cluster.run(['squeue', '-h', '-t', 'all', '-j', id, '-o', '%T|%N|%r'])).stdout.trim();

const submit = async (args: readonly string[], script: string): Promise<string> => {
	const file = path.join(cluster.dir, `job-${Math.random().toString(36).slice(2)}.sh`);
	await writeFile(file, script, {mode: 0o700});
	const result = await cluster.run(['sbatch', '--parsable', ...args, file]);
	expect(result.stderr).toBe('');
	expect(result.code).toBe(0);
	const id = result.stdout.trim().split(';')[0]!;
	expect(id).toMatch(/^\d+$/);
	return id;
};

test('sbatch runs a job on localhost; srun --overlap joins it; scancel ends it and its processes', async () => {
	const out = path.join(cluster.dir, 'job-%j.out');
	const id = await submit(
		['--job-name', 'gpujup-lab', '--output', out, '--gres=gpu:1'],
		'#!/bin/sh\necho "pid $$ node $SLURMD_NODENAME gpus $SLURM_GPUS_ON_NODE"\nexec sleep 600\n',
	);
	await waitFor(async () => (await jobLine(id)).startsWith('RUNNING|localhost|'), {
		timeoutMs: 60_000,
		message: `job ${id} running on localhost`,
	});
	const outFile = out.replace('%j', id);
	const first = await waitFor(async () => (await readFile(outFile, 'utf8')).trim(), {
		message: 'the job wrote its line',
	});
	const match = /^pid (\d+) node localhost gpus 1$/.exec(first);
	expect(match, first).not.toBeNull();
	const pid = Number(match![1]);
	expect(await isAlive(pid)).toBe(true);

	// A step inside the same allocation, as an admin or a user's debugging session does.
	const step = await cluster.run([
		'srun',
		'--jobid',
		id,
		'--overlap',
		'sh',
		'-c',
		'echo "$SLURM_JOB_ID"',
	]);
	expect(step.stderr).toBe('');
	expect(step.stdout.trim()).toBe(id);

	const gres = await cluster.run(['squeue', '-h', '-j', id, '-o', '%b']);
	expect(gres.stdout.trim()).toMatch(/gpu:1$/);

	const cancel = await cluster.run(['scancel', id]);
	expect(cancel.code).toBe(0);
	await waitFor(async () => (await jobLine(id)).startsWith('CANCELLED|'), {
		message: `job ${id} cancelled`,
	});
	await waitFor(async () => !(await isAlive(pid)), {message: 'the job process ended'});
}, 120_000);

test('a drained node keeps a job PENDING with the reason; resume starts it', async () => {
	await cluster.drain('maintenance by the test');
	try {
		expect(await cluster.nodeState()).toMatch(/^drain/);
		const id = await submit(
			['--job-name', 'gpujup-pending', '--output', '/dev/null'],
			'#!/bin/sh\nexec sleep 600\n',
		);
		const pending = await waitFor(
			async () => {
				const line = await jobLine(id);
				return line.startsWith('PENDING|') && line.split('|')[2] !== 'None' ? line : '';
			},
			{message: `job ${id} pending with a reason`},
		);
		// Slurm names the drained node in its reason.
		expect(pending).toMatch(/^PENDING\|\|(ReqNodeNotAvail|Resources|Nodes required)/);
		await cluster.resume();
		await waitFor(async () => (await jobLine(id)).startsWith('RUNNING|localhost|'), {
			timeoutMs: 60_000,
			message: `job ${id} running after resume`,
		});
		await cluster.run(['scancel', id]);
	} finally {
		await cluster.resume().catch(() => {});
	}
}, 120_000);

test('stop() leaves no daemon or job process of the cluster behind', async () => {
	const other = await startSlurm();
	let stopped = false;
	try {
		const file = path.join(other.dir, 'job.sh');
		await writeFile(file, '#!/bin/sh\necho $$\nexec sleep 600\n', {mode: 0o700});
		const out = path.join(other.dir, 'out');
		const sub = await other.run(['sbatch', '--parsable', '--output', out, file]);
		expect(sub.code).toBe(0);
		const pid = Number(
			await waitFor(async () => (await readFile(out, 'utf8')).trim(), {timeoutMs: 60_000}),
		);
		const pids = (await readFile(path.join(other.dir, 'run', 'slurmctld.pid'), 'utf8')).trim();
		await other.stop();
		stopped = true;
		expect(await isAlive(pid)).toBe(false);
		expect(await isAlive(Number(pids))).toBe(false);
		// And the first cluster still answers: nothing was shared.
		expect((await cluster.run(['squeue', '-h'])).code).toBe(0);
	} finally {
		if (!stopped) await other.stop();
	}
}, 180_000);
