import {readFile, writeFile} from 'node:fs/promises';
import {describe, expect, it} from 'vitest';
import {runKernelCode} from '../helpers/jupyter.js';
import {tempDir} from '../helpers/ports.js';
import {
	labChainFlags,
	labWithJupyterHooks,
	runGpujup,
	spawnLabConnect,
	waitForHealed,
	waitForUrl,
} from './gpujup-process.js';

/** `gpujup connect` against real OpenSSH sshd (relay + GPU host, seed's `ssh -R`) and real Jupyter. */
describe('gpujup connect against OpenSSH and Jupyter', () => {
	const hand = labWithJupyterHooks();

	const chainArgs = () => labChainFlags(hand().lab, hand().jupyterPort);

	it('reaches Jupyter through both hops, serves url and status, and heals a dropped relay session', async () => {
		const {lab, jupyterPort, token} = hand();
		const gpujup = spawnLabConnect(lab, jupyterPort);
		try {
			await gpujup.waitForLine((l) => l.type === 'hop' && l.hop === 'relay' && l.state === 'ready');
			await gpujup.waitForLine((l) => l.type === 'hop' && l.hop === 'host' && l.state === 'ready');
			const forward = await gpujup.waitForLine(
				(l) => l.type === 'forward' && l.state === 'listening',
			);
			const localPort = Number(String(forward['local']).split(':')[1]);
			expect(forward['remote']).toBe(`127.0.0.1:${jupyterPort}`);
			await gpujup.waitForLine((l) => l.type === 'jupyter' && l.state === 'running');

			// `gpujup url` asks the running connect through its socket.
			const url = await waitForUrl(lab.env());
			expect(url).toBe(`http://127.0.0.1:${localPort}/?token=${token}`);

			const status = await fetch(`http://127.0.0.1:${localPort}/api/status`, {
				headers: {authorization: `token ${token}`},
			});
			expect(status.status).toBe(200);
			expect(await runKernelCode(`http://127.0.0.1:${localPort}/`, token, 'print(6*7)')).toBe(
				'42\n',
			);

			const live = await runGpujup(['status', '--json'], lab.env());
			expect(live.code).toBe(0);
			const liveObject = JSON.parse(live.stdout) as {ok: boolean; hops: Array<{state: string}>};
			expect(liveObject.ok).toBe(true);
			expect(liveObject.hops.map((h) => h.state)).toEqual(['ready', 'ready']);
			// The running gpujup's own workarounds: ssh2's in effect, Ink's not (no dashboard drawn).
			const workarounds = (JSON.parse(live.stdout) as {workarounds: Array<Record<string, unknown>>})
				.workarounds;
			expect(workarounds.map((w) => [w['name'], w['active']])).toEqual([
				['ssh2-window', true],
				['ssh2-ping', true],
				['ink-output-cache', false],
				['ink-widest-line', false],
				['ssh2-demo-server', true],
			]);
			expect(live.stdout.trim().split('\n')).toHaveLength(1);
			expect(live.stdout).not.toContain(token);

			// Both hops come back and the forward keeps its port.
			// The relay drops every session, the seed's `ssh -R` loop included; that loop comes back,
			// as autossh would bring it.
			const before = gpujup.lines.length;
			await lab.dropRelaySessions();
			await lab.startReverse();
			await waitForHealed(gpujup, before, localPort, token);

			expect(await gpujup.stop()).toBe(0);
			expect(gpujup.output()).not.toContain(token);
		} finally {
			await gpujup.stop();
		}
	});

	it('status --json with nothing running checks the chain once and prints one object', async () => {
		const {lab, token} = hand();
		const result = await runGpujup(['status', '--json', ...chainArgs()], lab.env());
		expect(result.stdout.trim().split('\n')).toHaveLength(1);
		const object = JSON.parse(result.stdout) as {
			ok: boolean;
			hops: Array<{hop: string; state: string}>;
			jupyter: {state: string; url: string};
		};
		expect(object.hops.map((h) => [h.hop, h.state])).toEqual([
			['relay', 'ready'],
			['host', 'ready'],
		]);
		expect(object.jupyter.state).toBe('running');
		// Checked once: this install's workarounds, each probed.
		expect(
			(
				JSON.parse(result.stdout) as {
					workarounds: Array<{name: string; active: boolean; detail: string}>;
				}
			).workarounds,
		).toEqual(
			['ssh2-window', 'ssh2-ping', 'ink-output-cache', 'ink-widest-line', 'ssh2-demo-server'].map(
				(name) => ({
					name,
					active: true,
					detail: expect.any(String) as unknown,
				}),
			),
		);
		expect(object.ok).toBe(true);
		expect(result.code).toBe(0);
		expect(result.stdout + result.stderr).not.toContain(token);
	});

	it('refuses a changed relay host key with both fingerprints and exits 1', async () => {
		const {lab} = hand();
		const dir = await tempDir('gpujup-kh-');
		try {
			const knownHosts = `${dir.path}/known_hosts`;
			const original = await readFile(lab.knownHosts, 'utf8');
			// Another ed25519 key recorded for the relay: what a man in the middle would look like.
			const other = 'AAAAC3NzaC1lZDI1NTE5AAAAIG0oY0yf3q3ZpZ1k0d0r9m8s5sVvJvJ0t8m1f5k9d3Zx';
			const changed = original.replace(
				new RegExp(`(\\[127\\.0\\.0\\.1\\]:${lab.relay.port} ssh-ed25519 )\\S+`),
				`$1${other}`,
			);
			expect(changed).not.toBe(original);
			await writeFile(knownHosts, changed);
			const args = chainArgs();
			args[args.indexOf('--known-hosts') + 1] = knownHosts;
			const result = await runGpujup(
				['connect', '--no-tui', '--local-port', '0', ...args],
				lab.env(),
			);
			expect(result.code).toBe(1);
			const hopLines = result.stdout
				.trim()
				.split('\n')
				.map(
					(l) =>
						JSON.parse(l) as {
							type: string;
							hop?: string;
							state?: string;
							error?: {kind: string; message: string};
						},
				);
			const failed = hopLines.find((l) => l.type === 'hop' && l.state === 'failed');
			expect(failed?.hop).toBe('relay');
			expect(failed?.error?.kind).toBe('host-key');
			expect(failed?.error?.message.match(/SHA256:/g)?.length).toBeGreaterThanOrEqual(2);
			// Refused for good: no second attempt.
			const attempts = hopLines.map((l) => (l as {attempt?: number}).attempt ?? 0);
			expect(Math.max(...attempts)).toBeLessThanOrEqual(1);
		} finally {
			await dir.dispose();
		}
	});

	it('a key the GPU host does not accept is an auth error, not retried', async () => {
		const {lab} = hand();
		const dir = await tempDir('gpujup-key-');
		try {
			const {execFileSync} = await import('node:child_process');
			const key = `${dir.path}/other`;
			execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
			// The relay accepts it, the GPU host does not.
			await lab.addAuthorizedKey((await readFile(`${key}.pub`, 'utf8')).trim(), 'relay');
			const args = chainArgs();
			args[args.indexOf('--identity') + 1] = key;
			const result = await runGpujup(
				['connect', '--no-tui', '--local-port', '0', ...args],
				lab.env(),
			);
			expect(result.code).toBe(1);
			const lines = result.stdout
				.trim()
				.split('\n')
				.map(
					(l) =>
						JSON.parse(l) as {type: string; hop?: string; state?: string; error?: {kind: string}},
				);
			const failed = lines.find((l) => l.type === 'hop' && l.state === 'failed');
			expect(failed?.hop).toBe('host');
			expect(failed?.error?.kind).toBe('auth');
			expect(result.stderr).toMatch(/auth|key/i);
		} finally {
			await dir.dispose();
		}
	});
});
