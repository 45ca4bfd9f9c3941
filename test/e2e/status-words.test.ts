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
			expect(hops.some((l) => JSON.stringify(l['error']).includes('relay hop is down'))).toBe(
				false,
			);

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
});
