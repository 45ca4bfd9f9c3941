import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import type {GpujupProcess} from '../e2e/gpujup-process.js';
import {startFaultProxy, type FaultProxy} from '../helpers/fault-proxy.js';
import {descendants, killAll} from '../helpers/proc.js';
import {waitFor} from '../helpers/wait-for.js';
import {
	connectArgs,
	forwardPort,
	isHopState,
	jupyterAnswers,
	processFootprint,
	reconnects,
	proxyKnownHosts,
	seededRandom,
	sleep,
	spawn,
	startChain,
	stopGpujup,
	waitLineAfter,
	waitReady,
	type Chain,
} from './fixture.js';

/**
 * Faults on the laptop's side of the chain: `gpujup connect` (built binary, `--no-tui`, keepalive
 * 0.5 s × 3) against a real OpenSSH relay and GPU host with the seed's `ssh -R`, real Jupyter.
 */
describe('gpujup connect survives faults on its links', () => {
	let chain: Chain;
	let proxy: FaultProxy;
	let proxyHosts: string;

	beforeAll(async () => {
		chain = await startChain();
		proxy = await startFaultProxy({targetPort: chain.lab.relay.port});
		proxyHosts = await proxyKnownHosts(chain.lab, chain.scratch, proxy.port);
	});

	afterAll(async () => {
		await proxy?.dispose();
		await chain?.dispose();
	});

	const viaProxy = () =>
		connectArgs(chain.lab, {
			relayPort: proxy.port,
			knownHosts: proxyHosts,
			jupyterPort: chain.jupyterPort,
		});

	const direct = () => connectArgs(chain.lab, {jupyterPort: chain.jupyterPort});

	/** Both hops ready and Jupyter answering through the forward; resolves with the local port. */
	const upAndServing = async (
		gpujup: GpujupProcess,
		minReconnects: {relay?: number; host?: number} = {},
	): Promise<number> => {
		await waitReady(gpujup, ['relay', 'host'], {minReconnects, timeoutMs: 90_000});
		const port = await forwardPort(gpujup, chain.jupyterPort);
		await waitFor(async () => jupyterAnswers(port, chain.token), {
			timeoutMs: 60_000,
			message: `Jupyter through the forward on ${port}`,
		});
		return port;
	};

	it('declares a silent (blackholed) relay link lost, and heals when it returns', async () => {
		proxy.setMode('pass');
		const gpujup = spawn(viaProxy(), chain.lab.env());
		try {
			const port = await upAndServing(gpujup);
			const mark = gpujup.lines.length;
			proxy.setMode('blackhole');
			await waitLineAfter(
				gpujup,
				mark,
				isHopState('relay', 'lost'),
				30_000,
				'relay declared lost during the blackhole',
			);
			proxy.setMode('pass');
			await upAndServing(gpujup, {relay: 1});
			// The same local port serves again: the forward outlived the hops.
			expect(await forwardPort(gpujup, chain.jupyterPort)).toBe(port);
			expect(reconnects(gpujup, 'relay')).toBeGreaterThanOrEqual(1);
		} finally {
			proxy.setMode('pass');
			await stopGpujup(gpujup);
		}
	}, 240_000);

	it('notices a stopped (SIGSTOP) relay session and reconnects past it', async () => {
		// Sessions before gpujup (the seed's `ssh -R`) are left alone; the new ones are gpujup's.
		const before = new Set(await descendants(chain.lab.relay.pid!));
		const gpujup = spawn(direct(), chain.lab.env());
		let stopped: number[] = [];
		try {
			await upAndServing(gpujup);
			stopped = (await descendants(chain.lab.relay.pid!)).filter((pid) => !before.has(pid));
			expect(stopped.length).toBeGreaterThan(0);
			const mark = gpujup.lines.length;
			killAll(stopped, 'SIGSTOP');
			await waitLineAfter(
				gpujup,
				mark,
				isHopState('relay', 'lost'),
				30_000,
				'relay declared lost while its session is stopped',
			);
			await upAndServing(gpujup, {relay: 1});
		} finally {
			killAll(stopped, 'SIGCONT');
			await stopGpujup(gpujup);
		}
	}, 240_000);

	it('comes back after the relay sshd restarts (sessions killed, like a reboot)', async () => {
		const gpujup = spawn(direct(), chain.lab.env());
		try {
			await upAndServing(gpujup);
			const mark = gpujup.lines.length;
			await chain.lab.relay.restart();
			await waitLineAfter(
				gpujup,
				mark,
				(line) => line.type === 'hop' && line['hop'] === 'relay' && line['state'] !== 'ready',
				30_000,
				'relay leaves ready after the relay sshd restart',
			);
			// The seed's `ssh -R` died with its session; bring the reverse tunnel back as autossh would.
			await waitFor(() => !chain.lab.reverseRunning(), {timeoutMs: 30_000});
			await chain.lab.startReverse();
			await upAndServing(gpujup, {relay: 1});
		} finally {
			await stopGpujup(gpujup);
		}
	}, 240_000);

	it('comes back after the GPU host sshd restarts', async () => {
		const gpujup = spawn(direct(), chain.lab.env());
		try {
			await upAndServing(gpujup);
			const mark = gpujup.lines.length;
			await chain.lab.gpu.restart();
			await waitLineAfter(
				gpujup,
				mark,
				(line) => line.type === 'hop' && line['hop'] === 'host' && line['state'] !== 'ready',
				30_000,
				'host hop leaves ready after the GPU host sshd restart',
			);
			await upAndServing(gpujup, {host: 1});
			expect(reconnects(gpujup, 'host')).toBeGreaterThanOrEqual(1);
		} finally {
			await stopGpujup(gpujup);
		}
	}, 240_000);

	it('survives ~50 connection resets at random moments and is ready after each', async () => {
		const seed = Number(process.env.GPUJUP_FAULT_SEED ?? Date.now() % 1_000_000);
		const random = seededRandom(seed);
		proxy.setMode('pass');
		const gpujup = spawn(viaProxy(), chain.lab.env());
		try {
			await upAndServing(gpujup);
			for (let cycle = 1; cycle <= 50; cycle++) {
				// Sometimes right after ready, sometimes mid-handshake of the next attempt.
				const before = reconnects(gpujup, 'relay');
				await sleep(Math.floor(random() * 400));
				proxy.resetAll();
				if (random() < 0.3) {
					// A second reset while the reconnect is under way.
					await sleep(Math.floor(random() * 150));
					proxy.resetAll();
				}
				// Each reset hit a ready link (we waited for ready), so the relay hop must count a return.
				await waitReady(gpujup, ['relay', 'host'], {
					minReconnects: {relay: before + 1},
					timeoutMs: 60_000,
				}).catch((error: unknown) => {
					throw new Error(`cycle ${cycle} (seed ${seed}): ${String(error)}`);
				});
			}
			await upAndServing(gpujup);
			expect(gpujup.child.exitCode).toBeNull();
			expect(reconnects(gpujup, 'relay')).toBeGreaterThanOrEqual(50);
		} finally {
			await stopGpujup(gpujup);
		}
	}, 600_000);

	it('keeps memory and open handles flat over a soak of reconnect cycles', async () => {
		proxy.setMode('pass');
		const gpujup = spawn(viaProxy(), chain.lab.env());
		const pid = gpujup.child.pid!;
		const cycle = async () => {
			const before = reconnects(gpujup, 'relay');
			proxy.resetAll();
			await waitReady(gpujup, ['relay', 'host'], {
				minReconnects: {relay: before + 1},
				timeoutMs: 60_000,
			});
		};
		try {
			const port = await upAndServing(gpujup);
			// Warm up: first reconnects load code and fill caches once.
			for (let i = 0; i < 5; i++) await cycle();
			await waitFor(async () => jupyterAnswers(port, chain.token), {timeoutMs: 60_000});
			const start = await processFootprint(pid);
			for (let i = 0; i < 40; i++) await cycle();
			await waitFor(async () => jupyterAnswers(port, chain.token), {timeoutMs: 60_000});
			// Let sockets of the last cycle close before counting.
			const end = await waitFor(
				async () => {
					const now = await processFootprint(pid);
					return now.fds <= start.fds + 10 ? now : undefined;
				},
				{timeoutMs: 20_000, message: `fds back near ${start.fds}`},
			).catch(async () => processFootprint(pid));
			expect(end.fds).toBeLessThanOrEqual(start.fds + 10);
			expect(end.rssKiB).toBeLessThanOrEqual(start.rssKiB + 40 * 1024);
		} finally {
			await stopGpujup(gpujup);
		}
	}, 600_000);
});
