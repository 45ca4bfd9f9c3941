import net from 'node:net';
import {afterEach, describe, expect, it} from 'vitest';
import {startFaultProxy, type FaultProxy} from '../helpers/fault-proxy.js';
import {waitFor} from '../helpers/wait-for.js';

/** A plain TCP echo server on 127.0.0.1:0. */
const startEcho = async () => {
	const sockets = new Set<net.Socket>();
	const server = net.createServer((socket) => {
		sockets.add(socket);
		socket.on('close', () => sockets.delete(socket));
		socket.on('error', () => {});
		socket.pipe(socket);
	});
	await new Promise<void>((resolve) => server.listen({host: '127.0.0.1', port: 0}, resolve));
	const address = server.address() as net.AddressInfo;
	return {
		port: address.port,
		sockets,
		async dispose() {
			for (const socket of sockets) socket.destroy();
			await new Promise<void>((resolve) => server.close(() => resolve()));
		},
	};
};

type Client = {socket: net.Socket; received: () => Buffer; events: string[]};

const connect = async (port: number): Promise<Client> => {
	const socket = net.connect({host: '127.0.0.1', port});
	const chunks: Buffer[] = [];
	const events: string[] = [];
	socket.on('data', (chunk: Buffer) => chunks.push(chunk));
	socket.on('error', (error: NodeJS.ErrnoException) =>
		events.push(`error:${error.code ?? error.message}`),
	);
	socket.on('close', () => events.push('close'));
	await new Promise<void>((resolve, reject) => {
		socket.once('connect', resolve);
		socket.once('error', reject);
	});
	return {socket, received: () => Buffer.concat(chunks), events};
};

describe('fault proxy', () => {
	const cleanups: Array<() => Promise<void> | void> = [];
	afterEach(async () => {
		for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
	});

	const setup = async (): Promise<{
		proxy: FaultProxy;
		echo: Awaited<ReturnType<typeof startEcho>>;
	}> => {
		const echo = await startEcho();
		cleanups.push(echo.dispose);
		const proxy = await startFaultProxy({targetPort: echo.port});
		cleanups.push(proxy.dispose);
		return {proxy, echo};
	};

	it('passes bytes, blackholes without closing, then delivers what was held', async () => {
		const {proxy, echo} = await setup();
		const client = await connect(proxy.port);
		cleanups.push(() => {
			client.socket.destroy();
		});
		client.socket.write('hello');
		await waitFor(() => client.received().toString() === 'hello', {
			message: 'echo through the proxy',
		});
		expect(proxy.connections).toBe(1);

		proxy.setMode('blackhole');
		client.socket.write('stalled');
		// A connection opened during the blackhole is accepted but held too.
		const echoCheck = await connect(proxy.port);
		cleanups.push(() => {
			echoCheck.socket.destroy();
		});
		echoCheck.socket.write('x');
		// Prove the stall against the echo server's own pace: ten round trips straight to it finish
		// while nothing of 'stalled' or 'x' has come back and the proxied sockets are still open.
		const direct = await connect(echo.port);
		cleanups.push(() => {
			direct.socket.destroy();
		});
		for (let round = 1; round <= 10; round++) {
			direct.socket.write('.');
			await waitFor(() => direct.received().length === round, {
				message: `direct round trip ${round}`,
			});
		}
		expect(client.received().toString()).toBe('hello');
		expect(echoCheck.received().length).toBe(0);
		expect(client.events).toEqual([]);
		expect(client.socket.destroyed).toBe(false);
		expect(proxy.connections).toBe(2);

		proxy.setMode('pass');
		await waitFor(() => client.received().toString() === 'hellostalled', {
			message: 'held bytes delivered',
		});
		await waitFor(() => echoCheck.received().toString() === 'x', {
			message: 'held connection delivered',
		});
	});

	it('holds a close during a blackhole and passes it on afterwards', async () => {
		const {proxy, echo} = await setup();
		const client = await connect(proxy.port);
		client.socket.write('a');
		await waitFor(() => client.received().length === 1, {message: 'first echo'});
		proxy.setMode('blackhole');
		client.socket.end();
		await waitFor(() => client.socket.writableFinished, {message: 'client finished writing'});
		expect(echo.sockets.size).toBe(1);
		proxy.setMode('pass');
		await waitFor(() => client.events.includes('close'), {message: 'close passed on'});
		await waitFor(() => echo.sockets.size === 0 && proxy.connections === 0, {
			message: 'all closed',
		});
	});

	it('resets every connection with RST', async () => {
		const {proxy, echo} = await setup();
		const first = await connect(proxy.port);
		const second = await connect(proxy.port);
		await waitFor(() => proxy.connections === 2 && echo.sockets.size === 2, {
			message: 'two connections',
		});
		proxy.resetAll();
		await waitFor(() => first.events.includes('close') && second.events.includes('close'), {
			message: 'both clients closed',
		});
		expect(first.events).toContain('error:ECONNRESET');
		expect(second.events).toContain('error:ECONNRESET');
		expect(proxy.connections).toBe(0);
		await waitFor(() => echo.sockets.size === 0, {message: 'upstream sockets closed'});

		// The proxy still accepts new connections.
		const third = await connect(proxy.port);
		cleanups.push(() => {
			third.socket.destroy();
		});
		third.socket.write('again');
		await waitFor(() => third.received().toString() === 'again', {message: 'echo after reset'});
	});

	it('throttles and delays', async () => {
		const {proxy} = await setup();
		const rate = 64 * 1024;
		proxy.throttle(rate);
		const client = await connect(proxy.port);
		cleanups.push(() => {
			client.socket.destroy();
		});
		const payload = Buffer.alloc(256 * 1024, 7);
		client.socket.write(payload);
		// Observe the throttle as a count, not a clock: at the first byte back, most of the payload is
		// still held, and the rest arrives intact.
		await waitFor(() => client.received().length > 0, {message: 'first bytes'});
		expect(client.received().length).toBeLessThan(payload.length);
		proxy.throttle(null);
		await waitFor(() => client.received().length === payload.length, {message: 'all bytes'});
		expect(client.received().equals(payload)).toBe(true);

		proxy.delay(50);
		client.socket.write('late');
		await waitFor(() => client.received().length === payload.length + 4, {message: 'delayed echo'});
		expect(client.received().subarray(-4).toString()).toBe('late');
		expect(() => proxy.throttle(0)).toThrow();
	});
});
