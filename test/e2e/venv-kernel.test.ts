import {execFileSync} from 'node:child_process';
import {mkdirSync, realpathSync, writeFileSync} from 'node:fs';
import path from 'node:path';
import {describe, expect, it} from 'vitest';
import {makeVenv, runKernelCode} from '../helpers/jupyter.js';

import {
	hostLabHooks,
	labHostArgs,
	spawnGpujup,
	waitForUrl,
	spawnLabConnect,
} from './gpujup-process.js';

/**
 * Issue 10 item 1 end to end: `gpujup host --env venv:PATH` over Debian's Jupyter, a venv made the
 * way a user makes one, and a notebook kernel reached from the laptop through real OpenSSH and
 * gpujup's forward runs in that venv.
 */
describe('gpujup host --env venv:PATH, reached through gpujup connect', () => {
	const fixture = hostLabHooks('gpujup-venv-e2e-');

	it("a kernel started through the laptop's port imports a module that only the venv has", async () => {
		// Debian's python3 over Debian's Jupyter: the venv has no jupyter of its own, so the server
		// is /usr/bin/jupyter, whose own python3 kernelspec names /usr/bin/python3.
		const venv = path.join(fixture.dir.path, 'venvs', 'train env');
		const sitePackages = makeVenv(venv);
		const pkg = path.join(sitePackages, 'venvonly_pkg');
		mkdirSync(pkg);
		writeFileSync(path.join(pkg, '__init__.py'), 'WHERE = "only in the venv"\n');
		// Not importable outside the venv: the test would prove nothing otherwise.
		expect(() =>
			execFileSync('/usr/bin/python3', ['-c', 'import venvonly_pkg'], {stdio: 'pipe'}),
		).toThrow();

		const notebooks = path.join(fixture.dir.path, 'notebooks');
		mkdirSync(notebooks);
		const host = spawnGpujup(
			[...labHostArgs(fixture.lab, fixture.jupyterPort, notebooks), '--env', `venv:${venv}`],
			fixture.lab.gpuEnv(),
		);
		try {
			await host.waitForLine((l) => l.type === 'hop' && l.hop === 'reverse' && l.state === 'ready');
			await host.waitForLine((l) => l.type === 'jupyter' && l.state === 'running', {
				timeoutMs: 120_000,
			});

			const connect = spawnLabConnect(fixture.lab, fixture.jupyterPort);
			try {
				await connect.waitForLine((l) => l.type === 'jupyter' && l.state === 'running', {
					timeoutMs: 120_000,
				});
				const forward = await connect.waitForLine(
					(l) => l.type === 'forward' && l.state === 'listening',
				);
				const url = await waitForUrl(fixture.lab.env());
				// The laptop's forwarded port, not the GPU host's own.
				const base = new URL(url);
				expect(`${base.hostname}:${base.port}`).toBe(forward['local']);
				expect(Number(base.port)).not.toBe(fixture.jupyterPort);
				const token = base.searchParams.get('token')!;

				const printed = await runKernelCode(
					`${base.origin}/`,
					token,
					'import sys, venvonly_pkg; print(venvonly_pkg.__file__); print(venvonly_pkg.WHERE); print(sys.prefix)',
					120_000,
				);
				expect(printed.split('\n')).toEqual([
					path.join(pkg, '__init__.py'),
					'only in the venv',
					realpathSync(venv),
					'',
				]);
			} finally {
				expect(await connect.stop()).toBe(0);
			}
		} finally {
			expect(await host.stop()).toBe(0);
		}
	}, 300_000);
});
