/**
 * A fleet against real OpenSSH (issue 13): two GPU sshds, each with its own `ssh -R` tunnel and
 * its own Jupyter, behind one relay sshd; the built binary connects to both from `[fleet.gpu]` and
 * `[fleet.gpu2]` tables (their own Jupyter ports) and the lab's ~/.ssh/config (ProxyJump relay).
 * One relay connection serves both hosts; killing one host's tunnel takes down that host's
 * row only; `status --json` and `url` list both; the fleet view in tmux shows both and opens one.
 */
import {execFile} from 'node:child_process';
import {randomBytes} from 'node:crypto';
import {mkdir, readFile, writeFile} from 'node:fs/promises';
import path from 'node:path';
import {promisify} from 'node:util';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {installFakeNvidiaSmi} from '../helpers/fake-nvidia-smi.js';
import {samples} from '../helpers/nvidia-smi-samples.js';
import {runKernelCode, startJupyter, type RunningJupyter} from '../helpers/jupyter.js';
import {startLab, type Lab} from '../helpers/openssh-lab.js';
import {freePort, tempDir, type TempDir} from '../helpers/ports.js';
import {startTmux} from '../helpers/tmux.js';
import {waitFor} from '../helpers/wait-for.js';
import {cli, runGpujup, spawnGpujup, type JsonLine} from './gpujup-process.js';

const execFileP = promisify(execFile);

/** Established TCP connections from process `pid` to 127.0.0.1:`port` (ss, client side). */
async function connectionsTo(port: number, pid: number): Promise<number> {
	const {stdout} = await execFileP('ss', ['-Htnp', 'state', 'established', `( dport = :${port} )`]);
	return stdout.split('\n').filter((line) => line.includes(`pid=${pid},`)).length;
}

type HostStatus = {
	name: string;
	ok: boolean;
	hops: Array<{hop: string; name: string; state: string}>;
	jupyter: {state: string} | null;
};

describe('a fleet: two GPU hosts behind one relay', () => {
	let lab: Lab;
	let bin: TempDir;
	let notebooks: TempDir;
	const jupyters: RunningJupyter[] = [];
	const ports = {gpu: 0, gpu2: 0};
	const tokens = {gpu: randomBytes(16).toString('hex'), gpu2: randomBytes(16).toString('hex')};

	beforeAll(async () => {
		bin = await tempDir('gpujup-fleet-bin-');
		await installFakeNvidiaSmi(bin.path, {captures: [samples.captures[2]]});
		lab = await startLab({secondGpu: true, hostEnvPath: bin.path});
		notebooks = await tempDir('gpujup-fleet-nb-');
		ports.gpu = await freePort();
		ports.gpu2 = await freePort();
		// Each GPU host its own Jupyter, in its own HOME (its runtime files are its own).
		jupyters.push(
			await startJupyter({
				port: ports.gpu,
				token: tokens.gpu,
				dir: notebooks.path,
				env: lab.gpuEnv(),
			}),
			await startJupyter({
				port: ports.gpu2,
				token: tokens.gpu2,
				dir: notebooks.path,
				env: lab.gpu2!.env(),
			}),
		);
		await mkdir(path.join(lab.home, '.ssh'), {recursive: true, mode: 0o700});
		// `bad` and `bad2`: the relay as a user it does not know, refused for good (auth).
		const refused = (name: string) => [
			`Host ${name}`,
			'  HostName 127.0.0.1',
			`  Port ${lab.relay.port}`,
			'  User nosuchuser',
			`  IdentityFile ${lab.clientKey}`,
			'  IdentitiesOnly yes',
			'  IdentityAgent none',
			`  UserKnownHostsFile ${lab.knownHosts}`,
			'  StrictHostKeyChecking yes',
			'',
		];
		await writeFile(
			path.join(lab.home, '.ssh', 'config'),
			[await readFile(lab.sshConfig, 'utf8'), ...refused('bad'), ...refused('bad2')].join('\n'),
			{mode: 0o600},
		);
		await mkdir(path.join(lab.home, '.config', 'gpujup'), {recursive: true, mode: 0o700});
		await writeFile(
			path.join(lab.home, '.config', 'gpujup', 'config.toml'),
			[
				'keepalive = 1',
				'keepalive-count = 3',
				'[fleet.gpu]',
				`jupyter-port = ${ports.gpu}`,
				'local-port = 0',
				'[fleet.gpu2]',
				`jupyter-port = ${ports.gpu2}`,
				'local-port = 0',
				'',
			].join('\n'),
		);
	}, 240_000);

	afterAll(async () => {
		for (const jupyter of jupyters) await jupyter.dispose();
		await notebooks?.dispose();
		await lab?.dispose();
		await bin?.dispose();
	});

	const hostLine = (host: string, check: (line: JsonLine) => boolean) => (line: JsonLine) =>
		line['host'] === host && check(line);
	const ready = (host: string, hop: string) =>
		hostLine(host, (l) => l.type === 'hop' && l['hop'] === hop && l['state'] === 'ready');

	it('both hosts over one relay connection; one tunnel killed leaves the other host untouched', async () => {
		const gpujup = spawnGpujup(['--no-tui'], lab.env());
		try {
			for (const host of ['gpu', 'gpu2'] as const) {
				await gpujup.waitForLine(ready(host, 'host'), {timeoutMs: 90_000});
				await gpujup.waitForLine(
					hostLine(host, (l) => l.type === 'jupyter' && l['state'] === 'running'),
					{timeoutMs: 90_000},
				);
			}

			// Every line names its host.
			expect(
				gpujup.lines.filter((line) => !['gpu', 'gpu2'].includes(String(line['host']))),
			).toEqual([]);
			// Each host's forward reaches its own Jupyter: a kernel runs code through each.
			for (const host of ['gpu', 'gpu2'] as const) {
				const forward = gpujup.lines.find(
					hostLine(host, (l) => l.type === 'forward' && l['state'] === 'listening'),
				)!;
				expect(forward['remote']).toBe(`127.0.0.1:${ports[host]}`);
				const local = Number(String(forward['local']).split(':')[1]);
				expect(
					await runKernelCode(`http://127.0.0.1:${local}/`, tokens[host], `print("${host}")`),
				).toBe(`${host}\n`);
			}

			// One relay connection for both hosts (the lab's two `ssh -R` are other processes).
			expect(await connectionsTo(lab.relay.port, gpujup.child.pid!)).toBe(1);

			const status = await runGpujup(['status', '--json'], lab.env());
			const object = JSON.parse(status.stdout) as {ok: boolean; hosts: HostStatus[]};
			expect(
				object.hosts.map((h) => [h.name, h.ok, h.hops.map((hop) => hop.state), h.jupyter?.state]),
			).toEqual([
				['gpu', true, ['ready', 'ready'], 'running'],
				['gpu2', true, ['ready', 'ready'], 'running'],
			]);
			expect([object.ok, status.code]).toEqual([true, 0]);
			// Without the fleet's config (`gpujup gpu gpu2` on the command line), status finds the
			// running fleet by its sockets; with one alias it asks that host alone.
			const empty = path.join(lab.dir, 'empty.toml');
			await writeFile(empty, '');
			const found = JSON.parse(
				(await runGpujup(['status', '--json', '--config', empty], lab.env())).stdout,
			) as {ok: boolean; hosts: HostStatus[]};
			expect([found.ok, found.hosts.map((h) => [h.name, h.ok])]).toEqual([
				true,
				[
					['gpu', true],
					['gpu2', true],
				],
			]);
			const alone = JSON.parse(
				(await runGpujup(['status', 'gpu2', '--json'], lab.env())).stdout,
			) as {
				hops: Array<{name: string; state: string}>;
				forward: {remote: string};
			};
			expect([alone.hops.map((h) => [h.name, h.state]), alone.forward.remote]).toEqual([
				[
					['relay', 'ready'],
					['gpu2', 'ready'],
				],
				`127.0.0.1:${ports.gpu2}`,
			]);

			// `url`: a line per host, name TAB URL; `url NAME`: that one.
			const urls = await runGpujup(['url'], lab.env());
			const lines = urls.stdout.trim().split('\n');
			expect(lines.map((line) => line.split('\t')[0])).toEqual(['gpu', 'gpu2']);
			expect(lines[1]).toMatch(
				new RegExp(`^gpu2\\thttp://127\\.0\\.0\\.1:\\d+/\\?token=${tokens.gpu2}$`),
			);
			expect((await runGpujup(['url', 'gpu'], lab.env())).stdout.trim()).toMatch(
				new RegExp(`^http://127\\.0\\.0\\.1:\\d+/\\?token=${tokens.gpu}$`),
			);

			// `kernels`: each host's, under its name.
			const kernels = JSON.parse((await runGpujup(['kernels', '--json'], lab.env())).stdout) as {
				hosts: Array<{name: string; kernels: unknown[]}>;
			};
			expect(kernels.hosts.map((h) => [h.name, Array.isArray(h.kernels)])).toEqual([
				['gpu', true],
				['gpu2', true],
			]);

			// gpu2's tunnel dies: its host hop goes down, gpu's never leaves ready, the relay neither.
			const before = gpujup.lines.length;
			await lab.gpu2!.stopReverse();
			await gpujup.waitForLine(
				hostLine('gpu2', (l) => l.type === 'hop' && l['hop'] === 'host' && l['state'] !== 'ready'),
				{timeoutMs: 30_000, from: before},
			);
			const down = JSON.parse((await runGpujup(['status', '--json'], lab.env())).stdout) as {
				ok: boolean;
				hosts: HostStatus[];
			};
			expect(
				down.hosts.map((h) => [h.name, h.ok, h.hops.map((hop) => hop.state === 'ready')]),
			).toEqual([
				['gpu', true, [true, true]],
				['gpu2', false, [true, false]],
			]);
			expect(down.ok).toBe(false);
			await lab.gpu2!.startReverse();
			await gpujup.waitForLine(ready('gpu2', 'host'), {timeoutMs: 60_000, from: before});
			const after = gpujup.lines.slice(before);
			expect(after.filter((l) => l['host'] === 'gpu' && l.type === 'hop')).toEqual([]);
			expect(after.filter((l) => l.type === 'hop' && l['hop'] === 'relay')).toEqual([]);
			expect(await connectionsTo(lab.relay.port, gpujup.child.pid!)).toBe(1);

			expect(await gpujup.stop()).toBe(0);
			expect(gpujup.output()).not.toContain(tokens.gpu);
			expect(gpujup.output()).not.toContain(tokens.gpu2);
		} finally {
			await gpujup.stop();
		}
	});

	it('--no-tui: a host refused for good is said on stderr and the others run on; all refused: exit 1', async () => {
		const gpujup = spawnGpujup(['gpu', 'bad', '--no-tui'], lab.env());
		try {
			await gpujup.waitForLine(
				hostLine('bad', (l) => l.type === 'hop' && l['state'] === 'failed'),
				{timeoutMs: 60_000},
			);
			await gpujup.waitForLine(ready('gpu', 'host'), {timeoutMs: 90_000});
			await waitFor(() => gpujup.stderr().includes('gpujup: bad: host: '), {
				timeoutMs: 10_000,
				message: "bad's failure on stderr",
			});
			expect(gpujup.child.exitCode).toBeNull();
			expect(await gpujup.stop()).toBe(0);
		} finally {
			await gpujup.stop();
		}

		const both = spawnGpujup(['bad', 'bad2', '--no-tui'], lab.env());
		try {
			expect(await both.exited()).toBe(1);
			// Each host's failure, in the order they came.
			expect(both.stderr()).toContain('gpujup: bad: host: authentication as nosuchuser@');
			expect(both.stderr()).toContain('gpujup: bad2: host: authentication as nosuchuser@');
		} finally {
			await both.stop();
		}
	});

	it('the fleet view in tmux: a row per host, Enter opens one, Esc comes back, c copies its URL, q quits', async () => {
		const tmux = await startTmux([process.execPath, cli], {env: lab.env(), width: 120, height: 30});
		try {
			let screen = await tmux.waitForText('all 2 hosts up', 90_000);
			screen = await tmux.waitForScreen(
				(text) => /› gpu .*running/.test(text) && /\n {3}gpu2 .*running/.test(text),
				{timeoutMs: 60_000, what: 'both rows running'},
			);
			expect(screen).toMatch(/● relay ● gpu .*1× +\d+%/);
			expect(screen).toContain('↑↓ select  enter open');

			await tmux.sendKeys('Down');
			await tmux.waitForText('› gpu2', 30_000);
			await tmux.sendKeys('c');
			await tmux.waitForText('gpu2: copied', 30_000);
			await waitFor(async () => (await tmux.buffer()).includes(tokens.gpu2), {
				timeoutMs: 30_000,
				message: "gpu2's URL in the clipboard",
			});

			await tmux.sendKeys('Enter');
			screen = await tmux.waitForText('back to the fleet (2 GPU hosts) · gpu2', 30_000);
			await tmux.waitForText(/hops up · /, 30_000);
			await tmux.sendKeys('Escape');
			await tmux.waitForText('HOPS', 30_000);

			// gpu2's tunnel dies: its row goes down, gpu's stays up.
			await lab.gpu2!.stopReverse();
			screen = await tmux.waitForScreen((text) => /gpu2 +● relay [◐○] gpu2 [a-z]+/.test(text), {
				timeoutMs: 30_000,
				what: "gpu2's row down",
			});
			expect(screen).toMatch(/ gpu +● relay ● gpu +1× .*running/);
			// The header counts the hosts up once the copy's notice has gone (3 s).
			await tmux.waitForText('1 of 2 hosts up', 30_000);
			await lab.gpu2!.startReverse();
			await tmux.waitForText('all 2 hosts up', 60_000);

			await tmux.sendKeys('q');
			await waitFor(async () => (await tmux.exitCode()) !== null, {
				timeoutMs: 15_000,
				message: 'gpujup exits on q',
			});
			expect(await tmux.exitCode()).toBe(0);
			expect(await tmux.alternateScreen()).toBe(false);
		} finally {
			await tmux.dispose();
		}
	});
});
