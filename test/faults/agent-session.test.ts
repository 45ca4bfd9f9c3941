import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {requestControl} from '../../source/services/control-socket.js';
import {runGpujup, type GpujupProcess} from '../e2e/gpujup-process.js';
import {freePort} from '../helpers/ports.js';
import {waitFor} from '../helpers/wait-for.js';
import {
	connectArgs,
	forwardPort,
	hostArgs,
	jupyterAnswers,
	lastHop,
	spawn,
	startChain,
	stopGpujup,
	waitReady,
	type Chain,
} from './fixture.js';

type Status = {
	ok: boolean;
	source: string | null;
	jupyter: {
		state: string;
		pid: number | null;
		servers?: Array<{port: number; pid: number | null; url: string}>;
	} | null;
};

/**
 * The laptop and `gpujup host` over real OpenSSH: the laptop reaches the GPU host through the
 * lab's `ssh -R` tunnel (so restarting `gpujup host` leaves the host hop up), `gpujup host`
 * supervises Jupyter A and a second Jupyter B was started by hand.
 */
describe('connect with gpujup host: one agent, found again, matched to the forwarded port', () => {
	let chain: Chain;
	let host: GpujupProcess | undefined;
	let connect: GpujupProcess | undefined;
	let portA: number;
	let hostArgv: string[];

	const startHost = async () => {
		host = spawn(hostArgv, chain.lab.gpuEnv());
		await host.waitForLine((l) => l.type === 'jupyter' && l['state'] === 'running', {
			timeoutMs: 120_000,
		});
	};

	/** What the running connect says (`gpujup status --json` asks its socket). */
	const status = async (): Promise<Status | undefined> => {
		const result = await runGpujup(['status', '--json'], chain.lab.env(), 30_000);
		return result.stdout.trim() ? (JSON.parse(result.stdout) as Status) : undefined;
	};

	const waitSource = async (match: RegExp, message: string) =>
		waitFor(
			async () => {
				const now = await status();
				return now && match.test(now.source ?? '') ? now : undefined;
			},
			{timeoutMs: 90_000, intervalMs: 500, message},
		);

	const logLines = (proc: GpujupProcess) =>
		proc.lines.filter((l) => l.type === 'log').map((l) => String(l['line']));

	beforeAll(async () => {
		chain = await startChain();
		portA = await freePort();
		hostArgv = hostArgs(chain.lab, {jupyterPort: portA, notebookDir: chain.scratch});
		// Its own tunnel on a port of its own: the laptop uses the lab's `ssh -R`.
		hostArgv[hostArgv.indexOf('--relay-port') + 1] = String(await freePort());
		hostArgv.push('--jupyter-cmd', 'jupyter notebook');
		await startHost();
	}, 240_000);

	afterAll(async () => {
		await stopGpujup(connect);
		await stopGpujup(host);
		if (chain)
			await runGpujup([...hostArgv, '--stop-jupyter'], chain.lab.gpuEnv()).catch(() => undefined);
		await chain?.dispose();
	}, 120_000);

	it('hands out the token, pid and log of the server on the forwarded port, and lists both', async () => {
		connect = spawn(connectArgs(chain.lab, {jupyterPort: chain.jupyterPort}), chain.lab.env());
		try {
			await waitReady(connect, ['relay', 'host'], {timeoutMs: 120_000});
			const local = await forwardPort(connect, chain.jupyterPort);
			const url = await waitFor(
				async () => {
					const result = await runGpujup(['url'], chain.lab.env(), 30_000);
					return result.code === 0 ? new URL(result.stdout.trim()) : undefined;
				},
				{timeoutMs: 60_000, message: '`gpujup url` on the laptop'},
			);
			expect(url.port).toBe(String(local));
			expect(url.searchParams.get('token')).toBe(chain.token);
			expect(await jupyterAnswers(local, url.searchParams.get('token')!)).toBe(true);
			const now = await waitFor(
				async () => {
					const value = await status();
					return value?.jupyter?.state === 'running' && (value.jupyter.servers?.length ?? 0) >= 2
						? value
						: undefined;
				},
				{timeoutMs: 60_000, message: 'status --json listing both servers'},
			);
			expect(now.jupyter!.pid).toBe(chain.jupyter!.pid);
			expect(now.jupyter!.servers!.map((s) => s.port).sort()).toEqual(
				[portA, chain.jupyterPort].sort(),
			);
			expect(JSON.stringify(now)).not.toContain(chain.token);
			// Server A's log (gpujup host's own Jupyter) is not shown as this forward's.
			expect(
				logLines(connect).some((l) => l.includes(`starting Jupyter on 127.0.0.1:${portA}`)),
			).toBe(false);
		} finally {
			await stopGpujup(connect);
			connect = undefined;
		}
	}, 300_000);

	it('replays no log line twice after a host-hop reconnect', async () => {
		connect = spawn(connectArgs(chain.lab, {jupyterPort: portA}), chain.lab.env());
		await waitReady(connect, ['relay', 'host'], {timeoutMs: 120_000});
		const local = await forwardPort(connect, portA);
		const startLine = `starting Jupyter on 127.0.0.1:${portA}`;
		await waitFor(() => logLines(connect!).some((l) => l.includes(startLine)), {
			timeoutMs: 60_000,
			message: 'the agent log on the laptop',
		});
		const before = logLines(connect);
		const reconnects = Number(lastHop(connect, 'host')?.['reconnects'] ?? 0);
		await chain.lab.gpu.dropSessions();
		await waitReady(connect, ['relay', 'host'], {
			timeoutMs: 120_000,
			minReconnects: {host: reconnects + 1},
		});
		// A fresh line (Jupyter logs the 403), seen only once the subscription is back.
		const marker = `gpujupmarker${Date.now()}`;
		await waitFor(
			async () => {
				await fetch(`http://127.0.0.1:${local}/api/status?${marker}=1`).then(
					async (r) => r.arrayBuffer(),
					() => undefined,
				);
				return logLines(connect!).some((l) => l.includes(marker));
			},
			{timeoutMs: 90_000, intervalMs: 2000, message: 'a new log line after the reconnect'},
		);
		const after = logLines(connect);
		for (const line of new Set(before))
			expect(
				after.filter((l) => l === line).length,
				`${line} (before: ${before.filter((l) => l === line).length})`,
			).toBe(before.filter((l) => l === line).length);
		expect(after.filter((l) => l.includes(startLine))).toHaveLength(1);
	}, 300_000);

	it('finds gpujup host again after it restarts, without the host hop dropping', async () => {
		expect(connect).toBeDefined();
		await waitSource(/^gpujup host$/, 'the agent in use');
		const reconnects = Number(lastHop(connect!, 'host')?.['reconnects'] ?? 0);
		await stopGpujup(host);
		await waitSource(/exec fallback/, 'the fallback while gpujup host is gone');
		await startHost();
		await waitSource(/^gpujup host$/, 'the agent again after the restart');
		const hostHop = lastHop(connect!, 'host');
		expect(hostHop?.['state']).toBe('ready');
		expect(Number(hostHop?.['reconnects'] ?? 0)).toBe(reconnects);
	}, 300_000);

	it('keeps the agent when it has no token yet (Jupyter stopped), and gets the token later', async () => {
		expect(connect).toBeDefined();
		const local = await forwardPort(connect!, portA);
		const stopped = await runGpujup([...hostArgv, '--stop-jupyter'], chain.lab.gpuEnv());
		expect(stopped.code, stopped.stderr).toBe(0);
		// The host hop comes back while gpujup host has no Jupyter, so `token` answers an error.
		const reconnects = Number(lastHop(connect!, 'host')?.['reconnects'] ?? 0);
		await chain.lab.gpu.dropSessions();
		await waitReady(connect!, ['relay', 'host'], {
			timeoutMs: 120_000,
			minReconnects: {host: reconnects + 1},
		});
		await waitFor(
			async () => {
				const now = await status();
				return now?.jupyter?.state && now.jupyter.state !== 'running' ? now : undefined;
			},
			{timeoutMs: 60_000, intervalMs: 500, message: 'Jupyter seen as not running'},
		);
		expect((await runGpujup(['url'], chain.lab.env(), 30_000)).code).toBe(1);
		const socket = path.join(
			chain.lab.gpuEnv()['XDG_STATE_HOME'] ?? path.join(chain.lab.gpuHome, '.local', 'state'),
			'gpujup',
			'default',
			'host.sock',
		);
		await requestControl(socket, 'restart-jupyter', 180_000);
		const url = await waitFor(
			async () => {
				const result = await runGpujup(['url'], chain.lab.env(), 30_000);
				if (result.code !== 0) return undefined;
				const parsed = new URL(result.stdout.trim());
				return (await jupyterAnswers(local, parsed.searchParams.get('token') ?? ''))
					? parsed
					: undefined;
			},
			{timeoutMs: 120_000, intervalMs: 1000, message: 'a working token after the restart'},
		);
		expect(url.port).toBe(String(local));
		expect((await status())?.source).toBe('gpujup host');
	}, 300_000);
});
