/**
 * A relay address that is not (or no longer) an honest sshd: the built `gpujup connect --no-tui`
 * against raw TCP servers written here, which speak just enough SSH to matter.
 */
import {execFile} from 'node:child_process';
import {writeFile} from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import {promisify} from 'node:util';
import {afterEach, beforeEach, describe, expect, it} from 'vitest';
import {freePort, tempDir, type TempDir} from '../helpers/ports.js';
import {waitFor} from '../helpers/wait-for.js';
import {assertAlive, lastHop, spawn, stopGpujup} from './fixture.js';
import type {GpujupProcess} from '../e2e/gpujup-process.js';

const execFileP = promisify(execFile);

/**
 * A clear-text SSH_MSG_DISCONNECT as a server may send it before key exchange (RFC 4253 §6, §11.1):
 * uint32 length, byte padding length, payload [byte 1, uint32 reason, string description, string
 * language], at least 4 bytes of padding, the whole a multiple of 8.
 */
export function disconnectPacket(reason: number, description: string): Buffer {
	const text = Buffer.from(description, 'utf8');
	const payload = Buffer.alloc(1 + 4 + 4 + text.length + 4);
	payload[0] = 1;
	payload.writeUInt32BE(reason, 1);
	payload.writeUInt32BE(text.length, 5);
	text.copy(payload, 9);
	payload.writeUInt32BE(0, 9 + text.length);
	let padding = 8 - ((4 + 1 + payload.length) % 8);
	if (padding < 4) padding += 8;
	const packet = Buffer.alloc(4 + 1 + payload.length + padding);
	packet.writeUInt32BE(1 + payload.length + padding, 0);
	packet[4] = padding;
	payload.copy(packet, 5);
	return packet;
}

type Seen = {readonly at: number; readonly spoke: boolean};

/**
 * A server that sends an SSH banner to every connection and calls `onClientBytes` when the client
 * speaks (a real SSH attempt sends its own banner; a probe only reads ours and leaves).
 */
async function rawServer(
	onClientBytes: (socket: net.Socket) => void,
): Promise<{port: number; connections: Seen[]; close(): Promise<void>}> {
	const connections: Seen[] = [];
	const sockets = new Set<net.Socket>();
	const server = net.createServer((socket) => {
		sockets.add(socket);
		const index = connections.push({at: Date.now(), spoke: false}) - 1;
		socket.on('error', () => {});
		socket.on('close', () => sockets.delete(socket));
		socket.write('SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n');
		socket.once('data', () => {
			connections[index] = {...connections[index]!, spoke: true};
			onClientBytes(socket);
		});
	});
	const port = await freePort();
	await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
	return {
		port,
		connections,
		async close() {
			for (const socket of sockets) socket.destroy();
			await new Promise<void>((resolve) => server.close(() => resolve()));
		},
	};
}

describe('a hostile or broken relay', () => {
	let dir: TempDir;
	let proc: GpujupProcess | undefined;
	let server: Awaited<ReturnType<typeof rawServer>> | undefined;
	let env: NodeJS.ProcessEnv;
	let key: string;
	let knownHosts: string;

	beforeEach(async () => {
		dir = await tempDir('hostile-relay');
		key = path.join(dir.path, 'id_ed25519');
		await execFileP('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
		knownHosts = path.join(dir.path, 'known_hosts');
		await writeFile(knownHosts, '', {mode: 0o600});
		env = {
			...process.env,
			HOME: dir.path,
			XDG_CONFIG_HOME: path.join(dir.path, '.config'),
			XDG_STATE_HOME: path.join(dir.path, '.local', 'state'),
			XDG_RUNTIME_DIR: dir.path,
			CI: 'false',
		};
		delete env['SSH_AUTH_SOCK'];
	});

	afterEach(async () => {
		await stopGpujup(proc);
		proc = undefined;
		await server?.close();
		server = undefined;
		await dir.dispose();
	});

	const connect = async (port: number) =>
		spawn(
			[
				'connect',
				'--no-tui',
				'--relay',
				`root@127.0.0.1:${port}`,
				'--relay-port',
				String(await freePort()),
				'--jupyter-port',
				String(await freePort()),
				'--local-port',
				'0',
				'-i',
				key,
				'--known-hosts',
				knownHosts,
				'--keepalive',
				'1',
			],
			env,
		);

	it('keeps retrying after a forged pre-key-exchange DISCONNECT ("host key not verifiable", reason 14)', async () => {
		server = await rawServer((socket) => {
			socket.end(disconnectPacket(14, 'host key not verifiable'));
		});
		const running = await connect(server.port);
		proc = running;
		await waitFor(
			() => {
				assertAlive(running);
				return server!.connections.filter((c) => c.spoke).length >= 4;
			},
			{timeoutMs: 60_000, message: 'four connection attempts'},
		);
		assertAlive(running);
		const relay = lastHop(running, 'relay');
		expect(relay?.['state']).not.toBe('failed');
		expect(running.lines.some((l) => l.type === 'hop' && l['state'] === 'failed')).toBe(false);
		const error = running.lines.findLast(
			(l) => l.type === 'hop' && l['hop'] === 'relay' && l['error'],
		)?.['error'] as {kind?: string; message?: string} | undefined;
		expect(error?.kind).toBe('protocol');
		expect(error?.message).toMatch(/before the host key was verified/);
	}, 90_000);

	it('backs off from a relay that answers TCP and then drops the SSH session', async () => {
		server = await rawServer((socket) => {
			socket.destroy();
		});
		const running = await connect(server.port);
		proc = running;
		const attempts = () => server!.connections.filter((c) => c.spoke);
		// The SPEC's backoff: at once, at once, 0.2 s, then 1, 2, 4 s (±10 %).
		await waitFor(
			() => {
				assertAlive(running);
				return attempts().length >= 6;
			},
			{timeoutMs: 60_000, message: 'six connection attempts'},
		);
		const seen = attempts();
		const gaps = seen.slice(1, 6).map((c, i) => c.at - seen[i]!.at);
		expect(gaps[3]).toBeGreaterThanOrEqual(1500);
		expect(gaps[4]).toBeGreaterThanOrEqual(3000);
		// Probes read the banner without speaking: at most one per wait.
		const untilSixth = server.connections.filter((c) => c.at <= seen[5]!.at);
		expect(untilSixth.length).toBeLessThanOrEqual(6 + 5);
	}, 90_000);
});
