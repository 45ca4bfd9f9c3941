import {execFile} from 'node:child_process';
import {mkdir, readdir, readFile, writeFile} from 'node:fs/promises';
import path from 'node:path';
import {promisify} from 'node:util';
import {describe, expect, it} from 'vitest';
import {runKernelCode} from '../helpers/jupyter.js';
import {freePort, tempDir} from '../helpers/ports.js';
import {isAlive} from '../helpers/proc.js';
import {waitFor} from '../helpers/wait-for.js';
import {
	hostLabHooks,
	labHostArgs,
	runGpujup,
	spawnGpujup,
	waitForUrl,
	spawnLabConnect,
	waitForReconnect,
} from './gpujup-process.js';

const execFileP = promisify(execFile);

/** Every process's argv, to prove the token is in none. */
async function allCommandLines(): Promise<string> {
	const parts: string[] = [];
	for (const entry of await readdir('/proc')) {
		if (!/^\d+$/.test(entry)) continue;
		try {
			parts.push((await readFile(`/proc/${entry}/cmdline`, 'utf8')).replaceAll('\0', ' '));
		} catch {
			// Gone meanwhile.
		}
	}

	return parts.join('\n');
}

/** `gpujup host` against a real OpenSSH relay and Debian's Jupyter, reached by real OpenSSH clients. */
describe('gpujup host', () => {
	const fixture = hostLabHooks('gpujup-host-nb-');

	const hostArgs = () => labHostArgs(fixture.lab, fixture.jupyterPort, fixture.dir.path);

	const startHost = () => {
		const host = spawnGpujup(hostArgs(), fixture.lab.gpuEnv());
		fixture.children.push(host);
		return host;
	};

	const hostUrl = async () => waitForUrl(fixture.lab.gpuEnv());

	it('makes the tunnel and Jupyter that OpenSSH and gpujup connect reach; Jupyter outlives it', async () => {
		const host = startHost();
		await host.waitForLine((l) => l.type === 'hop' && l.hop === 'reverse' && l.state === 'ready');
		const running = await host.waitForLine((l) => l.type === 'jupyter' && l.state === 'running', {
			timeoutMs: 120_000,
		});
		const pid = running['pid'] as number;
		expect(running['url']).toBe(`http://127.0.0.1:${fixture.jupyterPort}/`);

		const url = await hostUrl();
		const token = new URL(url).searchParams.get('token')!;
		expect(token.length).toBeGreaterThanOrEqual(32);
		expect(url).toBe(`http://127.0.0.1:${fixture.jupyterPort}/?token=${token}`);

		// A real OpenSSH client: -J through the relay's reverse port, then -L to Jupyter.
		const localPort = await freePort();
		const ssh = fixture.lab.spawnSsh([
			'-N',
			'-o',
			'ExitOnForwardFailure=yes',
			'-L',
			`${localPort}:127.0.0.1:${fixture.jupyterPort}`,
			...fixture.lab.sshArgs(),
		]);
		try {
			await waitFor(
				async () => {
					const response = await fetch(`http://127.0.0.1:${localPort}/api/status`, {
						headers: {authorization: `token ${token}`},
					}).catch(() => null);
					return response?.status === 200;
				},
				{timeoutMs: 60_000},
			);
			expect(await runKernelCode(`http://127.0.0.1:${localPort}/`, token, 'print(6*7)')).toBe(
				'42\n',
			);
		} finally {
			ssh.kill();
		}

		// gpujup connect reaches the same Jupyter through the same tunnel, token from its runtime file.
		const connect = spawnLabConnect(fixture.lab, fixture.jupyterPort);
		try {
			await connect.waitForLine((l) => l.type === 'jupyter' && l.state === 'running');
			const connectUrl = await waitForUrl(fixture.lab.env());
			expect(new URL(connectUrl).searchParams.get('token')).toBe(token);
			expect(await runKernelCode(connectUrl.split('?')[0]!, token, 'print(7*6)')).toBe('42\n');
		} finally {
			expect(await connect.stop()).toBe(0);
		}

		expect(await allCommandLines()).not.toContain(token);
		expect(host.output()).not.toContain(token);
		expect(connect.output()).not.toContain(token);

		// kill -9: back on the same port with the same token.
		process.kill(pid, 'SIGKILL');
		const back = await host.waitForLine(
			(l) => l.type === 'jupyter' && l.state === 'running' && l['pid'] !== pid,
			{timeoutMs: 120_000},
		);
		expect(back['url']).toBe(`http://127.0.0.1:${fixture.jupyterPort}/`);
		expect(await hostUrl()).toBe(url);

		// A kernel, then gpujup host stops (SIGTERM, as systemd does): Jupyter and the kernel live on.
		const kernel = (await (
			await fetch(`http://127.0.0.1:${fixture.jupyterPort}/api/kernels`, {
				method: 'POST',
				headers: {authorization: `token ${token}`},
				body: '{}',
			})
		).json()) as {id: string};
		expect(await host.stop()).toBe(0);
		const jupyterPid = back['pid'] as number;
		expect(await isAlive(jupyterPid)).toBe(true);
		const kernels = (await (
			await fetch(`http://127.0.0.1:${fixture.jupyterPort}/api/kernels`, {
				headers: {authorization: `token ${token}`},
			})
		).json()) as Array<{id: string}>;
		expect(kernels.map((k) => k.id)).toContain(kernel.id);

		// A new gpujup host adopts it: same pid, same token.
		const second = startHost();
		const adopted = await second.waitForLine((l) => l.type === 'jupyter' && l.state === 'running', {
			timeoutMs: 120_000,
		});
		expect(adopted['pid']).toBe(jupyterPid);
		expect(await hostUrl()).toBe(url);
		await second.waitForLine((l) => l.type === 'hop' && l.hop === 'reverse' && l.state === 'ready');

		// The relay drops the tunnel's session: the port comes back.
		const before = second.lines.length;
		await fixture.lab.dropRelaySessions();
		await waitForReconnect(second, 'reverse', before);
		const echo = await waitFor(
			async () => {
				const result = await fixture.lab.ssh([
					...fixture.lab.sshArgs(),
					'echo',
					'through-the-tunnel',
				]);
				return result.code === 0 ? result.stdout : undefined;
			},
			{timeoutMs: 60_000},
		);
		expect(echo.trim()).toBe('through-the-tunnel');

		// A second gpujup host for the same profile refuses and names the first.
		const third = await runGpujup(hostArgs(), fixture.lab.gpuEnv());
		expect(third.code).not.toBe(0);
		expect(third.stderr).toMatch(/already running.*pid \d+/i);

		expect(await second.stop()).toBe(0);
		const stopped = await runGpujup(
			['host', '--stop-jupyter', '--jupyter-port', String(fixture.jupyterPort)],
			fixture.lab.gpuEnv(),
		);
		expect(stopped.code).toBe(0);
		await waitFor(async () => !(await isAlive(jupyterPid)), {timeoutMs: 30_000});
	});

	it('prints a systemd user unit with the current flags that systemd-analyze accepts', async () => {
		const dir = await tempDir('gpujup-unit-');
		try {
			// An interactive PATH as a user has it: pyenv shims, a wrapper dir, duplicates.
			const shims = path.join(fixture.dir.path, '.pyenv', 'shims');
			const wrapper = path.join(fixture.dir.path, 'wrapper', 'bin');
			for (const bin of [shims, wrapper]) {
				await mkdir(bin, {recursive: true});
				await writeFile(path.join(bin, 'jupyter'), '#!/bin/sh\nexit 1\n', {mode: 0o755});
			}

			const env = fixture.lab.gpuEnv();
			env['PATH'] = [shims, wrapper, '/usr/bin', path.dirname(process.execPath), '/usr/bin/']
				.concat((env['PATH'] ?? '').split(':'))
				.join(':');
			const result = await runGpujup(
				['host', '--relay', 'me@relay.example.org', '--env', 'conda:tf', '--print-systemd-unit'],
				env,
			);
			expect(result.code).toBe(0);
			const unit = result.stdout;
			expect(unit).toContain('\nRestart=always\n');
			expect(unit).toContain('\nRestartPreventExitStatus=2 78\n');
			expect(unit).toContain('\nStartLimitIntervalSec=0\n');
			expect(unit).toContain('\nKillMode=process\n');
			expect(unit).not.toContain('network-online');
			expect(unit).toMatch(
				/ExecStart=.*host.*--relay.*me@relay\.example\.org.*--env.*conda:tf.*--no-tui/,
			);
			const execStart = unit.split('\n').find((line) => line.startsWith('ExecStart='));
			expect(execStart).not.toContain('--print-systemd-unit');
			const pathLine = unit.split('\n').find((line) => line.startsWith('Environment=PATH='));
			const dirs = pathLine!.slice('Environment=PATH='.length).split(':');
			expect(new Set(dirs).size).toBe(dirs.length);
			for (const entry of dirs) {
				expect(entry, entry).toMatch(/^\/[^\s]*[^/]$/);
				expect(entry, entry).not.toMatch(/shims|^\/tmp\//);
				expect(entry.startsWith(fixture.dir.path), entry).toBe(false);
			}

			expect(dirs).toContain(path.dirname(process.execPath));
			expect(dirs).toContain('/usr/bin');

			// systemd's own check, in user mode, without a running systemd (as root in CI).
			const unitFile = path.join(fixture.dir.path, 'gpujup-host.service');
			await writeFile(unitFile, unit);
			const runtime = path.join(fixture.dir.path, 'run');
			await mkdir(runtime, {mode: 0o700});
			const verify = await execFileP('systemd-analyze', ['verify', '--user', unitFile], {
				env: {...process.env, XDG_RUNTIME_DIR: runtime, SYSTEMD_LOG_LEVEL: 'notice'},
			}).catch((error: {stdout: string; stderr: string; code: number}) => error);
			expect(verify.stderr).toBe('');
			expect(verify.stdout).toBe('');
		} finally {
			await dir.dispose();
		}
	});

	it('exits 78 under --no-tui when the relay refuses the key or its host key is not known', async () => {
		const dir = await tempDir('gpujup-host-creds-');
		try {
			const key = path.join(fixture.dir.path, 'other');
			await execFileP('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
			const refusedArgs = hostArgs();
			refusedArgs[refusedArgs.indexOf('--identity') + 1] = key;
			const refused = await runGpujup(refusedArgs, fixture.lab.gpuEnv());
			expect(refused.stderr).toMatch(/reverse: authentication .*failed/);
			expect(refused.code).toBe(78);

			const knownHosts = path.join(fixture.dir.path, 'known_hosts');
			await writeFile(knownHosts, '');
			const unknownArgs = hostArgs();
			unknownArgs[unknownArgs.indexOf('--known-hosts') + 1] = knownHosts;
			const unknown = await runGpujup(unknownArgs, fixture.lab.gpuEnv());
			expect(unknown.stderr).toMatch(/reverse: .*host key/i);
			expect(unknown.code).toBe(78);

			// Documented where a user of the unit looks.
			const help = await runGpujup(['host', '--help'], fixture.lab.gpuEnv());
			expect(help.stdout).toMatch(/78 .*(auth|key)/);
		} finally {
			await dir.dispose();
		}
	});
});
