import {execFileSync} from 'node:child_process';
import {describe, expect, test} from 'vitest';
import {
	activation,
	describeEnv,
	jupyterArgs,
	jupyterScript,
	shellQuote,
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
			}),
		).toBe(
			"exec /opt/jl/bin/jupyter lab --no-browser --ip=127.0.0.1 --port=8888 --port-retries=0 '--notebook-dir=/home/u/my '\\''nb'\\'''",
		);
	});

	test('without --jupyter-cmd, lab when the environment has it, else notebook', () => {
		expect(
			jupyterScript({cmd: null, env: {kind: 'none'}, port: 1, notebookDir: '/n', allowRoot: false}),
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

	test('shellQuote survives a round trip through the shell', () => {
		for (const word of ['plain', 'a b', "it's", '$HOME', '`x`', '"q"', '']) {
			const out = execFileSync('/bin/sh', ['-c', `printf %s ${shellQuote(word)}`]).toString();
			expect(out).toBe(word);
		}
	});
});
