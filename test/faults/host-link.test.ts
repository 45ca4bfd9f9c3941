import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {runGpujup} from '../e2e/gpujup-process.js';
import {startFaultProxy, type FaultProxy} from '../helpers/fault-proxy.js';
import {readBanner} from '../helpers/openssh-lab.js';
import {isAlive} from '../helpers/proc.js';
import {waitFor} from '../helpers/wait-for.js';
import {
	hostArgs,
	isHopState,
	jupyterAnswers,
	proxyKnownHosts,
	reconnects,
	spawn,
	startChain,
	stopGpujup,
	waitLineAfter,
	waitReady,
	type Chain,
} from './fixture.js';

/** The URL `gpujup url` prints on the GPU host (asks the running `gpujup host`). */
const hostUrl = async (chain: Chain): Promise<URL> =>
	waitFor(
		async () => {
			const result = await runGpujup(['url'], chain.lab.gpuEnv(), 30_000);
			return result.code === 0 ? new URL(result.stdout.trim()) : undefined;
		},
		{timeoutMs: 60_000, message: '`gpujup url` on the GPU host'},
	);

/**
 * Faults on the GPU host's side: `gpujup host` keeps the reverse tunnel (ssh2 forwardIn) through a
 * fault proxy to a real OpenSSH relay, and supervises Debian's Jupyter.
 */
describe('gpujup host survives faults', () => {
	let chain: Chain;
	let proxy: FaultProxy;
	let proxyHosts: string;

	beforeAll(async () => {
		chain = await startChain({
			jupyter: false,
			// The relay drops a silent client within ~3 s, freeing the forwarded port for the retry.
			lab: {reverse: 'none', relayOptions: ['ClientAliveInterval 1', 'ClientAliveCountMax 3']},
		});
		proxy = await startFaultProxy({targetPort: chain.lab.relay.port});
		proxyHosts = await proxyKnownHosts(chain.lab, chain.scratch, proxy.port);
	});

	afterAll(async () => {
		// Jupyter outlives `gpujup host` by design: stop it deliberately.
		await runGpujup(
			[
				...hostArgs(chain.lab, {jupyterPort: chain.jupyterPort, notebookDir: chain.scratch}),
				'--stop-jupyter',
			],
			chain.lab.gpuEnv(),
		).catch(() => undefined);
		await proxy?.dispose();
		await chain?.dispose();
	});

	const args = () =>
		hostArgs(chain.lab, {
			relayPort: proxy.port,
			knownHosts: proxyHosts,
			jupyterPort: chain.jupyterPort,
			notebookDir: chain.scratch,
		});

	/** The relay port leads to the GPU host's sshd again, and OpenSSH gets through it. */
	const reverseServes = async () => {
		await waitFor(async () => (await readBanner(chain.lab.relayPort)).startsWith('SSH-2.0-'), {
			timeoutMs: 30_000,
			message: 'GPU host banner on the relay port',
		});
		const result = await chain.lab.ssh([...chain.lab.sshArgs(), 'echo through-reverse']);
		expect(result.stdout.trim()).toBe('through-reverse');
	};

	it('declares a blackholed reverse link lost and restores the relay port after it returns', async () => {
		proxy.setMode('pass');
		const host = spawn(args(), chain.lab.gpuEnv());
		try {
			await waitReady(host, ['reverse'], {timeoutMs: 120_000});
			await reverseServes();
			const mark = host.lines.length;
			proxy.setMode('blackhole');
			await waitLineAfter(
				host,
				mark,
				isHopState('reverse', 'lost'),
				30_000,
				'reverse declared lost during the blackhole',
			);
			proxy.setMode('pass');
			await waitReady(host, ['reverse'], {minReconnects: {reverse: 1}, timeoutMs: 120_000});
			expect(reconnects(host, 'reverse')).toBeGreaterThanOrEqual(1);
			await reverseServes();
		} finally {
			proxy.setMode('pass');
			await stopGpujup(host);
		}
	}, 240_000);

	it('brings Jupyter back on the same port with the same token after kill -9', async () => {
		proxy.setMode('pass');
		const host = spawn(args(), chain.lab.gpuEnv());
		try {
			const running = await waitFor(
				() =>
					host.lines.findLast(
						(line) => line.type === 'jupyter' && line['state'] === 'running' && line['pid'],
					),
				{timeoutMs: 120_000, message: `Jupyter running; stderr: ${host.stderr()}`},
			);
			const url = await hostUrl(chain);
			const token = url.searchParams.get('token') ?? '';
			expect(token.length).toBeGreaterThanOrEqual(16);
			expect(Number(url.port)).toBe(chain.jupyterPort);
			expect(await jupyterAnswers(chain.jupyterPort, token)).toBe(true);

			const pid = Number(running['pid']);
			const mark = host.lines.length;
			process.kill(pid, 'SIGKILL');
			await waitFor(async () => !(await isAlive(pid)), {timeoutMs: 10_000});
			const back = await waitLineAfter(
				host,
				mark,
				(line) =>
					line.type === 'jupyter' &&
					line['state'] === 'running' &&
					Number(line['pid']) > 0 &&
					Number(line['pid']) !== pid,
				120_000,
				'Jupyter running again with a new pid',
			);
			expect(host.lines[back]?.['url']).toBe(running['url']);
			const again = await hostUrl(chain);
			expect(again.searchParams.get('token')).toBe(token);
			expect(Number(again.port)).toBe(chain.jupyterPort);
			await waitFor(async () => jupyterAnswers(chain.jupyterPort, token), {
				timeoutMs: 60_000,
				message: 'restarted Jupyter answers with the old token',
			});
			expect(host.child.exitCode).toBeNull();
		} finally {
			await stopGpujup(host);
		}
	}, 240_000);
});
