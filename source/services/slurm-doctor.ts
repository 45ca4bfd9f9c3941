/**
 * `gpujup doctor --slurm`'s steps after the login node is reached (the chain's own steps come
 * first, as for a GPU host): Slurm's commands, the partition, Jupyter in the env, and ssh from the
 * login node to the job's node. Each failure carries its fix. The wiring passes a runner on the
 * login node and, for the last step, a way to read an SSH banner through it.
 */
import {activation, describeEnv, type JupyterEnv} from '../core/jupyter-command.js';
import {sanitizeLine} from '../core/sanitize.js';
import {shCommand} from '../core/shell.js';
import {partitionsIn} from '../core/slurm.js';
import {runText} from './command-runner.js';
import {SlurmJobService, type SlurmJobOptions} from './slurm-job.js';

/** One line of the report (the same shape as doctor's own steps). */
export type SlurmDoctorStep = {
	readonly name: string;
	readonly ok: boolean;
	readonly detail: string;
	readonly fix: string | null;
};

export type SlurmDoctorOptions = SlurmJobOptions & {
	/** `--node-ssh-port`. */
	readonly nodeSshPort: number;
	/**
	 * The first line the node's sshd sends, read through the login node (forwardOut(node, port));
	 * rejects with the reason when the login node cannot reach it.
	 */
	readonly nodeBanner: (node: string, port: number) => Promise<string>;
};

const fixFor = {
	noSlurm:
		'log in to the login node and check that `sbatch --version` works there; with environment modules, add `module load slurm` to ~/.bashrc (gpujup runs commands through a non-interactive shell)',
};

/** Runs the checks in order, stopping at the first failure. */
export async function runSlurmDoctorChecks(
	options: SlurmDoctorOptions,
): Promise<SlurmDoctorStep[]> {
	const steps: SlurmDoctorStep[] = [];
	const pass = (name: string, detail: string) => steps.push({name, ok: true, detail, fix: null});
	const fail = (name: string, detail: string, fix: string) => {
		steps.push({name, ok: false, detail, fix});
		return steps;
	};
	let service: SlurmJobService;
	try {
		service = new SlurmJobService(options);
	} catch (error: unknown) {
		return fail(
			'sbatch arguments',
			(error as Error).message,
			'change --sbatch (or sbatch = […] in config.toml)',
		);
	}

	const run = async (command: string) =>
		runText(options.runner, command, {timeoutMs: options.commandTimeoutMs ?? 30_000});
	try {
		const probe = await service.probe();
		pass(
			'Slurm commands',
			`${probe.version?.text ?? 'Slurm'} on the login node: sbatch, squeue and scancel on PATH (user ${probe.user})`,
		);
	} catch (error: unknown) {
		return fail('Slurm commands', (error as Error).message, fixFor.noSlurm);
	}

	// Partitions: the ones --sbatch names, else the cluster's default.
	try {
		const listed = await run('sinfo --noheader --format=%P');
		const names = listed.stdout
			.split('\n')
			.map((line) => sanitizeLine(line).trim())
			.filter(Boolean);
		const available = names.map((name) => name.replace(/\*$/, ''));
		const asked = partitionsIn(options.sbatchArgs);
		const list = available.join(', ') || 'none';
		if (asked.length > 0) {
			const missing = asked.filter((name) => !available.includes(name));
			if (missing.length > 0)
				return fail(
					'partition',
					`no partition ${missing.join(', ')} on this cluster (there are: ${list})`,
					`name one of them in --sbatch='--partition NAME' (sinfo -s on the login node shows them with their limits)`,
				);
			pass('partition', `${asked.join(', ')} exists (partitions: ${list})`);
		} else {
			const fallback = names.find((name) => name.endsWith('*'))?.replace(/\*$/, '');
			if (!fallback)
				return fail(
					'partition',
					`--sbatch names no partition and the cluster has no default one (there are: ${list})`,
					`name one in --sbatch='--partition NAME'`,
				);
			pass('partition', `the default, ${fallback} (partitions: ${list})`);
		}
	} catch (error: unknown) {
		return fail('partition', (error as Error).message, fixFor.noSlurm);
	}

	// Jupyter in the env: on the job's node when one runs (srun inside it), else on the login node,
	// which shares the home and software with the nodes on most clusters.
	const job = await service.find().catch(() => null);
	const running = job?.state === 'RUNNING' ? job : null;
	const check = jupyterCheckScript(options.env);
	const where = running ? `node ${running.node ?? '?'} (job ${running.id})` : 'the login node';
	try {
		const command = running
			? shCommand(
					'exec srun --jobid="$1" --overlap --ntasks=1 --nodes=1 bash -c "$2"',
					[running.id, check],
					'gpujup-doctor',
				)
			: shCommand('exec bash -c "$1"', [check], 'gpujup-doctor');
		const result = await run(command);
		const version = result.stdout
			.split('\n')
			.map((line) => sanitizeLine(line).trim())
			.find((line) => line !== '');
		if (result.code !== 0 || !version)
			return fail(
				'Jupyter in the env',
				`no Jupyter in ${describeEnv(options.env)} on ${where}: ${sanitizeLine(result.stderr.trim().split('\n').pop() ?? '') || `exit ${result.code}`}`,
				installFix(options.env),
			);
		pass('Jupyter in the env', `${describeEnv(options.env)} on ${where}: ${version}`);
	} catch (error: unknown) {
		return fail('Jupyter in the env', (error as Error).message, installFix(options.env));
	}

	if (!running?.node) {
		pass(
			'ssh to the node',
			job
				? `not checked: job ${job.id} is ${job.state.toLowerCase()}${job.reason ? ` (${job.reason})` : ''}; run doctor again once it runs`
				: 'not checked: no job is running (gpujup connect --slurm submits one)',
		);
		return steps;
	}
	try {
		const banner = await options.nodeBanner(running.node, options.nodeSshPort);
		if (!banner.startsWith('SSH-'))
			return fail(
				'ssh to the node',
				`${running.node}:${options.nodeSshPort} answered, but not with SSH (${sanitizeLine(banner).slice(0, 80) || 'nothing'})`,
				`give the nodes' sshd port with --node-ssh-port`,
			);
		pass(
			'ssh to the node',
			`${running.node}:${options.nodeSshPort} from the login node: ${sanitizeLine(banner)}`,
		);
	} catch (error: unknown) {
		return fail(
			'ssh to the node',
			`the login node cannot reach ${running.node}:${options.nodeSshPort}: ${sanitizeLine((error as Error).message)}`,
			`ask the cluster's admins whether ssh to nodes where you hold a job is allowed (pam_slurm_adopt), and on which port (--node-ssh-port)`,
		);
	}
	return steps;
}

/** bash text: activate the env, then print Jupyter's version (exit non-zero without one). */
function jupyterCheckScript(env: JupyterEnv): string {
	return (
		`${activation(env)}` +
		'if v=$(jupyter lab --version 2>/dev/null); then echo "JupyterLab $v"; ' +
		'elif v=$(jupyter notebook --version 2>/dev/null); then echo "Jupyter Notebook $v"; ' +
		'else echo "no jupyter lab or jupyter notebook on PATH" >&2; exit 127; fi'
	);
}

function installFix(env: JupyterEnv): string {
	switch (env.kind) {
		case 'none': {
			return 'install Jupyter for your user on the cluster (`python3 -m pip install --user notebook`), or give the env that has it with --env conda:NAME or --env venv:PATH';
		}
		case 'conda': {
			return `on the login node: conda activate ${env.name} && conda install notebook (or pip install notebook)`;
		}
		case 'venv': {
			return `on the login node: . ${env.path}/bin/activate && pip install notebook`;
		}
	}
}
