import {createHash, randomBytes} from 'node:crypto';
import {writeFile} from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import ssh2 from 'ssh2';
import type {Connection} from 'ssh2';
import {afterEach, describe, expect, it} from 'vitest';
import {HopError} from '../../source/core/classify-error.js';
import type {ForwardStatus} from '../../source/core/types.js';
import {startLocalForward} from '../../source/services/local-forward.js';
import {SshHop} from '../../source/services/ssh-hop.js';
import {tempDir} from '../helpers/ports.js';
import {waitFor} from '../helpers/wait-for.js';
import {generateEd25519} from '../../source/services/ssh-keys.js';

/** An ssh2 Server on 127.0.0.1:0 that lets anyone in and opens direct-tcpip to allowed ports. */
async function startSshServer(allowPorts: () => readonly number[]) {
	const hostKey = generateEd25519();
	const connections = new Set<Connection>();
	const server = new ssh2.Server({hostKeys: [hostKey.private]}, (conn) => {
		connections.add(conn);
		conn.on('error', () => {});
		conn.on('close', () => connections.delete(conn));
		conn.on('authentication', (ctx) => ctx.accept());
		conn.on('tcpip', (accept, reject, info) => {
			if (!allowPorts().includes(info.destPort)) {
				reject();
				return;
			}
			const upstream = net.connect({host: '127.0.0.1', port: info.destPort});
			upstream.on('error', () => channel.destroy());
			const channel = accept();
			channel.on('error', () => upstream.destroy());
			channel.on('close', () => upstream.destroy());
			upstream.on('close', () => channel.destroy());
			channel.pipe(upstream).pipe(channel);
		});
	});
	await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
	const port = (server.address() as net.AddressInfo).port;
	return {
		port,
		hostKeyPub: `ssh-ed25519 ${hostKey.public.split(/\s+/)[1]}`,
		dropAll() {
			for (const conn of connections) conn.end();
		},
		async close() {
			for (const conn of connections) conn.end();
			await new Promise<void>((resolve) => server.close(() => resolve()));
		},
	};
}

/** A TCP echo server on 127.0.0.1:0: the forward's target. */
async function startEcho() {
	const server = net.createServer((socket) => {
		socket.on('error', () => {});
		socket.pipe(socket);
	});
	await new Promise<void>((resolve) => server.listen({host: '127.0.0.1', port: 0}, resolve));
	return {
		port: (server.address() as net.AddressInfo).port,
		async close() {
			await new Promise<void>((resolve) => server.close(() => resolve()));
		},
	};
}

/** Connect, send `data`, end, and collect everything that comes back until close. */
async function roundTrip(port: number, data: Buffer): Promise<Buffer> {
	return new Promise((resolve, reject) => {
		const chunks: Buffer[] = [];
		const socket = net.connect({host: '127.0.0.1', port});
		socket.on('data', (chunk: Buffer) => {
			chunks.push(chunk);
			if (Buffer.concat(chunks).length >= data.length) socket.end();
		});
		socket.on('error', reject);
		socket.on('close', () => resolve(Buffer.concat(chunks)));
		socket.write(data);
	});
}

describe('startLocalForward', () => {
	const cleanups: Array<() => Promise<void>> = [];
	afterEach(async () => {
		for (const cleanup of cleanups.reverse()) await cleanup();
		cleanups.length = 0;
	});

	async function rig(o: {allow?: 'echo' | 'none'; start?: boolean} = {}) {
		const echo = await startEcho();
		cleanups.push(async () => echo.close());
		const ssh = await startSshServer(() => (o.allow === 'none' ? [] : [echo.port]));
		cleanups.push(async () => ssh.close());
		const dir = await tempDir('fwd');
		cleanups.push(async () => dir.dispose());
		const knownHosts = path.join(dir.path, 'known_hosts');
		await writeFile(knownHosts, `[127.0.0.1]:${ssh.port} ${ssh.hostKeyPub}\n`, {mode: 0o600});
		const hop = new SshHop({
			name: 'host',
			label: `127.0.0.1:${ssh.port}`,
			host: '127.0.0.1',
			port: ssh.port,
			username: 'ml',
			knownHostsFile: knownHosts,
			hostKeyNames: [`[127.0.0.1]:${ssh.port}`],
			acceptNew: false,
			auth: {agentSocket: null, identities: [], defaultIdentities: []},
			keepaliveMs: 1000,
			keepaliveCount: 3,
			onStatus: () => {},
		});
		cleanups.push(async () => hop.dispose());
		if (o.start !== false) hop.start();
		/** A forward from a local port (default 0: a free one) to the echo server through the hop. */
		const open = async (
			extra: {port?: number; waitMs?: number; onStatus?: (f: ForwardStatus) => void} = {},
		) => {
			const started = await startLocalForward({
				port: extra.port ?? 0,
				remoteHost: '127.0.0.1',
				remotePort: echo.port,
				label: 'echo',
				hop,
				...(extra.waitMs === undefined ? {} : {waitMs: extra.waitMs}),
				onStatus: extra.onStatus ?? (() => {}),
			});
			cleanups.push(async () => started.dispose());
			return started;
		};
		return {echo, ssh, hop, open};
	}

	it('carries data both ways, intact, with backpressure (8 MB through one channel)', async () => {
		const {echo, open} = await rig();
		const statuses: ForwardStatus[] = [];
		const forward = await open({onStatus: (f) => statuses.push(f)});
		expect(statuses[0]).toEqual({
			local: `127.0.0.1:${forward.port}`,
			remote: `127.0.0.1:${echo.port}`,
			state: 'listening',
			connections: 0,
			label: 'echo',
		});
		const data = randomBytes(8 * 1024 * 1024);
		const back = await roundTrip(forward.port, data);
		expect(createHash('sha256').update(back).digest('hex')).toBe(
			createHash('sha256').update(data).digest('hex'),
		);
		await waitFor(() => statuses.at(-1)?.connections === 0, {
			message: 'connection count back to 0',
		});
		expect(statuses.some((s) => s.connections === 1)).toBe(true);
	});

	it('holds a connection made while the hop is down until it is up', async () => {
		const {hop, open} = await rig({start: false});
		const forward = await open({waitMs: 30_000});
		const pending = roundTrip(forward.port, Buffer.from('early bytes'));
		await waitFor(() => hop.state === 'connecting', {message: 'hop not started yet'});
		hop.start();
		expect((await pending).toString()).toBe('early bytes');
	});

	it('closes a connection when the hop stays down past waitMs', async () => {
		const {open} = await rig({start: false});
		const statuses: ForwardStatus[] = [];
		const forward = await open({waitMs: 300, onStatus: (f) => statuses.push(f)});
		const back = await roundTrip(forward.port, Buffer.from('nobody home'));
		expect(back.length).toBe(0);
		await waitFor(() => statuses.at(-1)?.connections === 0, {message: 'count back to 0'});
	});

	it('closes the socket when the far side refuses the channel', async () => {
		const {hop, open} = await rig({allow: 'none'});
		const forward = await open();
		expect((await roundTrip(forward.port, Buffer.from('x'))).length).toBe(0);
		// The listener itself is unharmed.
		expect(hop.state).toBe('ready');
	});

	it('keeps its port across a reconnect', async () => {
		const {ssh, hop, open} = await rig();
		const forward = await open();
		expect((await roundTrip(forward.port, Buffer.from('one'))).toString()).toBe('one');
		const client = hop.client;
		ssh.dropAll();
		await waitFor(() => hop.client !== null && hop.client !== client, {message: 'a new client'});
		expect((await roundTrip(forward.port, Buffer.from('two'))).toString()).toBe('two');
	});

	it('says how to fix a busy port, and binds 127.0.0.1 only', async () => {
		const {open} = await rig({start: false});
		const busy = net.createServer();
		await new Promise<void>((resolve) => busy.listen({host: '127.0.0.1', port: 0}, resolve));
		cleanups.push(async () => new Promise<void>((resolve) => busy.close(() => resolve())));
		const port = (busy.address() as net.AddressInfo).port;
		const attempt = open({port});
		await expect(attempt).rejects.toBeInstanceOf(HopError);
		await expect(attempt).rejects.toMatchObject({
			classified: {
				kind: 'port-in-use',
				message: `127.0.0.1:${port} is already in use (another gpujup or an ssh -L?) — choose another with --local-port N, or --local-port 0 to pick a free one`,
			},
		});
		const forward = await open();
		// 127.0.0.2 is loopback too: a wildcard listener would answer there, ours must not.
		const other = await new Promise<string>((resolve) => {
			const socket = net.connect({host: '127.0.0.2', port: forward.port});
			socket.on('connect', () => {
				socket.destroy();
				resolve('connected');
			});
			socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
		});
		expect(other).toBe('ECONNREFUSED');
	});
});
