/**
 * The tunnel-back notification for real: `gpujup host` (the built binary) makes its reverse
 * tunnel through a real OpenSSH relay sshd, with `GPUJUP_TUNNEL_BACK_AFTER=4`; a short drop of
 * the relay's sessions is no news, a relay down for longer than 4 s is, once the tunnel is back,
 * as a `notify` event of the host's `--no-tui` stream (and its `[gpujup]` log line), and at a
 * laptop connected through that tunnel once it is back too (its log and a `notify` event).
 */
import {afterAll, describe, expect, it} from 'vitest';
import {
	hostLabHooks,
	labHostArgs,
	spawnGpujup,
	type GpujupProcess,
	type JsonLine,
	spawnLabConnect,
} from './gpujup-process.js';

const thresholdS = 4;

const isReverse = (line: JsonLine) => line.type === 'hop' && line['hop'] === 'reverse';
const isReverseReady = (line: JsonLine) => isReverse(line) && line['state'] === 'ready';
const isReverseDown = (line: JsonLine) => isReverse(line) && line['state'] !== 'ready';
const isTunnelBack = (line: JsonLine) => line.type === 'notify' && line['kind'] === 'tunnel-back';
const ms = (line: JsonLine) => Date.parse(line.at);

describe('gpujup host: the reverse tunnel back after tunnel-back-after', () => {
	const fixture = hostLabHooks('gpujup-tunnel-back-nb-');
	let host: GpujupProcess | undefined;
	let laptop: GpujupProcess | undefined;

	afterAll(async () => {
		await laptop?.stop();
		await host?.stop();
	});

	it('a short drop gives nothing; the relay down longer than the threshold gives one tunnel-back', async () => {
		const {lab, jupyterPort, dir: notebooks} = fixture;
		host = spawnGpujup(labHostArgs(lab, jupyterPort, notebooks.path), {
			...lab.gpuEnv(),
			GPUJUP_TUNNEL_BACK_AFTER: String(thresholdS),
		});
		await host.waitForLine(isReverseReady, {timeoutMs: 120_000});
		laptop = spawnLabConnect(lab, jupyterPort);
		await laptop.waitForLine((l) => l.type === 'jupyter' && l['state'] === 'running', {
			timeoutMs: 120_000,
		});
		const laptopFrom = laptop.lines.length;

		// The relay's sessions drop, its listener stays: the tunnel is back at once.
		let from = host.lines.length;
		await lab.relay.dropSessions();
		const shortDown = await host.waitForLine(isReverseDown, {from});
		const shortBack = await host.waitForLine(isReverseReady, {
			from: host.lines.indexOf(shortDown),
			timeoutMs: 60_000,
		});
		expect(ms(shortBack) - ms(shortDown)).toBeLessThan(thresholdS * 1000);

		// The relay down: the host retries until a retry of its own is past the threshold.
		from = host.lines.length;
		await lab.relay.stop();
		const down = await host.waitForLine(isReverseDown, {from});
		const late = await host.waitForLine(
			(line) => isReverseDown(line) && ms(line) - ms(down) >= (thresholdS + 1) * 1000,
			{from: host.lines.indexOf(down), timeoutMs: 90_000},
		);
		expect(host.lines.some(isTunnelBack)).toBe(false);

		await lab.relay.start();
		const back = await host.waitForLine(isReverseReady, {
			from: host.lines.indexOf(late),
			timeoutMs: 90_000,
		});
		const note = await host.waitForLine(isTunnelBack, {from: host.lines.indexOf(late)});
		expect(note['title']).toBe('Tunnel back');
		expect(note['notebook']).toBeNull();
		const downS = Number(
			/^the reverse tunnel is back after (\d+) s down$/.exec(String(note['message']))?.[1],
		);
		expect(downS).toBeGreaterThanOrEqual(thresholdS + 1);
		expect(downS).toBeLessThanOrEqual(Math.ceil((ms(back) - ms(shortBack)) / 1000));
		await host.waitForLine(
			(line) => line.type === 'log' && line['line'] === `[gpujup] Tunnel back: ${note['message']}`,
			{from: host.lines.indexOf(late)},
		);
		expect(host.lines.filter(isTunnelBack)).toHaveLength(1);

		// The laptop's chain went through the same relay: back with it, it reads the agent's log on
		// from where it was, the notification's line included, and gets the notification it missed
		// (for its header, bell and desktop notification), once.
		await laptop.waitForLine(
			(line) => line.type === 'log' && line['line'] === `[gpujup] Tunnel back: ${note['message']}`,
			{from: laptopFrom, timeoutMs: 90_000},
		);
		const missed = await laptop.waitForLine(isTunnelBack, {from: laptopFrom});
		expect(missed['message']).toBe(note['message']);
		expect(laptop.lines.filter(isTunnelBack)).toHaveLength(1);
	}, 300_000);
});
