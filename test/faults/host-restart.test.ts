/**
 * A restart of `gpujup host` seen from the laptop (issue 10 item 2): the host hop leaves ready as
 * soon as the relay closes its channel (not after keepalive × count), and is ready again within a
 * few seconds of the tunnel's return (the reverse port is probed through the relay, so no backoff
 * step is waited out). Real OpenSSH relay and GPU host sshd, the built `gpujup host` and `gpujup
 * connect --no-tui`, Debian's Jupyter supervised by `gpujup host`.
 */
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {runGpujup, type GpujupProcess} from '../e2e/gpujup-process.js';
import {waitFor} from '../helpers/wait-for.js';
import {
	connectArgs,
	hostArgs,
	isHopState,
	lastHop,
	spawn,
	startChain,
	stopGpujup,
	waitLineAfter,
	waitReady,
	type Chain,
} from './fixture.js';

describe('the laptop follows a restart of gpujup host', () => {
	let chain: Chain;
	const procs: GpujupProcess[] = [];

	beforeAll(async () => {
		chain = await startChain({jupyter: false, lab: {reverse: 'none'}});
	});

	afterAll(async () => {
		for (const proc of procs) await stopGpujup(proc);
		// Jupyter outlives `gpujup host` by design.
		await runGpujup(
			['host', '--stop-jupyter', '--jupyter-port', String(chain.jupyterPort)],
			chain.lab.gpuEnv(),
		).catch(() => undefined);
		await chain?.dispose();
	});

	const startHost = () => {
		const proc = spawn(
			hostArgs(chain.lab, {jupyterPort: chain.jupyterPort, notebookDir: chain.scratch}),
			chain.lab.gpuEnv(),
		);
		procs.push(proc);
		return proc;
	};

	it('leaves ready within seconds of SIGTERM and is ready again within seconds of the return', async () => {
		let host = startHost();
		await waitReady(host, ['reverse'], {timeoutMs: 120_000});
		// Keepalive 30 s × 3: a loss noticed by keepalive alone would take 90 s.
		const laptop = spawn(
			connectArgs(chain.lab, {jupyterPort: chain.jupyterPort, keepalive: 30, keepaliveCount: 3}),
			chain.lab.env(),
		);
		procs.push(laptop);
		await waitReady(laptop, ['relay', 'host'], {timeoutMs: 120_000});

		const mark = laptop.lines.length;
		const stoppedAt = Date.now();
		await stopGpujup(host);
		await waitLineAfter(
			laptop,
			mark,
			(line) => line.type === 'hop' && line['hop'] === 'host' && line['state'] !== 'ready',
			30_000,
			'host hop leaves ready after gpujup host stopped',
		);
		const noticedS = (Date.now() - stoppedAt) / 1000;
		expect(noticedS).toBeLessThan(5);
		expect(lastHop(laptop, 'relay')?.['state']).toBe('ready');

		// Let the backoff grow to a long step (the sixth attempt waits ~8 s) before the tunnel returns.
		await waitFor(() => Number(lastHop(laptop, 'host')?.['attempt'] ?? 0) >= 6, {
			timeoutMs: 60_000,
			message: 'host hop at its sixth attempt',
		});
		const before = laptop.lines.length;
		host = startHost();
		await waitReady(host, ['reverse'], {timeoutMs: 120_000});
		const tunnelBackAt = Date.now();
		await waitLineAfter(
			laptop,
			before,
			isHopState('host', 'ready'),
			60_000,
			'host hop ready again after the tunnel returned',
		);
		const readyS = (Date.now() - tunnelBackAt) / 1000;
		expect(readyS).toBeLessThan(4);
	}, 300_000);
});
