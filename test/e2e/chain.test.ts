/**
 * Chains from ~/.ssh/config against real OpenSSH: three sshds (bastion → relay → GPU host, the
 * GPU host behind the lab's `ssh -R`), a real Jupyter, the built binary. `gpujup connect p3`
 * reaches a kernel through three hops; a drop of the middle hop (its connection reset by a TCP
 * fault proxy in front of the relay, so nothing else on the relay notices) heals in order. A
 * two-hop ProxyJump alias serves `status --json`.
 */
import {randomBytes} from 'node:crypto';
import {mkdir, readFile, writeFile} from 'node:fs/promises';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {startFaultProxy, type FaultProxy} from '../helpers/fault-proxy.js';
import {runKernelCode, startJupyter, type RunningJupyter} from '../helpers/jupyter.js';
import {startLab, type Lab} from '../helpers/openssh-lab.js';
import {freePort, tempDir, type TempDir} from '../helpers/ports.js';
import {waitFor} from '../helpers/wait-for.js';
import {runGpujup, spawnGpujup, type JsonLine} from './gpujup-process.js';

describe('gpujup ALIAS: the chain from ~/.ssh/config', () => {
	let lab: Lab;
	let proxy: FaultProxy;
	let jupyter: RunningJupyter;
	let notebooks: TempDir;
	let jupyterPort: number;
	let closedPort: number;
	const token = randomBytes(16).toString('hex');

	beforeAll(async () => {
		lab = await startLab({bastion: true});
		// The bastion reaches the relay through this proxy; the GPU host's `ssh -R` does not.
		proxy = await startFaultProxy({targetPort: lab.relay.port});
		notebooks = await tempDir('gpujup-chain-nb-');
		jupyterPort = await freePort();
		closedPort = await freePort();
		jupyter = await startJupyter({
			port: jupyterPort,
			token,
			dir: notebooks.path,
			env: lab.gpuEnv(),
		});
		const knownHosts = path.join(lab.home, '.ssh', 'known_hosts');
		await mkdir(path.dirname(knownHosts), {recursive: true, mode: 0o700});
		// The relay behind the proxy is known by its HostKeyAlias, as a user would pin it.
		await writeFile(
			knownHosts,
			`${await readFile(lab.knownHosts, 'utf8')}lab-relay ${lab.relay.hostKeyPub}\n` +
				`[127.0.0.1]:${lab.gpu.sshPort} ${lab.gpu.hostKeyPub}\n`,
			{mode: 0o600},
		);
		await writeFile(
			path.join(lab.home, '.ssh', 'config'),
			[
				'Host bastion',
				'  HostName 127.0.0.1',
				`  Port ${lab.bastion!.port}`,
				'Host relay',
				'  HostName 127.0.0.1',
				`  Port ${proxy.port}`,
				'  HostKeyAlias lab-relay',
				'  ProxyJump bastion',
				'Host p3',
				'  HostName localhost',
				`  Port ${lab.relayPort}`,
				'  ProxyJump relay',
				'Host relay2',
				'  HostName 127.0.0.1',
				`  Port ${lab.relay.port}`,
				'Host p507',
				'  HostName localhost',
				`  Port ${lab.relayPort}`,
				'  ProxyJump relay2',
				// One hop: the GPU host's sshd reached directly.
				'Host gpu1',
				'  HostName 127.0.0.1',
				`  Port ${lab.gpu.sshPort}`,
				'Host gpu1-down',
				'  HostName 127.0.0.1',
				`  Port ${closedPort}`,
				'Host pcmd',
				'  ProxyCommand ssh -W %h:%p relay2',
				'Host *',
				'  User root',
				`  IdentityFile ${lab.clientKey}`,
				'  IdentitiesOnly yes',
				'  IdentityAgent none',
				`  UserKnownHostsFile ${knownHosts}`,
				'  GlobalKnownHostsFile /dev/null',
				'  StrictHostKeyChecking yes',
				'  BatchMode yes',
				'',
			].join('\n'),
			{mode: 0o600},
		);
	}, 240_000);

	afterAll(async () => {
		await jupyter?.dispose();
		await notebooks?.dispose();
		await proxy?.dispose();
		await lab?.dispose();
	});

	const config = () => path.join(lab.home, '.ssh', 'config');
	const hopLines = (lines: readonly JsonLine[], from = 0) =>
		lines.slice(from).filter((line) => line.type === 'hop');

	it('OpenSSH itself goes through the same three hops', async () => {
		const result = await lab.ssh(['-F', config(), 'p3', 'echo', 'through-three']);
		expect(result.stderr).toBe('');
		expect(result.stdout.trim()).toBe('through-three');
	});

	it('connect p3 reaches Jupyter through three hops; a dropped middle hop heals in order', async () => {
		const gpujup = spawnGpujup(
			[
				'connect',
				'p3',
				'--no-tui',
				'--local-port',
				'0',
				'--jupyter-port',
				String(jupyterPort),
				'--keepalive',
				'1',
				'--keepalive-count',
				'3',
			],
			lab.env(),
		);
		try {
			const ready = async (index: number, minReconnects = 0, from = 0) =>
				gpujup.waitForLine(
					(l) =>
						l.type === 'hop' &&
						l['index'] === index &&
						l['state'] === 'ready' &&
						Number(l['reconnects']) >= minReconnects,
					{timeoutMs: 90_000, from},
				);
			const hops = [await ready(0), await ready(1), await ready(2)];
			expect(hops.map((h) => [h['hop'], h['index'], h['name']])).toEqual([
				['relay', 0, 'bastion'],
				['jump', 1, 'relay'],
				['host', 2, 'p3'],
			]);
			const forward = await gpujup.waitForLine(
				(l) => l.type === 'forward' && l['state'] === 'listening',
			);
			const localPort = Number(String(forward['local']).split(':')[1]);
			await gpujup.waitForLine((l) => l.type === 'jupyter' && l['state'] === 'running');
			expect(
				await runKernelCode(`http://127.0.0.1:${localPort}/`, token, 'print(sum(range(7)))'),
			).toBe('21\n');

			const live = await runGpujup(['status', '--json'], lab.env());
			expect(live.code).toBe(0);
			const status = JSON.parse(live.stdout) as {
				ok: boolean;
				hops: Array<{hop: string; index: number; name: string; state: string}>;
			};
			expect(status.hops.map((h) => [h.hop, h.index, h.name, h.state])).toEqual([
				['relay', 0, 'bastion', 'ready'],
				['jump', 1, 'relay', 'ready'],
				['host', 2, 'p3', 'ready'],
			]);
			expect(status.ok).toBe(true);

			// The middle hop's TCP connection is reset; the bastion session is untouched.
			const before = gpujup.lines.length;
			const accepted = proxy.accepted;
			proxy.resetAll();
			await gpujup.waitForLine(
				(l) => l.type === 'hop' && l['index'] === 1 && l['state'] !== 'ready',
				{from: before},
			);
			const jumpBack = await ready(1, 1, before);
			const hostBack = await ready(2, 1, before);
			const after = hopLines(gpujup.lines, before);
			// In order: the host hop is ready again only after the jump it runs through.
			expect(after.indexOf(hostBack)).toBeGreaterThan(after.indexOf(jumpBack));
			// The host went down with the jump (it runs over it), and came back once.
			expect(after.some((l) => l['index'] === 2 && l['state'] !== 'ready')).toBe(true);
			// While it waits it names the hop that went down, by alias and place.
			expect(
				after.some(
					(l) =>
						l['index'] === 2 &&
						l['state'] === 'waiting' &&
						(l['error'] as {message?: string} | null)?.message === 'waiting for relay, hop 2',
				),
			).toBe(true);
			expect([jumpBack['reconnects'], hostBack['reconnects']]).toEqual([1, 1]);
			// The first hop never left ready and counts no reconnect.
			expect(after.filter((l) => l['index'] === 0)).toEqual([]);
			expect(proxy.accepted).toBeGreaterThan(accepted);
			await waitFor(async () => {
				const again = await fetch(`http://127.0.0.1:${localPort}/api/status`, {
					headers: {authorization: `token ${token}`},
				}).catch(() => null);
				return again?.status === 200;
			});
			const healed = JSON.parse((await runGpujup(['status', '--json'], lab.env())).stdout) as {
				hops: Array<{index: number; state: string; reconnects: number}>;
			};
			expect(healed.hops.map((h) => [h.index, h.state, h.reconnects])).toEqual([
				[0, 'ready', 0],
				[1, 'ready', 1],
				[2, 'ready', 1],
			]);

			expect(await gpujup.stop()).toBe(0);
			expect(gpujup.output()).not.toContain(token);
		} finally {
			await gpujup.stop();
		}
	});

	it.each([
		[
			'p507: a two-hop ProxyJump alias, every hop listed',
			'p507',
			[
				['relay', 0, 'relay2', 'ready'],
				['host', 1, 'p507', 'ready'],
			],
		],
		['gpu1: one hop, the GPU host', 'gpu1', [['host', 0, 'gpu1', 'ready']]],
	])('status --json %s', async (_what, alias, hops) => {
		const result = await runGpujup(
			['status', alias, '--json', '--jupyter-port', String(jupyterPort)],
			lab.env(),
		);
		const object = JSON.parse(result.stdout) as {
			ok: boolean;
			hops: Array<{hop: string; index: number; name: string; state: string}>;
			jupyter: {state: string};
		};
		expect(object.hops.map((h) => [h.hop, h.index, h.name, h.state])).toEqual(hops);
		expect(object.jupyter.state).toBe('running');
		expect([object.ok, result.code]).toEqual([true, 0]);
	});

	it('doctor p3 checks every hop in order, the jump included', async () => {
		const result = await runGpujup(
			['doctor', 'p3', '--jupyter-port', String(jupyterPort), '--nvidia-smi', 'true'],
			lab.env(),
		);
		const names = result.stdout
			.split('\n')
			.filter((line) => /^[✓✗] /.test(line))
			.map((line) => line.slice(2).split(/\s{2,}/)[0]);
		expect(names).toEqual([
			'config',
			'DNS',
			'TCP',
			'host key',
			'auth',
			'hop relay',
			'reverse port',
			'GPU host sshd',
			'GPU host login',
			'Jupyter',
			'nvidia-smi',
		]);
		expect(result.stdout).toMatch(
			new RegExp(`✓ reverse port +relay's localhost:${lab.relayPort} accepts connections`),
		);
		expect([result.code, result.stdout.trim().split('\n').at(-1)]).toEqual([
			0,
			'all checks passed',
		]);
	});

	it('doctor gpu1: a one-hop alias (the GPU host reached directly) checks that hop', async () => {
		const checks = (stdout: string) => stdout.split('\n').filter((line) => /^[✓✗] /.test(line));
		const result = await runGpujup(
			['doctor', 'gpu1', '--jupyter-port', String(jupyterPort), '--nvidia-smi', 'true'],
			lab.env(),
		);
		expect(checks(result.stdout).map((line) => line.slice(2).split(/\s{2,}/)[0])).toEqual([
			'config',
			'DNS',
			'TCP',
			'host key',
			'auth',
			'Jupyter',
			'nvidia-smi',
		]);
		expect(result.stdout).toMatch(/✓ host key +the GPU host's key ED25519 SHA256:\S+ matches /);
		expect(result.stdout).toMatch(/✓ auth +logged in to the GPU host \(gpu1\) as root/);
		// No relay in the checks of a chain that has none.
		expect(checks(result.stdout).filter((line) => /relay|reverse/i.test(line))).toEqual([]);
		expect([result.code, result.stdout.trim().split('\n').at(-1)]).toEqual([
			0,
			'all checks passed',
		]);

		const down = await runGpujup(['doctor', 'gpu1-down', '--nvidia-smi', 'true'], lab.env());
		expect(down.code).toBe(1);
		const lines = down.stdout.split('\n');
		const failed = lines.findIndex((line) => line.startsWith('✗'));
		expect(lines[failed]).toMatch(
			new RegExp(`^✗ TCP +no SSH server answers on 127\\.0\\.0\\.1:${closedPort}$`),
		);
		expect(lines[failed + 1]).toContain('Port in ~/.ssh/config for gpu1-down');
		expect(lines[failed + 1]).not.toContain('--relay');
	});

	it('a ProxyCommand alias is refused with exit 2 and words, no stack trace', async () => {
		const result = await runGpujup(['pcmd', '--no-tui'], lab.env());
		expect(result.code).toBe(2);
		expect(result.stderr).toContain(
			'"pcmd" uses ProxyCommand (ssh -W %h:%p relay2), which runs a program: gpujup does not run it',
		);
		expect(result.stderr).not.toMatch(/\n\s+at /);
		expect(result.stdout).toBe('');
	});
});
