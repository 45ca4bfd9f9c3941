import {execFileSync, spawnSync} from 'node:child_process';
import {mkdtempSync, readFileSync, rmSync, statSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {describe, expect, test} from 'vitest';
import {
	activation,
	describeEnv,
	jupyterArgs,
	envKernel,
	jupyterScript,
	missingIpykernelMessage,
} from '../../source/core/jupyter-command.js';

describe('jupyter command line', () => {
	test('pins Jupyter to the loopback port, never moving, and adds --allow-root for root', () => {
		expect(jupyterArgs({port: 19508, notebookDir: '/home/u/nb', allowRoot: false})).toEqual([
			'--no-browser',
			'--ip=127.0.0.1',
			'--port=19508',
			'--port-retries=0',
			'--notebook-dir=/home/u/nb',
		]);
		expect(jupyterArgs({port: 1, notebookDir: '/', allowRoot: true}).at(-1)).toBe('--allow-root');
	});

	test('an explicit --jupyter-cmd is exec-ed as written, the flags quoted', () => {
		expect(
			jupyterScript({
				cmd: '/opt/jl/bin/jupyter lab',
				env: {kind: 'none'},
				port: 8888,
				notebookDir: "/home/u/my 'nb'",
				allowRoot: false,
				dataDir: '/s/jupyter-data',
			}),
		).toBe(
			"exec /opt/jl/bin/jupyter lab --no-browser --ip=127.0.0.1 --port=8888 --port-retries=0 '--notebook-dir=/home/u/my '\\''nb'\\'''",
		);
	});

	test('without --jupyter-cmd, lab when the environment has it, else notebook', () => {
		expect(
			jupyterScript({
				cmd: null,
				env: {kind: 'none'},
				port: 1,
				notebookDir: '/n',
				allowRoot: false,
				dataDir: null,
			}),
		).toBe(
			'if jupyter lab --version >/dev/null 2>&1; then exec jupyter lab --no-browser --ip=127.0.0.1 --port=1 --port-retries=0 --notebook-dir=/n; ' +
				'else exec jupyter notebook --no-browser --ip=127.0.0.1 --port=1 --port-retries=0 --notebook-dir=/n; fi',
		);
	});

	test('venv and conda activation', () => {
		expect(activation({kind: 'none'})).toBe('');
		expect(activation({kind: 'venv', path: '/opt/my venv/'})).toBe(
			". '/opt/my venv/bin/activate' && ",
		);
		const conda = activation({kind: 'conda', name: 'tf'});
		expect(conda.startsWith('__conda_base="$(conda info --base 2>/dev/null)"')).toBe(true);
		expect(conda).toContain('$HOME/miniconda3');
		expect(
			conda.endsWith('. "$__conda_base/etc/profile.d/conda.sh" && conda activate tf && '),
		).toBe(true);
		expect(describeEnv({kind: 'conda', name: 'tf'})).toBe('conda:tf');
		expect(describeEnv({kind: 'venv', path: '/v'})).toBe('venv:/v');
	});

	test('the conda script is valid bash and says when conda is nowhere', () => {
		const script = `${activation({kind: 'conda', name: 'x'})}echo unreachable`;
		let stderr = '';
		let status = 0;
		try {
			execFileSync('/bin/bash', ['-c', script], {
				env: {PATH: '/nonexistent', HOME: '/nonexistent'},
				stdio: ['ignore', 'pipe', 'pipe'],
			});
		} catch (error) {
			const failure = error as {status: number; stderr: Buffer};
			status = failure.status;
			stderr = failure.stderr.toString();
		}

		expect(status).toBe(127);
		expect(stderr).toContain('gpujup: conda not found');
	});

	test('with an env, its python becomes the python3 kernel, first on JUPYTER_PATH', () => {
		expect(envKernel({kind: 'none'}, '/s/data')).toBe('');
		expect(envKernel({kind: 'venv', path: '/v'}, null)).toBe('');
		const venv = envKernel({kind: 'venv', path: '/opt/my venv/'}, '/s/jupyter-data');
		expect(venv.startsWith("if [ ! -x '/opt/my venv/bin/python' ]; then")).toBe(true);
		expect(venv).toContain("'Python 3 (venv:/opt/my venv/)'");
		expect(
			venv.endsWith('export JUPYTER_PATH=/s/jupyter-data"${JUPYTER_PATH:+:$JUPYTER_PATH}" && '),
		).toBe(true);
		expect(envKernel({kind: 'conda', name: 'tf'}, '/d')).toContain('"$CONDA_PREFIX/bin/python"');
		// After activation, before Jupyter.
		const script = jupyterScript({
			cmd: 'jupyter notebook',
			env: {kind: 'venv', path: '/v'},
			port: 1,
			notebookDir: '/n',
			allowRoot: false,
			dataDir: '/d',
		});
		expect(script.startsWith('. /v/bin/activate && if [ ! -x /v/bin/python ]')).toBe(true);
		expect(script).toMatch(/JUPYTER_PATH:\+:\$JUPYTER_PATH\}" && exec jupyter notebook /);
	});

	test('the kernel script writes the spec with the env python, keeps JUPYTER_PATH, or refuses', () => {
		const root = mkdtempSync(path.join(os.tmpdir(), 'gpujup-kernel-'));
		try {
			const run = (python: string) =>
				spawnSync(
					'/bin/bash',
					[
						'-c',
						`${envKernel({kind: 'conda', name: 'x'}, path.join(root, 'data'))}echo "$JUPYTER_PATH"`,
					],
					{
						env: {CONDA_PREFIX: python, JUPYTER_PATH: '/mine', PATH: '/usr/bin:/bin'},
						encoding: 'utf8',
						// Not a socket: Debian's bash reads ~/.bashrc when stdin is one (as from sshd).
						stdio: ['ignore', 'pipe', 'pipe'],
					},
				);
			// Debian's python3 has ipykernel: a conda prefix whose bin/python is it.
			const prefix = path.join(root, 'env');
			execFileSync('/bin/mkdir', ['-p', path.join(prefix, 'bin')]);
			execFileSync('/bin/ln', ['-s', '/usr/bin/python3', path.join(prefix, 'bin', 'python')]);
			const good = run(prefix);
			expect(good.stderr).toBe('');
			expect(good.status).toBe(0);
			expect(good.stdout).toBe(`${path.join(root, 'data')}:/mine\n`);
			const file = path.join(root, 'data', 'kernels', 'python3', 'kernel.json');
			expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({
				argv: [
					path.join(prefix, 'bin', 'python'),
					'-m',
					'ipykernel_launcher',
					'-f',
					'{connection_file}',
				],
				display_name: 'Python 3 (conda:x)',
				language: 'python',
				metadata: {debugger: true},
			});
			expect(statSync(file).mode & 0o777).toBe(0o600);

			// A prefix with no python at all, and one whose python lacks ipykernel.
			for (const broken of [path.join(root, 'nothing'), path.join(root, 'bare')]) {
				if (broken.endsWith('bare'))
					execFileSync('/usr/bin/python3', ['-m', 'venv', '--without-pip', broken]);
				const refused = run(broken);
				expect(refused.status).toBe(78);
				expect(refused.stdout).toBe('');
				expect(refused.stderr).toBe(
					`gpujup: ${missingIpykernelMessage({kind: 'conda', name: 'x'})}\n`,
				);
			}
		} finally {
			rmSync(root, {recursive: true, force: true});
		}
	});
});
