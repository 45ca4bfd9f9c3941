import net from 'node:net';
import {afterEach, describe, expect, it} from 'vitest';
import {probeTcp, startTcpProbe} from '../../source/services/tcp-probe.js';
import {freePort} from '../helpers/ports.js';
import {waitFor} from '../helpers/wait-for.js';

async function listen(port: number, onSocket: (socket: net.Socket) => void): Promise<net.Server> {
	const server = net.createServer((socket) => {
		socket.on('error', () => {});
		onSocket(socket);
	});
	await new Promise<void>((resolve) => server.listen({host: '127.0.0.1', port}, resolve));
	return server;
}

describe('tcp-probe', () => {
	const servers: net.Server[] = [];
	afterEach(async () => {
		for (const server of servers.splice(0))
			await new Promise<void>((resolve) => server.close(() => resolve()));
	});

	it('answers false for a closed port and true for a listener', async () => {
		const port = await freePort();
		expect(await probeTcp({host: '127.0.0.1', port})).toBe(false);
		servers.push(await listen(port, (s) => s.end()));
		expect(await probeTcp({host: '127.0.0.1', port})).toBe(true);
	});

	it('with banner, needs an SSH greeting, not just a TCP accept', async () => {
		const silent = await freePort();
		servers.push(await listen(silent, () => {}));
		expect(await probeTcp({host: '127.0.0.1', port: silent, banner: true, timeoutMs: 300})).toBe(
			false,
		);
		const web = await freePort();
		servers.push(await listen(web, (s) => s.end('HTTP/1.1 400 Bad Request\r\n\r\n')));
		expect(await probeTcp({host: '127.0.0.1', port: web, banner: true})).toBe(false);
		const ssh = await freePort();
		servers.push(await listen(ssh, (s) => s.write('SSH-2.0-OpenSSH_9.2p1\r\n')));
		expect(await probeTcp({host: '127.0.0.1', port: ssh, banner: true})).toBe(true);
	});

	it('knocks until the far side answers, then calls back once and stops', async () => {
		const port = await freePort();
		let answers = 0;
		let accepted = 0;
		const loop = startTcpProbe({
			host: '127.0.0.1',
			port,
			intervalMs: 50,
			banner: true,
			onAnswer: () => answers++,
		});
		try {
			servers.push(
				await listen(port, (s) => {
					accepted++;
					s.write('SSH-2.0-test\r\n');
				}),
			);
			await waitFor(() => answers === 1, {message: 'probe answered'});
			const seen = accepted;
			// Stopped: a further knock would show up as another accepted connection.
			const second = startTcpProbe({
				host: '127.0.0.1',
				port,
				intervalMs: 50,
				banner: true,
				onAnswer: () => {},
			});
			await waitFor(() => accepted > seen, {message: 'second loop knocked'});
			second.dispose();
			expect(answers).toBe(1);
			expect(accepted).toBe(seen + 1);
		} finally {
			loop.dispose();
		}
	});
});
