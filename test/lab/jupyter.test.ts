import {readFile} from 'node:fs/promises';
import path from 'node:path';
import {afterEach, describe, expect, it} from 'vitest';
import {runKernelCode, startJupyter} from '../helpers/jupyter.js';
import {startLab, type Lab} from '../helpers/openssh-lab.js';
import {freePort, tempDir} from '../helpers/ports.js';
import {waitFor} from '../helpers/wait-for.js';

describe('jupyter helper', () => {
	let lab: Lab | undefined;
	const cleanups: Array<() => Promise<void>> = [];
	afterEach(async () => {
		for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
		await lab?.dispose();
		lab = undefined;
	});

	it('runs a kernel through an ssh -L forward over both hops', async () => {
		lab = await startLab();
		const token = `t${Math.random().toString(36).slice(2)}`;
		const jupyter = await startJupyter({
			port: await freePort(),
			token,
			dir: lab.gpuHome,
			env: lab.gpuEnv(),
		});
		cleanups.push(jupyter.dispose);
		const jupyterPort = Number(new URL(jupyter.url).port);

		// The token is only in the environment, never in the process arguments.
		const cmdline = await readFile(`/proc/${jupyter.pid}/cmdline`, 'utf8');
		expect(cmdline).toContain(`--port=${jupyterPort}`);
		expect(cmdline).not.toContain(token);

		// What a GPU-host session sees matches the runtime dir Jupyter wrote to.
		const listed = await lab.ssh([...lab.sshArgs(), 'ls "$(jupyter --runtime-dir)"']);
		expect(listed.code).toBe(0);
		expect(listed.stdout).toContain(`nbserver-${jupyter.pid}.json`);
		expect(jupyter.runtimeDir).toBe(
			path.join(lab.gpuHome, '.local', 'share', 'jupyter', 'runtime'),
		);

		const localPort = await freePort();
		const forward = lab.spawnSsh([
			'-N',
			'-o',
			'ExitOnForwardFailure=yes',
			'-L',
			`127.0.0.1:${localPort}:127.0.0.1:${jupyterPort}`,
			...lab.sshArgs(),
		]);
		cleanups.push(async () => {
			forward.kill();
		});
		const base = `http://127.0.0.1:${localPort}/`;
		const status = await waitFor(
			async () => {
				const response = await fetch(`${base}api/status`, {
					headers: {authorization: `token ${token}`},
				});
				return response.status === 200
					? ((await response.json()) as Record<string, unknown>)
					: undefined;
			},
			{message: 'jupyter /api/status through ssh -L'},
		);
		expect(status).toHaveProperty('started');
		const denied = await fetch(`${base}api/status`);
		expect(denied.status).toBe(403);

		expect(await runKernelCode(base, token, 'print(6*7)')).toBe('42\n');
		// The kernel is Debian's python3 (with ipykernel), not root's pyenv.
		expect(await runKernelCode(base, token, 'import sys; print(sys.executable)')).toBe(
			'/usr/bin/python3\n',
		);
		await expect(runKernelCode(base, token, '1/0')).rejects.toThrow(/ZeroDivisionError/);

		const kernels = (await (
			await fetch(`${base}api/kernels`, {headers: {authorization: `token ${token}`}})
		).json()) as unknown[];
		expect(kernels).toEqual([]);
	});

	it('starts with isolated dirs without a lab and stops with its process group', async () => {
		const dir = await tempDir('jupyter-plain');
		cleanups.push(dir.dispose);
		const token = 'plain-token';
		const jupyter = await startJupyter({port: await freePort(), token, dir: dir.path});
		expect(jupyter.runtimeDir).not.toContain('/root/.local');
		expect(await runKernelCode(jupyter.url, token, 'print("hi")')).toBe('hi\n');
		await jupyter.dispose();
		await expect(fetch(`${jupyter.url}api/status`)).rejects.toThrow();
	});
});
