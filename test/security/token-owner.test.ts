import {randomBytes} from 'node:crypto';
import {mkdir, readFile, writeFile} from 'node:fs/promises';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {runGpujup, type GpujupProcess} from '../e2e/gpujup-process.js';
import {
	connectArgs,
	hostArgs,
	spawn,
	startChain,
	stopGpujup,
	waitReady,
	type Chain,
} from '../faults/fixture.js';
import {freePort} from '../helpers/ports.js';
import {startSquatter, type Squatter} from '../helpers/squatter.js';
import {waitFor} from '../helpers/wait-for.js';

/** The flags `status` and `doctor` share with connect, against the lab's OpenSSH tunnel. */
const chainFlags = (chain: Chain) =>
	connectArgs(chain.lab, {jupyterPort: chain.jupyterPort}).filter(
		(arg, i, all) =>
			arg !== 'connect' &&
			arg !== '--no-tui' &&
			arg !== '--local-port' &&
			all[i - 1] !== '--local-port',
	);

const heldMessage = /something else holds/i;

/**
 * Another user (`nobody`) binds the GPU host's Jupyter port after Jupyter went away: gpujup must
 * not hand it the token, on the laptop (connect, status, doctor: the socket's owner uid in
 * /proc/net/tcp is not the SSH user's) nor on the host (the supervised pid does not own it).
 */
describe('the Jupyter token goes only to a listener of ours', () => {
	let chain: Chain;
	let squatter: Squatter;
	const staleToken = randomBytes(16).toString('hex');

	beforeAll(async () => {
		chain = await startChain({jupyter: false});
		// What a Jupyter that crashed leaves behind: its runtime file, with its token and port.
		const env = chain.lab.gpuEnv();
		const runtime = path.join(
			env['XDG_DATA_HOME'] ?? path.join(chain.lab.gpuHome, '.local', 'share'),
			'jupyter',
			'runtime',
		);
		await mkdir(runtime, {recursive: true});
		await writeFile(
			path.join(runtime, 'nbserver-4242.json'),
			JSON.stringify({
				base_url: '/',
				hostname: '127.0.0.1',
				notebook_dir: chain.scratch,
				password: false,
				pid: 4242,
				port: chain.jupyterPort,
				secure: false,
				token: staleToken,
				url: `http://127.0.0.1:${chain.jupyterPort}/`,
			}),
			{mode: 0o600},
		);
		squatter = await startSquatter(chain.jupyterPort);
	}, 180_000);

	afterAll(async () => {
		await squatter?.dispose();
		await chain?.dispose();
	}, 60_000);

	it('connect never sends the token and says something else holds the port', async () => {
		const connect = spawn(
			connectArgs(chain.lab, {jupyterPort: chain.jupyterPort}),
			chain.lab.env(),
		);
		try {
			await waitReady(connect, ['relay', 'host'], {timeoutMs: 120_000});
			const told = await waitFor(
				() =>
					connect.lines.find(
						(line) => line.type === 'jupyter' && heldMessage.test(String(line['message'] ?? '')),
					),
				{timeoutMs: 60_000, message: 'a jupyter event saying something else holds the port'},
			);
			expect(String(told['message'])).toMatch(/uid 65534 \(nobody\)/);
			expect(told['state']).not.toBe('running');
			const url = await runGpujup(['url'], chain.lab.env(), 30_000);
			expect(url.stdout).not.toContain(staleToken);
			expect(url.code).toBe(1);
		} finally {
			await stopGpujup(connect);
		}
		expect(squatter.requests()).not.toContain(staleToken);
	}, 240_000);

	it('the one-shot status never sends the token and says something else holds the port', async () => {
		const result = await runGpujup(['status', ...chainFlags(chain)], chain.lab.env(), 120_000);
		expect(result.code).toBe(1);
		expect(result.stdout).toMatch(heldMessage);
		expect(result.stdout).toMatch(/nobody/);
		expect(squatter.requests()).not.toContain(staleToken);
	}, 240_000);

	it('doctor never sends the token and names the owner of the port', async () => {
		const result = await runGpujup(['doctor', ...chainFlags(chain)], chain.lab.env(), 120_000);
		expect(result.code).toBe(1);
		expect(result.stdout).toMatch(/✗ Jupyter .*something else holds/i);
		expect(result.stdout).toMatch(/uid 65534 \(nobody\)/);
		expect(squatter.requests()).not.toContain(staleToken);
	}, 240_000);
});

/**
 * `gpujup host` supervising a "Jupyter" that never binds its port (a python sleeping), while
 * `nobody` binds it: the supervisor's probe and the laptop's agent path must not send the token.
 */
describe('gpujup host does not send its token to a port its Jupyter does not own', () => {
	let chain: Chain;
	let squatter: Squatter | undefined;
	let host: GpujupProcess | undefined;

	beforeAll(async () => {
		chain = await startChain({jupyter: false});
	}, 180_000);

	afterAll(async () => {
		await stopGpujup(host);
		await squatter?.dispose();
		if (chain)
			await runGpujup(
				[
					...hostArgs(chain.lab, {jupyterPort: chain.jupyterPort, notebookDir: chain.scratch}),
					'--stop-jupyter',
				],
				chain.lab.gpuEnv(),
			).catch(() => undefined);
		await chain?.dispose();
	}, 60_000);

	it('tells the user something else holds the port, and the squatter gets no token', async () => {
		const args = hostArgs(chain.lab, {jupyterPort: chain.jupyterPort, notebookDir: chain.scratch});
		// Its own tunnel on a port of its own: the laptop uses the lab's `ssh -R`.
		args[args.indexOf('--relay-port') + 1] = String(await freePort());
		host = spawn(
			[...args, '--jupyter-cmd', `python3 -c 'import time; time.sleep(600)'`],
			chain.lab.gpuEnv(),
		);
		await host.waitForLine((l) => l.type === 'jupyter' && l['state'] === 'starting' && !!l['pid'], {
			timeoutMs: 120_000,
		});
		squatter = await startSquatter(chain.jupyterPort);
		const told = await host.waitForLine(
			(l) => l.type === 'jupyter' && heldMessage.test(String(l['message'] ?? '')),
			{timeoutMs: 60_000},
		);
		expect(String(told['message'])).toMatch(/uid 65534 \(nobody\)/);
		const stateDir =
			chain.lab.gpuEnv()['XDG_STATE_HOME'] ?? path.join(chain.lab.gpuHome, '.local', 'state');
		const token = (
			await readFile(path.join(stateDir, 'gpujup', 'default', 'token'), 'utf8')
		).trim();
		expect(token).toMatch(/^[\da-f]{32,}$/);

		// The laptop, with the agent there: it must not probe the squatter with the agent's token.
		const connect = spawn(
			connectArgs(chain.lab, {jupyterPort: chain.jupyterPort}),
			chain.lab.env(),
		);
		try {
			await waitReady(connect, ['relay', 'host'], {timeoutMs: 120_000});
			await waitFor(
				() =>
					connect.lines.find(
						(line) => line.type === 'jupyter' && heldMessage.test(String(line['message'] ?? '')),
					),
				{timeoutMs: 60_000, message: 'connect: something else holds the port'},
			);
		} finally {
			await stopGpujup(connect);
		}
		expect(squatter.requests()).not.toContain(token);
	}, 300_000);
});
