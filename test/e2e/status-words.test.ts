import {copyFile, mkdir, readFile, writeFile} from 'node:fs/promises';
import path from 'node:path';
import {describe, expect, it} from 'vitest';
import {labChainFlags, runGpujup, spawnGpujup, labWithJupyterHooks} from './gpujup-process.js';

/** What `connect --no-tui` and `status` say, and when, against a real OpenSSH chain. */
describe('start-up events and status words', () => {
	const hand = labWithJupyterHooks();

	it('status --json with nothing running and no relay prints one object: ok false and the reason', async () => {
		const result = await runGpujup(['status', '--json'], hand().lab.env());
		expect(result.code).toBe(1);
		const lines = result.stdout.trim().split('\n');
		expect(lines).toHaveLength(1);
		const status = JSON.parse(lines[0]!) as {ok: boolean; reason: string};
		expect(status.ok).toBe(false);
		expect(status.reason).toMatch(/no gpujup is running here and no relay is configured/);
	});

	it('no hop events before something happened; a second connect is refused before any event', async () => {
		const args = [
			'connect',
			'--no-tui',
			...labChainFlags(hand().lab, hand().jupyterPort),
			'--local-port',
			'0',
		];
		const first = spawnGpujup(args, hand().lab.env());
		try {
			await first.waitForLine((l) => l.type === 'hop' && l.hop === 'host' && l.state === 'ready', {
				timeoutMs: 90_000,
			});
			const hops = first.lines.filter((l) => l.type === 'hop');
			// The first word of each hop is its first attempt; the GPU host hop waits silently.
			expect(hops.some((l) => l['attempt'] === 0 && l['state'] === 'connecting')).toBe(false);
			expect(hops.filter((l) => l['hop'] === 'relay')[0]).toMatchObject({
				state: 'connecting',
				attempt: 1,
				error: null,
			});
			// The GPU host hop's first word is its own first try, once the relay is there.
			expect(hops.filter((l) => l['hop'] === 'host')[0]).toMatchObject({
				state: 'connecting',
				attempt: 1,
				error: null,
			});
			expect(
				hops.some((l) => /waiting for|relay hop is down/.test(JSON.stringify(l['error']))),
			).toBe(false);

			const second = spawnGpujup(args, hand().lab.env());
			expect(await second.exited()).toBe(1);
			expect(second.stderr()).toMatch(/already running/);
			expect(second.lines.map((l) => l.type)).toEqual(['error']);
		} finally {
			await first.stop();
		}
	}, 180_000);

	it('one-shot status says Jupyter answers on the GPU host, not at a local URL nothing forwards', async () => {
		const result = await runGpujup(
			['status', ...labChainFlags(hand().lab, hand().jupyterPort)],
			hand().lab.env(),
		);
		expect(result.stdout).toContain(
			`jupyter running  on the GPU host's 127.0.0.1:${hand().jupyterPort} (not forwarded here`,
		);
		expect(result.stdout).not.toContain('http://127.0.0.1:');
		const json = await runGpujup(
			['status', '--json', ...labChainFlags(hand().lab, hand().jupyterPort)],
			hand().lab.env(),
		);
		const status = JSON.parse(json.stdout) as {jupyter: {state: string; url: string | null}};
		expect(status.jupyter).toMatchObject({state: 'running', url: null});
	}, 120_000);

	it('doctor: where the relay came from, the relay address with its port in the fix, a changed key said once', async () => {
		const {lab, jupyterPort} = hand();
		// The relay as an ~/.ssh/config alias.
		await mkdir(path.join(lab.home, '.ssh'), {recursive: true, mode: 0o700});
		await copyFile(lab.sshConfig, path.join(lab.home, '.ssh', 'config'));
		const flags = labChainFlags(lab, jupyterPort);
		flags[flags.indexOf('--relay') + 1] = 'relay';
		const healthy = await runGpujup(['doctor', ...flags], lab.env());
		expect(healthy.stdout).toMatch(
			/✓ config\s+no config file .*; relay relay from ~\/\.ssh\/config/,
		);

		// A changed key for the relay: the text is printed once, the fix says what to check.
		const changed = path.join(lab.dir, 'changed_known_hosts');
		const other = (await readFile(lab.knownHosts, 'utf8')).replace(
			/^(\[127\.0\.0\.1\]:\d+) ssh-ed25519 \S+/m,
			`$1 ${lab.clientKeyPub.trim().split(/\s+/).slice(0, 2).join(' ')}`,
		);
		await writeFile(changed, other, {mode: 0o600});
		const keyFlags = labChainFlags(lab, jupyterPort);
		keyFlags[keyFlags.indexOf('--known-hosts') + 1] = changed;
		const refused = await runGpujup(['doctor', ...keyFlags], lab.env());
		expect(refused.code).toBe(1);
		expect(refused.stdout.match(/HAS CHANGED/g)).toHaveLength(1);
		expect(refused.stdout).toMatch(/fix: compare the fingerprint/);

		await lab.stopReverse();
		try {
			const result = await runGpujup(['doctor', ...labChainFlags(lab, jupyterPort)], lab.env());
			expect(result.code).toBe(1);
			expect(result.stdout).toContain(`gpujup host --relay root@127.0.0.1:${lab.relay.port}\``);
		} finally {
			await lab.startReverse();
		}
	}, 180_000);
});
