import {readFile} from 'node:fs/promises';
import net from 'node:net';
import type {Duplex} from 'node:stream';
import ssh2, {type Client, type ClientChannel} from 'ssh2';
import {afterEach, beforeEach, describe, expect, it} from 'vitest';
import {hostPatternFor} from '../../source/core/known-hosts.js';
import {
	parseRuntimeFiles,
	runtimeDiscoveryScript,
	runtimeFileSeparator,
} from '../../source/core/jupyter-runtime.js';
import {startEmbeddedServers, type EmbeddedServers} from '../../source/demo/embedded-servers.js';
import {handleGpuHostExec} from '../../source/demo/gpu-host-commands.js';
import {createSimulatedMachine} from '../../source/demo/simulated-gpus.js';
import {tempDir, type TempDir} from '../helpers/ports.js';
import {waitFor} from '../helpers/wait-for.js';
import {generateEd25519} from '../../source/services/ssh-keys.js';

let dir: TempDir;
let servers: EmbeddedServers;
let echo: net.Server;
let echoPort: number;
const clients: Client[] = [];

/** The key a known_hosts line records for `name`, as `type base64`. */
async function knownKey(file: string, name: string): Promise<string | undefined> {
	const text = await readFile(file, 'utf8');
	for (const line of text.split('\n')) {
		const [names, type, key] = line.split(' ');
		if (names?.split(',').includes(name)) return `${type} ${key}`;
	}
	return undefined;
}

async function connect(options: {
	sock?: Duplex;
	port?: number;
	keyName: string;
	privateKey?: string;
}): Promise<Client> {
	const expected = await knownKey(servers.knownHostsFile, options.keyName);
	const privateKey = options.privateKey ?? (await readFile(servers.identityFile, 'utf8'));
	const client = new ssh2.Client();
	clients.push(client);
	return new Promise((resolve, reject) => {
		client.on('error', reject);
		client.on('ready', () => resolve(client));
		client.connect({
			...(options.sock ? {sock: options.sock} : {host: '127.0.0.1', port: options.port}),
			username: servers.username,
			privateKey,
			hostVerifier: (key: Buffer) => {
				const parsed = ssh2.utils.parseKey(key);
				if (parsed instanceof Error) return false;
				const presented = Array.isArray(parsed) ? parsed[0]! : parsed;
				return `${presented.type} ${presented.getPublicSSH().toString('base64')}` === expected;
			},
		});
	});
}

async function forwardOut(client: Client, host: string, port: number): Promise<ClientChannel> {
	return new Promise((resolve, reject) => {
		client.forwardOut('127.0.0.1', 0, host, port, (error, channel) => {
			if (error) reject(error);
			else {
				channel.on('error', () => {});
				resolve(channel);
			}
		});
	});
}

async function exec(
	client: Client,
	command: string,
): Promise<{stdout: string; code: number | null}> {
	return new Promise((resolve, reject) => {
		client.exec(command, (error, channel) => {
			if (error) {
				reject(error);
				return;
			}
			let stdout = '';
			let code: number | null = null;
			channel.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
			channel.stderr.resume();
			channel.on('exit', (c: number | null) => (code = c));
			channel.on('close', () => resolve({stdout, code}));
		});
	});
}

async function bothHops(): Promise<{relay: Client; host: Client}> {
	const relay = await connect({
		port: servers.relayPort,
		keyName: hostPatternFor('127.0.0.1', servers.relayPort),
	});
	const channel = await forwardOut(relay, 'localhost', servers.tunnelPort);
	const host = await connect({
		sock: channel,
		keyName: hostPatternFor('localhost', servers.tunnelPort),
	});
	return {relay, host};
}

beforeEach(async () => {
	dir = await tempDir('demo-servers');
	echo = net.createServer((socket) => {
		socket.on('error', () => {});
		socket.pipe(socket);
	});
	await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
	echoPort = (echo.address() as net.AddressInfo).port;
	const machine = createSimulatedMachine(1);
	servers = await startEmbeddedServers({
		dir: dir.path,
		username: 'demo-user',
		allowedPorts: () => [echoPort],
		exec(command, io) {
			handleGpuHostExec(command, io, {
				machine,
				elapsedMs: () => 5000,
				user: 'demo-user',
				runtimeFiles: () =>
					`{"port": ${echoPort}, "token": "t0k3n", "pid": 7}${runtimeFileSeparator}\n`,
			});
		},
	});
});

afterEach(async () => {
	for (const client of clients.splice(0)) client.end();
	await servers.dispose();
	await new Promise<void>((resolve) => {
		echo.close(() => resolve());
	});
	await dir.dispose();
});

describe('the demo embedded relay and GPU host', () => {
	it('writes a 0600 key and a known_hosts naming both hosts as the client looks them up', async () => {
		const {stat} = await import('node:fs/promises');
		expect((await stat(servers.identityFile)).mode & 0o777).toBe(0o600);
		expect((await stat(servers.knownHostsFile)).mode & 0o777).toBe(0o600);
		for (const name of [
			hostPatternFor('127.0.0.1', servers.relayPort),
			hostPatternFor('localhost', servers.tunnelPort),
			hostPatternFor('127.0.0.1', servers.tunnelPort),
		])
			expect(await knownKey(servers.knownHostsFile, name)).toMatch(/^ssh-ed25519 AAAA/);
		expect(
			await knownKey(servers.knownHostsFile, hostPatternFor('localhost', servers.tunnelPort)),
		).not.toBe(
			await knownKey(servers.knownHostsFile, hostPatternFor('127.0.0.1', servers.relayPort)),
		);
	});

	it('rejects any key but the demo key', async () => {
		const other = generateEd25519();
		await expect(
			connect({
				port: servers.relayPort,
				keyName: hostPatternFor('127.0.0.1', servers.relayPort),
				privateKey: other.private,
			}),
		).rejects.toThrow(/authentication methods failed/i);
	});

	it('reaches the GPU host through the relay, and runs the runtime-file lookup there', async () => {
		const {host} = await bothHops();
		const result = await exec(host, runtimeDiscoveryScript);
		expect(result.code).toBe(0);
		expect(parseRuntimeFiles(result.stdout)).toEqual([
			{port: echoPort, token: 't0k3n', pid: 7, baseUrl: '/', rootDir: null},
		]);
		const other = await exec(host, 'uname -a');
		expect(other.code).toBe(127);
	});

	it('lets the relay forward only to the tunnel port, as "administratively prohibited" otherwise', async () => {
		const relay = await connect({
			port: servers.relayPort,
			keyName: hostPatternFor('127.0.0.1', servers.relayPort),
		});
		await expect(forwardOut(relay, 'localhost', echoPort)).rejects.toThrow(
			/administratively prohibited/,
		);
		await expect(forwardOut(relay, 'example.org', servers.tunnelPort)).rejects.toThrow(
			/administratively prohibited/,
		);
		const ok = await forwardOut(relay, '127.0.0.1', servers.tunnelPort);
		const banner = await new Promise<string>((resolve) =>
			ok.once('data', (chunk: Buffer) => resolve(chunk.toString())),
		);
		expect(banner).toMatch(/^SSH-2\.0-/);
		ok.destroy();
	});

	it('forwards from the GPU host to allowed loopback ports only, bytes intact', async () => {
		const {host} = await bothHops();
		const channel = await forwardOut(host, '127.0.0.1', echoPort);
		const payload = Buffer.alloc(200_000, 'gpujup');
		let received = Buffer.alloc(0);
		channel.on('data', (chunk: Buffer) => (received = Buffer.concat([received, chunk])));
		channel.write(payload);
		await waitFor(() => received.length >= payload.length, {message: 'echo through both hops'});
		expect(received.equals(payload)).toBe(true);
		channel.destroy();
		await expect(forwardOut(host, '127.0.0.1', servers.relayPort)).rejects.toThrow(
			/administratively prohibited/,
		);
	});

	it('drops every connection on request, and closes everything on dispose', async () => {
		const {relay, host} = await bothHops();
		let closed = 0;
		relay.on('close', () => closed++);
		host.on('close', () => closed++);
		await waitFor(() => servers.connections() === 2, {message: 'two server-side connections'});
		servers.dropConnections();
		await waitFor(() => closed === 2 && servers.connections() === 0, {
			message: 'both clients closed',
		});
		await bothHops();
		await servers.dispose();
		await waitFor(() => servers.connections() === 0, {message: 'no connections after dispose'});
		await expect(
			new Promise((resolve, reject) => {
				const socket = net.connect({host: '127.0.0.1', port: servers.relayPort});
				socket.on('connect', () => {
					socket.destroy();
					resolve('connected');
				});
				socket.on('error', reject);
			}),
		).rejects.toThrow(/ECONNREFUSED/);
	});
});
