import {execFile} from 'node:child_process';
import {readFile, stat, writeFile} from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import {promisify} from 'node:util';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import net from 'node:net';
import ssh2 from 'ssh2';
import {HopError} from '../../source/core/classify-error.js';
import {fingerprintSha256} from '../../source/core/known-hosts.js';
import type {ForwardStatus, HopStatus} from '../../source/core/types.js';
import {startLocalForward} from '../../source/services/local-forward.js';
import {SshHop, type SshHopOptions} from '../../source/services/ssh-hop.js';
import {startFaultProxy} from '../helpers/fault-proxy.js';
import {startLab, type Lab} from '../helpers/openssh-lab.js';
import {tempDir, type TempDir} from '../helpers/ports.js';
import {waitFor} from '../helpers/wait-for.js';
import {generateEd25519} from '../../source/services/ssh-keys.js';

const execFileP = promisify(execFile);

type Patch = Partial<Omit<HopStatus, 'hop' | 'label'>>;

/** A hop plus the status it reported, merged as the store would. */
type Watched = {
	readonly hop: SshHop;
	readonly patches: Patch[];
	status(): Patch;
};

function watched(options: Omit<SshHopOptions, 'onStatus'>): Watched {
	const patches: Patch[] = [];
	let merged: Patch = {};
	const hop = new SshHop({
		...options,
		onStatus(patch) {
			patches.push(patch);
			merged = {...merged, ...patch};
		},
	});
	return {hop, patches, status: () => merged};
}

/** A tiny HTTP server on the "GPU host's" loopback (this machine), standing for Jupyter. */
async function startHttp(
	handler: http.RequestListener = (_req, res) => res.end('hello from the gpu host'),
): Promise<{port: number; close(): Promise<void>}> {
	const server = http.createServer(handler);
	await new Promise<void>((resolve) => server.listen({host: '127.0.0.1', port: 0}, resolve));
	const address = server.address();
	const port = typeof address === 'object' && address ? address.port : 0;
	return {
		port,
		async close() {
			server.closeAllConnections();
			await new Promise<void>((resolve) => server.close(() => resolve()));
		},
	};
}

/** GET through the forward; resolves with the body (or rejects on any failure). */
async function get(port: number, urlPath = '/'): Promise<string> {
	const res = await fetch(`http://127.0.0.1:${port}${urlPath}`, {
		signal: AbortSignal.timeout(20_000),
	});
	return res.text();
}

describe('SshHop against real OpenSSH (relay + GPU host + ssh -R)', () => {
	let lab: Lab;
	let web: {port: number; close(): Promise<void>};

	beforeAll(async () => {
		lab = await startLab();
		web = await startHttp((req, res) => {
			if (req.url === '/big') {
				// 1.5 MB: at 150 kB/s about 10 s, far longer than keepalive × count (0.9 s).
				res.end(Buffer.alloc(1_500_000, 'x'));
				return;
			}
			res.end('hello from the gpu host');
		});
	});

	afterAll(async () => {
		await web?.close();
		await lab?.dispose();
	});

	/** Per-test files: a copy of the lab's known_hosts in a 0700 temp dir. */
	async function workspace(): Promise<TempDir & {knownHosts: string}> {
		const dir = await tempDir('hop');
		const knownHosts = path.join(dir.path, 'known_hosts');
		await writeFile(knownHosts, await readFile(lab.knownHosts), {mode: 0o600});
		return Object.assign(dir, {knownHosts});
	}

	/** A forward from a free local port to the web server on the GPU host, through `hop`. */
	const forwardToWeb = async (hop: SshHop, onStatus: (f: ForwardStatus) => void = () => {}) =>
		startLocalForward({
			port: 0,
			remoteHost: '127.0.0.1',
			remotePort: web.port,
			label: 'jupyter',
			hop,
			onStatus,
		});

	function hops(o: {
		knownHosts: string;
		relayPort?: number;
		keepaliveMs?: number;
		keepaliveCount?: number;
		identities?: string[];
		acceptNew?: boolean;
		confirmHostKey?: SshHopOptions['confirmHostKey'];
	}): {relay: Watched; host: Watched; dispose(): Promise<void>} {
		const auth = {
			agentSocket: null,
			identities: o.identities ?? [lab.clientKey],
			defaultIdentities: [],
		};
		const common = {
			username: lab.user,
			knownHostsFile: o.knownHosts,
			acceptNew: o.acceptNew ?? false,
			confirmHostKey: o.confirmHostKey,
			auth,
			keepaliveMs: o.keepaliveMs ?? 1000,
			keepaliveCount: o.keepaliveCount ?? 3,
			connectTimeoutMs: 5000,
			probeIntervalMs: 200,
		};
		const relay = watched({
			...common,
			name: 'relay',
			label: `127.0.0.1:${lab.relay.port}`,
			place: {index: 0, name: 'lab-relay'},
			host: '127.0.0.1',
			port: o.relayPort ?? lab.relay.port,
			hostKeyNames: [`[127.0.0.1]:${lab.relay.port}`],
		});
		const host = watched({
			...common,
			name: 'host',
			label: `gpu (via :${lab.relayPort})`,
			host: 'localhost',
			port: lab.relayPort,
			via: relay.hop,
			viaTarget: {host: 'localhost', port: lab.relayPort},
			hostKeyNames: [`[localhost]:${lab.relayPort}`, `[127.0.0.1]:${lab.relayPort}`],
		});
		return {
			relay,
			host,
			async dispose() {
				await host.hop.dispose();
				await relay.hop.dispose();
			},
		};
	}

	it('brings both hops up through the ssh -R tunnel, forwards to the GPU host, and survives a relay drop', async () => {
		const ws = await workspace();
		const {relay, host, dispose} = hops({knownHosts: ws.knownHosts});
		const forwards: Array<{state: string; connections: number; local: string}> = [];
		let forward: Awaited<ReturnType<typeof startLocalForward>> | undefined;
		try {
			host.hop.start();
			relay.hop.start();
			forward = await forwardToWeb(host.hop, (f) => forwards.push(f));
			// A request made before the hops are up waits for them.
			expect(await get(forward.port)).toBe('hello from the gpu host');
			expect(relay.hop.state).toBe('ready');
			expect(host.hop.state).toBe('ready');
			expect(host.status()).toMatchObject({state: 'ready', attempt: 0, reconnects: 0, error: null});
			await waitFor(
				() => typeof host.status().rttMs === 'number' && typeof relay.status().rttMs === 'number',
				{
					message: 'RTT measured by keepalive round trips',
				},
			);
			expect(forwards[0]).toMatchObject({state: 'listening', local: `127.0.0.1:${forward.port}`});
			await waitFor(() => forwards.at(-1)?.connections === 0, {message: 'connection closed'});
			expect(forwards.some((f) => f.connections === 1)).toBe(true);

			// Kill every relay session (ours and the ssh -R one), as a relay reboot would.
			await lab.dropRelaySessions();
			await waitFor(() => relay.patches.some((p) => p.state === 'lost'), {message: 'relay lost'});
			await waitFor(() => !lab.reverseRunning(), {message: 'ssh -R noticed the drop'});
			await lab.startReverse();
			await waitFor(() => relay.status().state === 'ready' && host.status().state === 'ready', {
				timeoutMs: 60_000,
				message: 'both hops ready again',
			});
			expect(relay.status()).toMatchObject({reconnects: 1, attempt: 0, error: null});
			expect(relay.status().lastLoss?.kind).toBe('closed');
			expect(host.status().reconnects).toBe(1);
			expect(
				host.patches.some(
					(p) => p.state === 'waiting' && p.error?.message === 'waiting for lab-relay, hop 1',
				),
			).toBe(true);
			// Same port, works again.
			expect(await get(forward.port)).toBe('hello from the gpu host');
		} finally {
			await forward?.dispose();
			await dispose();
			await ws.dispose();
		}
		expect(host.status().state).toBe('closed');
		expect(forwards.at(-1)?.state).toBe('closed');
	});

	it('refuses a changed host key, naming both fingerprints, and does not retry', async () => {
		const ws = await workspace();
		const proxy = await startFaultProxy({targetPort: lab.relay.port});
		// Record another key for the relay, as if it had been reinstalled (or impersonated).
		const other = path.join(ws.path, 'other');
		await execFileP('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other]);
		const otherPub = (await readFile(`${other}.pub`, 'utf8')).trim().split(/\s+/);
		await writeFile(
			ws.knownHosts,
			`[127.0.0.1]:${lab.relay.port} ${otherPub[0]} ${otherPub[1]}\n`,
			{mode: 0o600},
		);
		const {relay, dispose} = hops({knownHosts: ws.knownHosts, relayPort: proxy.port});
		try {
			relay.hop.start();
			await waitFor(() => relay.status().state === 'failed', {message: 'relay failed'});
			const error = relay.status().error;
			expect(error?.kind).toBe('host-key');
			const offered = fingerprintSha256(
				Buffer.from(lab.relay.hostKeyPub.split(/\s+/)[1]!, 'base64'),
			);
			const known = fingerprintSha256(Buffer.from(otherPub[1]!, 'base64'));
			expect(error?.message).toContain(offered);
			expect(error?.message).toContain(known);
			expect(error?.message).toContain(`ssh-keygen -R "[127.0.0.1]:${lab.relay.port}"`);
			// A retry would be immediate (0 ms); a whole OpenSSH login takes far longer.
			const login = await lab.ssh([...lab.relaySshArgs(), 'true']);
			expect(login.code).toBe(0);
			expect(relay.status()).toMatchObject({state: 'failed', attempt: 1});
			expect(proxy.accepted).toBe(1);
			expect(relay.patches.every((p) => p.attempt === undefined || p.attempt <= 1)).toBe(true);
		} finally {
			await dispose();
			await proxy.dispose();
			await ws.dispose();
		}
	});

	it('stops on a wrong client key with an auth error naming user, host and key', async () => {
		const ws = await workspace();
		const proxy = await startFaultProxy({targetPort: lab.relay.port});
		const wrong = path.join(ws.path, 'id_wrong');
		await execFileP('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', wrong]);
		const {relay, dispose} = hops({
			knownHosts: ws.knownHosts,
			relayPort: proxy.port,
			identities: [wrong],
		});
		try {
			relay.hop.start();
			await waitFor(() => relay.status().state === 'failed', {message: 'relay failed'});
			const error = relay.status().error;
			expect(error?.kind).toBe('auth');
			expect(error?.message).toContain(`root@127.0.0.1:${proxy.port}`);
			expect(error?.message).toContain(wrong);
			const login = await lab.ssh([...lab.relaySshArgs(), 'true']);
			expect(login.code).toBe(0);
			expect(relay.status()).toMatchObject({state: 'failed', attempt: 1});
			expect(proxy.accepted).toBe(1);
			// `r` after fixing the key: same hop, right key is not possible here, but the retry runs.
			relay.hop.reconnectNow();
			await waitFor(() => proxy.accepted === 2 && relay.status().state === 'failed', {
				message: 'a second, user-requested attempt',
			});
			expect(relay.status().attempt).toBe(2);
		} finally {
			await dispose();
			await proxy.dispose();
			await ws.dispose();
		}
	});

	it('records unknown host keys with --accept-new (0600) and refuses them otherwise', async () => {
		const dir = await tempDir('hop-new');
		const knownHosts = path.join(dir.path, 'ssh', 'known_hosts');
		try {
			const refused = hops({knownHosts});
			refused.relay.hop.start();
			await waitFor(() => refused.relay.status().state === 'failed', {
				message: 'unknown key refused',
			});
			expect(refused.relay.status().error?.kind).toBe('host-key');
			expect(refused.relay.status().error?.message).toMatch(
				/host key for \[127\.0\.0\.1\]:\d+ is unknown \(ED25519 SHA256:.+\) — accept it in the dashboard, run with --accept-new/,
			);
			await refused.dispose();

			const {relay, host, dispose} = hops({knownHosts, acceptNew: true});
			try {
				relay.hop.start();
				host.hop.start();
				await waitFor(() => host.status().state === 'ready', {message: 'host ready'});
				const text = await readFile(knownHosts, 'utf8');
				expect(text).toContain(`[127.0.0.1]:${lab.relay.port} ${lab.relay.hostKeyPub}`);
				expect(text).toContain(`[localhost]:${lab.relayPort} ${lab.gpu.hostKeyPub}`);
				expect((await stat(knownHosts)).mode & 0o777).toBe(0o600);
				expect((await stat(path.dirname(knownHosts))).mode & 0o777).toBe(0o700);
			} finally {
				await dispose();
			}
		} finally {
			await dir.dispose();
		}
	});

	it('asks about an unknown key through confirmHostKey and records a yes', async () => {
		const dir = await tempDir('hop-ask');
		const knownHosts = path.join(dir.path, 'known_hosts');
		await writeFile(knownHosts, '', {mode: 0o600});
		const asked: Array<{host: string; keyType: string; fingerprint: string}> = [];
		const {relay, dispose} = hops({
			knownHosts,
			async confirmHostKey(info) {
				asked.push(info);
				return true;
			},
		});
		try {
			relay.hop.start();
			await waitFor(() => relay.status().state === 'ready', {message: 'relay ready'});
			expect(asked).toEqual([
				{
					host: `[127.0.0.1]:${lab.relay.port}`,
					keyType: 'ssh-ed25519',
					fingerprint: fingerprintSha256(
						Buffer.from(lab.relay.hostKeyPub.split(/\s+/)[1]!, 'base64'),
					),
				},
			]);
			expect(await readFile(knownHosts, 'utf8')).toContain(lab.relay.hostKeyPub);
		} finally {
			await dispose();
			await dir.dispose();
		}
	});

	it('does not cut a slow download while bytes flow, and declares a blackholed link lost', async () => {
		const ws = await workspace();
		const proxy = await startFaultProxy({targetPort: lab.relay.port});
		const {relay, host, dispose} = hops({
			knownHosts: ws.knownHosts,
			relayPort: proxy.port,
			keepaliveMs: 300,
			keepaliveCount: 3,
		});
		let forward: Awaited<ReturnType<typeof startLocalForward>> | undefined;
		try {
			relay.hop.start();
			host.hop.start();
			forward = await forwardToWeb(host.hop);
			await waitFor(() => host.status().state === 'ready', {message: 'host ready'});

			// A keepalive reply now waits behind seconds of queued data: ssh2's own counter would
			// give up, OpenSSH's rule (any inbound byte is life) must not.
			proxy.throttle(150_000);
			const body = await get(forward.port, '/big');
			expect(body.length).toBe(1_500_000);
			expect(relay.patches.some((p) => p.state === 'lost')).toBe(false);
			expect(host.patches.some((p) => p.state === 'lost')).toBe(false);
			expect(relay.status()).toMatchObject({state: 'ready', reconnects: 0});
			proxy.throttle(null);

			proxy.setMode('blackhole');
			await waitFor(() => relay.patches.some((p) => p.state === 'lost'), {message: 'relay lost'});
			expect(relay.patches.find((p) => p.state === 'lost')?.error?.kind).toBe('timeout');
			await waitFor(() => host.status().state === 'waiting', {message: 'host follows its parent'});
			proxy.setMode('pass');
			await waitFor(() => relay.status().state === 'ready' && host.status().state === 'ready', {
				timeoutMs: 60_000,
				message: 'both hops back',
			});
			expect(relay.status().reconnects).toBe(1);
			expect(await get(forward.port)).toBe('hello from the gpu host');
		} finally {
			await forward?.dispose();
			await dispose();
			await proxy.dispose();
			await ws.dispose();
		}
	});
});

describe('SshHop lifecycle (in-process ssh2 server)', () => {
	/** An ssh2 Server on 127.0.0.1:0 that lets anyone in; counts logins. */
	async function startServer() {
		const hostKey = generateEd25519();
		let logins = 0;
		const server = new ssh2.Server({hostKeys: [hostKey.private]}, (conn) => {
			conn.on('error', () => {});
			conn.on('authentication', (ctx) => ctx.accept());
			conn.on('ready', () => logins++);
		});
		await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
		const port = (server.address() as net.AddressInfo).port;
		return {
			port,
			hostKeyPub: `ssh-ed25519 ${hostKey.public.split(/\s+/)[1]}`,
			get logins() {
				return logins;
			},
			async close() {
				await new Promise<void>((resolve) => server.close(() => resolve()));
			},
		};
	}

	async function rig(options: Partial<SshHopOptions> = {}, port?: number) {
		const server = await startServer();
		const dir = await tempDir('hop-life');
		const knownHosts = path.join(dir.path, 'known_hosts');
		const target = port ?? server.port;
		await writeFile(knownHosts, `[127.0.0.1]:${target} ${server.hostKeyPub}\n`, {mode: 0o600});
		const w = watched({
			name: 'reverse',
			label: `127.0.0.1:${target}`,
			host: '127.0.0.1',
			port: target,
			username: 'ml',
			knownHostsFile: knownHosts,
			hostKeyNames: [`[127.0.0.1]:${target}`],
			acceptNew: false,
			auth: {agentSocket: null, identities: [], defaultIdentities: []},
			keepaliveMs: 1000,
			keepaliveCount: 3,
			...options,
		});
		return {
			...w,
			server,
			async dispose() {
				await w.hop.dispose();
				await server.close();
				await dir.dispose();
			},
		};
	}

	it('retries when setup fails, and is ready once it passes', async () => {
		let calls = 0;
		const r = await rig({
			async setup(client) {
				calls++;
				expect(client).toBeInstanceOf(ssh2.Client);
				if (calls < 3)
					throw new HopError({kind: 'forbidden', message: 'relay refused the remote forward'});
			},
		});
		try {
			r.hop.start();
			const client = await r.hop.waitReady(30_000);
			expect(client).not.toBeNull();
			expect(client).toBe(r.hop.client);
			expect(calls).toBe(3);
			expect(r.server.logins).toBe(3);
			expect(r.patches.filter((p) => p.state === 'waiting').map((p) => p.error?.kind)).toEqual([
				'forbidden',
				'forbidden',
			]);
			expect(r.status()).toMatchObject({state: 'ready', attempt: 0, error: null});
		} finally {
			await r.dispose();
		}
	});

	it('stops when setup throws a terminal error', async () => {
		const r = await rig({
			async setup() {
				throw new HopError({kind: 'auth', message: 'GPU host refused the key'});
			},
		});
		try {
			r.hop.start();
			expect(await r.hop.waitReady(300)).toBeNull();
			await waitFor(() => r.status().state === 'failed', {message: 'failed'});
			expect(r.status().error).toEqual({kind: 'auth', message: 'GPU host refused the key'});
		} finally {
			await r.dispose();
		}
	});

	it('aborts a running setup on dispose and reports closed', async () => {
		let signal: AbortSignal | undefined;
		const r = await rig({
			async setup(_client, s) {
				signal = s;
				await new Promise((_resolve, reject) =>
					s.addEventListener('abort', () => reject(new Error('aborted'))),
				);
			},
		});
		r.hop.start();
		await waitFor(() => signal !== undefined, {message: 'setup running'});
		const waiting = r.hop.waitReady(60_000);
		await r.dispose();
		expect(signal?.aborted).toBe(true);
		expect(await waiting).toBeNull();
		expect(r.status().state).toBe('closed');
		expect(r.hop.state).toBe('closed');
	});

	it('times out a server that accepts TCP but never speaks SSH, then retries', async () => {
		const muted = new Set<net.Socket>();
		const mute = net.createServer((socket) => {
			muted.add(socket);
			socket.on('error', () => {});
			// Read (and ignore) so the client's FIN is seen.
			socket.resume();
		});
		await new Promise<void>((resolve) => mute.listen({host: '127.0.0.1', port: 0}, resolve));
		let accepted = 0;
		mute.on('connection', () => accepted++);
		const r = await rig({connectTimeoutMs: 300}, (mute.address() as net.AddressInfo).port);
		try {
			r.hop.start();
			await waitFor(() => accepted >= 2, {message: 'a retry after the timeout'});
			const failed = r.patches.find((p) => p.state === 'waiting');
			expect(failed?.error?.kind).toBe('timeout');
			expect(failed?.error?.message).toContain('did not complete the SSH handshake');
			await r.dispose();
			// Every attempt's socket is gone once dispose resolves (the server sees them close).
			await waitFor(() => [...muted].every((socket) => socket.destroyed), {
				timeoutMs: 5000,
				message: 'no socket left behind',
			});
		} finally {
			await r.dispose();
			for (const socket of muted) socket.destroy();
			await new Promise<void>((resolve) => mute.close(() => resolve()));
		}
	});
});
