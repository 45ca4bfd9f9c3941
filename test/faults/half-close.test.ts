/**
 * TCP half-close through a forward: a client that sends FIN after its request still gets the
 * answer, as with `ssh -L` (issue 9 item 8). Built `gpujup connect --no-tui`, real OpenSSH chain.
 */
import net from 'node:net';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {freePort} from '../helpers/ports.js';
import {waitFor} from '../helpers/wait-for.js';
import {
	connectArgs,
	forwardPort,
	spawn,
	startChain,
	stopGpujup,
	waitReady,
	type Chain,
} from './fixture.js';

/** On the GPU host's loopback: read until EOF, then answer with what was read, reversed. */
async function answerAfterEof(port: number): Promise<net.Server> {
	const server = net.createServer({allowHalfOpen: true}, (socket) => {
		const chunks: Buffer[] = [];
		socket.on('error', () => {});
		socket.on('data', (chunk: Buffer) => chunks.push(chunk));
		socket.on('end', () => {
			socket.end(`got:${Buffer.concat(chunks).toString('utf8').split('').reverse().join('')}`);
		});
	});
	await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
	return server;
}

/** Send `request`, then FIN; resolve with everything that comes back before the close. */
async function requestThenFin(port: number, request: string): Promise<string> {
	return new Promise((resolve, reject) => {
		const socket = net.connect({host: '127.0.0.1', port, allowHalfOpen: true});
		let reply = '';
		const timer = setTimeout(() => {
			socket.destroy();
			resolve(reply);
		}, 15_000);
		socket.setEncoding('utf8');
		socket.on('data', (chunk: string) => (reply += chunk));
		socket.on('error', (error) => {
			clearTimeout(timer);
			reject(error);
		});
		socket.on('close', () => {
			clearTimeout(timer);
			resolve(reply);
		});
		socket.on('connect', () => socket.end(request));
	});
}

describe('half-close through --forward', () => {
	let chain: Chain;
	let server: net.Server;
	let remotePort: number;

	beforeAll(async () => {
		chain = await startChain({jupyter: false});
		remotePort = await freePort();
		server = await answerAfterEof(remotePort);
	});

	afterAll(async () => {
		await new Promise<void>((resolve) => server?.close(() => resolve()));
		await chain?.dispose();
	});

	it('ssh -L carries the answer sent after the client’s FIN (the reference)', async () => {
		const local = await freePort();
		const ssh = chain.lab.spawnSsh([
			'-N',
			'-o',
			'ExitOnForwardFailure=yes',
			'-L',
			`127.0.0.1:${local}:127.0.0.1:${remotePort}`,
			...chain.lab.sshArgs(),
		]);
		try {
			const reply = await waitFor(
				async () => {
					const text = await requestThenFin(local, 'hello').catch(() => '');
					return text || undefined;
				},
				{timeoutMs: 30_000, message: 'ssh -L answers'},
			);
			expect(reply).toBe('got:olleh');
		} finally {
			ssh.kill('SIGTERM');
		}
	}, 60_000);

	it('gpujup --forward carries it too', async () => {
		const local = await freePort();
		const proc = spawn(
			connectArgs(chain.lab, {
				jupyterPort: await freePort(),
				extra: ['--forward', `${local}:${remotePort}`],
			}),
			chain.lab.env(),
		);
		try {
			await waitReady(proc, ['relay', 'host']);
			expect(await forwardPort(proc, remotePort)).toBe(local);
			expect(await requestThenFin(local, 'hello')).toBe('got:olleh');
			// A large request, so the FIN follows data still in flight.
			const big = 'x'.repeat(1_000_000);
			expect(await requestThenFin(local, big)).toBe(`got:${big}`);
		} finally {
			await stopGpujup(proc);
		}
	}, 120_000);
});
