import {createHash, randomBytes} from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {runGpujup} from '../e2e/gpujup-process.js';
import {startFaultProxy, type FaultProxy} from '../helpers/fault-proxy.js';
import {samples} from '../helpers/nvidia-smi-samples.js';
import {freePort} from '../helpers/ports.js';
import {waitFor} from '../helpers/wait-for.js';
import {
	connectArgs,
	forwardPort,
	lastHop,
	proxyKnownHosts,
	spawn,
	startChain,
	stopGpujup,
	waitLineAfter,
	waitReady,
	type Chain,
} from './fixture.js';

/** A tiny HTTP server on the GPU host's loopback that serves `body` at `/blob`. */
const serveBlob = async (body: Buffer): Promise<{port: number; close(): Promise<void>}> => {
	const server = http.createServer((request, response) => {
		if (request.url !== '/blob') {
			response.writeHead(404).end();
			return;
		}
		response.writeHead(200, {
			'content-type': 'application/octet-stream',
			'content-length': body.length,
		});
		response.end(body);
	});
	await new Promise<void>((resolve) => server.listen({host: '127.0.0.1', port: 0}, resolve));
	const address = server.address() as net.AddressInfo;
	return {
		port: address.port,
		async close() {
			server.closeAllConnections();
			await new Promise<void>((resolve) => server.close(() => resolve()));
		},
	};
};

/** Faults that live on the machines rather than on the wire. */
describe('gpujup connect with a hung nvidia-smi, a busy local port and a slow link', () => {
	let chain: Chain;
	let proxy: FaultProxy;
	let proxyHosts: string;

	beforeAll(async () => {
		chain = await startChain({lab: {nvidiaSmi: {captures: [samples.captures[0]], mode: 'hang'}}});
		proxy = await startFaultProxy({targetPort: chain.lab.relay.port});
		proxyHosts = await proxyKnownHosts(chain.lab, chain.scratch, proxy.port);
	});

	afterAll(async () => {
		await proxy?.dispose();
		await chain?.dispose();
	}, 240_000);

	it('reports a hung nvidia-smi as a timeout while the hops stay ready, and leaves no fake behind', async () => {
		const gpujup = spawn(
			connectArgs(chain.lab, {jupyterPort: chain.jupyterPort, keepalive: 1}),
			chain.lab.env(),
		);
		try {
			await waitReady(gpujup, ['relay', 'host'], {timeoutMs: 90_000});
			const index = await waitLineAfter(
				gpujup,
				0,
				(line) =>
					line.type === 'gpu' && (line['error'] as {kind?: string} | null)?.kind === 'timeout',
				120_000,
				'a gpu line with an error of kind timeout',
			);
			const gpuLine = gpujup.lines[index]!;
			expect((gpuLine['error'] as {message: string}).message.length).toBeGreaterThan(0);
			// A hung driver does not take the link down.
			expect(lastHop(gpujup, 'relay')?.['state']).toBe('ready');
			expect(lastHop(gpujup, 'host')?.['state']).toBe('ready');
			const port = await forwardPort(gpujup, chain.jupyterPort);
			const status = await fetch(`http://127.0.0.1:${port}/api/status`, {
				headers: {authorization: `token ${chain.token}`},
			});
			expect(status.status).toBe(200);
			// Hung samplers are killed at their deadline, not piled up (two long-lived ones at most).
			await waitFor(async () => (await chain.nvidiaSmi!.pids()).length <= 2, {
				timeoutMs: 30_000,
				message: 'at most two fake nvidia-smi alive',
			});
		} finally {
			await stopGpujup(gpujup);
		}
		// Closing the channel kills the hung command on the GPU host.
		await waitFor(async () => (await chain.nvidiaSmi!.pids()).length === 0, {
			timeoutMs: 30_000,
			message: 'no fake nvidia-smi left after gpujup stopped',
		});
	}, 240_000);

	it('refuses a busy local port with a clear error that names it and --local-port', async () => {
		const busy = net.createServer();
		const port = await freePort();
		await new Promise<void>((resolve) => busy.listen({host: '127.0.0.1', port}, resolve));
		try {
			const result = await runGpujup(
				connectArgs(chain.lab, {jupyterPort: chain.jupyterPort, localPort: port}),
				chain.lab.env(),
			);
			expect(result.code).not.toBe(0);
			expect(result.code).not.toBeNull();
			const text = result.stdout + result.stderr;
			expect(text).toContain(String(port));
			expect(text).toContain('--local-port');
			// Not a stack trace: one readable message.
			expect(result.stderr).not.toMatch(/\n\s+at .+\(.+:\d+:\d+\)/);
		} finally {
			await new Promise<void>((resolve) => busy.close(() => resolve()));
		}
	}, 240_000);

	it('never cuts a slow but healthy download (throttled link, keepalive 0.5 s x 3)', async () => {
		// ~15 s at 200 KB/s: ten times the keepalive budget, with the replies queued behind the data.
		const body = randomBytes(3 * 1024 * 1024);
		const blob = await serveBlob(body);
		const localPort = await freePort();
		proxy.setMode('pass');
		proxy.throttle(null);
		const gpujup = spawn(
			connectArgs(chain.lab, {
				relayPort: proxy.port,
				knownHosts: proxyHosts,
				jupyterPort: chain.jupyterPort,
				extra: ['--forward', `${localPort}:${blob.port}`],
			}),
			chain.lab.env(),
		);
		try {
			await waitReady(gpujup, ['relay', 'host'], {timeoutMs: 90_000});
			expect(await forwardPort(gpujup, blob.port)).toBe(localPort);
			const mark = gpujup.lines.length;
			proxy.throttle(200 * 1024);
			const response = await fetch(`http://127.0.0.1:${localPort}/blob`, {
				signal: AbortSignal.timeout(180_000),
			});
			expect(response.status).toBe(200);
			const received = Buffer.from(await response.arrayBuffer());
			expect(received.length).toBe(body.length);
			expect(createHash('sha256').update(received).digest('hex')).toBe(
				createHash('sha256').update(body).digest('hex'),
			);
			const drops = gpujup.lines
				.slice(mark)
				.filter((line) => line.type === 'hop' && line['state'] !== 'ready');
			expect(drops).toEqual([]);
		} finally {
			proxy.throttle(null);
			await stopGpujup(gpujup);
			await blob.close();
		}
	}, 300_000);
});
