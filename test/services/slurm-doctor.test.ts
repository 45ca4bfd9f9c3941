/**
 * `doctor --slurm`'s steps (services/slurm-doctor.ts) against the real test cluster, its login
 * node a real OpenSSH sshd, the node's sshd reached through the login node with forwardOut (the
 * same sshd plays the node: it is all one machine).
 */
import {existsSync} from 'node:fs';
import {mkdir, symlink} from 'node:fs/promises';
import path from 'node:path';
import type {Client} from 'ssh2';
import {afterAll, beforeAll, expect, test} from 'vitest';
import {localRunner, sshRunner} from '../../source/services/command-runner.js';
import {runSlurmDoctorChecks, type SlurmDoctorOptions} from '../../source/services/slurm-doctor.js';
import {SlurmJobService} from '../../source/services/slurm-job.js';
import {startLab, type Lab} from '../helpers/openssh-lab.js';
import {freePort} from '../helpers/ports.js';
import {gpuHostSession} from '../helpers/ssh2-client.js';
import {startSlurm, type SlurmCluster} from '../helpers/slurm.js';
import {waitFor} from '../helpers/wait-for.js';

let cluster: SlurmCluster;
let lab: Lab;
let client: Client;

beforeAll(async () => {
	cluster = await startSlurm();
	lab = await startLab({reverse: 'none', hostEnv: cluster.sessionEnv()});
	client = await gpuHostSession(lab);
}, 120_000);

afterAll(async () => {
	client?.destroy();
	await cluster?.stop();
	await lab?.dispose();
}, 60_000);

/** The first line the node's sshd sends, through the login node (what the wiring gives). */
const nodeBanner = async (node: string, port: number): Promise<string> =>
	new Promise((resolve, reject) => {
		client.forwardOut('127.0.0.1', 0, node, port, (error, stream) => {
			if (error) {
				reject(error);
				return;
			}
			let text = '';
			stream.on('data', (chunk: Buffer) => {
				text += chunk.toString('latin1');
				const end = text.indexOf('\n');
				if (end !== -1) {
					stream.destroy();
					resolve(text.slice(0, end).trimEnd());
				}
			});
			stream.on('close', () => resolve(text));
			stream.on('error', reject);
		});
	});

const options = (extra: Partial<SlurmDoctorOptions> = {}): SlurmDoctorOptions => ({
	runner: sshRunner(() => client),
	profile: 'doctor',
	sbatchArgs: [],
	env: {kind: 'none'},
	jupyterCmd: null,
	notebookDir: null,
	nodeSshPort: lab.gpu.port,
	nodeBanner,
	...extra,
});

const summary = (steps: ReadonlyArray<{name: string; ok: boolean}>) =>
	steps.map((step) => `${step.ok ? '✓' : '✗'} ${step.name}`);

test('no job yet: commands, the default partition and Jupyter on the login node pass; ssh to the node waits for a job', async () => {
	const steps = await runSlurmDoctorChecks(options());
	expect(summary(steps)).toEqual([
		'✓ Slurm commands',
		'✓ partition',
		'✓ Jupyter in the env',
		'✓ ssh to the node',
	]);
	expect(steps[0]!.detail).toMatch(
		/^slurm(?:-wlm)? 22\.05\.\d+ on the login node: sbatch, squeue and scancel on PATH \(user root\)$/,
	);
	expect(steps[1]!.detail).toBe('the default, gpu (partitions: gpu)');
	expect(steps[2]!.detail).toMatch(/^none on the login node: Jupyter Notebook \d+\.\d+/);
	expect(steps[3]!.detail).toBe(
		'not checked: no job is running (gpujup connect --slurm submits one)',
	);
}, 60_000);

test('with the job running: Jupyter checked on its node through srun, and the node’s sshd through the login node', async () => {
	const job = new SlurmJobService({...options(), sbatchArgs: ['--partition', 'gpu']});
	const submitted = await job.attach();
	try {
		await waitFor(async () => (await job.refresh())?.state === 'RUNNING', {
			timeoutMs: 60_000,
			message: 'running',
		});
		const steps = await runSlurmDoctorChecks(options({sbatchArgs: ['--partition', 'gpu']}));
		expect(summary(steps)).toEqual([
			'✓ Slurm commands',
			'✓ partition',
			'✓ Jupyter in the env',
			'✓ ssh to the node',
		]);
		expect(steps[1]!.detail).toBe('gpu exists (partitions: gpu)');
		expect(steps[2]!.detail).toMatch(
			new RegExp(`^none on node localhost \\(job ${submitted.id}\\): Jupyter Notebook`),
		);
		expect(steps[3]!.detail).toMatch(
			new RegExp(`^localhost:${lab.gpu.port} from the login node: SSH-2\\.0-OpenSSH`),
		);

		// The node's sshd on another port: refused, and the fix names pam_slurm_adopt and the flag.
		const closed = await freePort();
		const refused = await runSlurmDoctorChecks(options({nodeSshPort: closed}));
		expect(refused.at(-1)).toMatchObject({
			name: 'ssh to the node',
			ok: false,
			detail: expect.stringMatching(
				new RegExp(`^the login node cannot reach localhost:${closed}: `),
			),
			fix: expect.stringMatching(/pam_slurm_adopt.*--node-ssh-port/),
		});
	} finally {
		await job.cancel();
		job.dispose();
	}
}, 120_000);

test('each failure stops the run with its fix: an unknown partition, an env without Jupyter, no Slurm on PATH', async () => {
	const partition = await runSlurmDoctorChecks(options({sbatchArgs: ['-p', 'gpu,a100']}));
	expect(summary(partition)).toEqual(['✓ Slurm commands', '✗ partition']);
	expect(partition[1]).toMatchObject({
		detail: 'no partition a100 on this cluster (there are: gpu)',
		fix: expect.stringMatching(/--partition NAME/),
	});

	const venv = path.join(cluster.dir, 'no-such-venv');
	const env = await runSlurmDoctorChecks(options({env: {kind: 'venv', path: venv}}));
	expect(summary(env)).toEqual(['✓ Slurm commands', '✓ partition', '✗ Jupyter in the env']);
	expect(env[2]).toMatchObject({
		detail: expect.stringMatching(new RegExp(`^no Jupyter in venv:${venv} on the login node: `)),
		fix: `on the login node: . ${venv}/bin/activate && pip install notebook`,
	});

	// A login shell whose PATH has the basics but no Slurm.
	const bin = path.join(cluster.dir, 'bare-bin');
	await mkdir(bin);
	for (const tool of ['sh', 'id', 'head', 'cat', 'setsid', 'sleep']) {
		const where = ['/usr/bin', '/bin'].find((dir) => existsSync(path.join(dir, tool)));
		await symlink(path.join(where!, tool), path.join(bin, tool));
	}
	const bare = await runSlurmDoctorChecks(
		options({runner: localRunner({...cluster.env(), PATH: bin, HOME: lab.gpuHome})}),
	);
	expect(summary(bare)).toEqual(['✗ Slurm commands']);
	expect(bare[0]).toMatchObject({
		detail: expect.stringMatching(/^sbatch, squeue, scancel not found on the login node's PATH/),
		fix: expect.stringMatching(/module load slurm/),
	});
}, 120_000);
