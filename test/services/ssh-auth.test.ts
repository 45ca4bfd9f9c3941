import {execFile} from 'node:child_process';
import {readFile, writeFile} from 'node:fs/promises';
import type net from 'node:net';
import path from 'node:path';
import {promisify} from 'node:util';
import ssh2 from 'ssh2';
import type {Connection, ParsedKey} from 'ssh2';
import {afterEach, describe, expect, it} from 'vitest';
import type {HopStatus} from '../../source/core/types.js';
import {tildify} from '../../source/services/ssh-auth.js';
import {SshHop, type SshHopOptions} from '../../source/services/ssh-hop.js';
import {tempDir, type TempDir} from '../helpers/ports.js';
import {waitFor} from '../helpers/wait-for.js';
import {generateEd25519} from '../../source/services/ssh-keys.js';

const execFileP = promisify(execFile);

type Patch = Partial<Omit<HopStatus, 'hop' | 'label'>>;

/**
 * An in-process ssh2 Server on 127.0.0.1:0 (as ssh2's own test/common.js does), for cases the
 * lab's OpenSSH cannot express without PAM: keyboard-interactive, and counting attempts exactly.
 */
async function startServer(o: {
	acceptKey?: ParsedKey;
	/** keyboard-interactive: the answer that is accepted for the one prompt. */
	code?: string;
}) {
	const hostKey = generateEd25519();
	const connections = new Set<Connection>();
	let accepted = 0;
	const server = new ssh2.Server({hostKeys: [hostKey.private]}, (conn) => {
		connections.add(conn);
		conn.on('error', () => {});
		conn.on('close', () => connections.delete(conn));
		conn.on('authentication', (ctx) => {
			if (ctx.method === 'publickey' && o.acceptKey) {
				const key = o.acceptKey;
				if (ctx.key.algo !== key.type || !ctx.key.data.equals(key.getPublicSSH())) {
					ctx.reject(['publickey', ...(o.code ? ['keyboard-interactive' as const] : [])]);
					return;
				}
				if (
					ctx.signature &&
					ctx.blob &&
					key.verify(ctx.blob, ctx.signature, ctx.hashAlgo) !== true
				) {
					ctx.reject();
					return;
				}
				ctx.accept();
				return;
			}
			if (ctx.method === 'keyboard-interactive' && o.code !== undefined) {
				ctx.prompt([{prompt: 'Verification code: ', echo: false}], 'gpujup test', (answers) => {
					if (answers[0] === o.code) ctx.accept();
					else ctx.reject();
				});
				return;
			}
			const methods: Array<'publickey' | 'keyboard-interactive'> = [];
			if (o.acceptKey) methods.push('publickey');
			if (o.code !== undefined) methods.push('keyboard-interactive');
			ctx.reject(methods);
		});
		conn.on('ready', () => {
			accepted++;
		});
	});
	await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
	const port = (server.address() as net.AddressInfo).port;
	return {
		port,
		hostKeyPub: `ssh-ed25519 ${hostKey.public.split(/\s+/)[1]}`,
		get accepted() {
			return accepted;
		},
		dropAll() {
			for (const conn of connections) conn.end();
		},
		async close() {
			for (const conn of connections) conn.end();
			await new Promise<void>((resolve) => server.close(() => resolve()));
		},
	};
}

describe('ssh-auth through SshHop (in-process ssh2 server)', () => {
	const cleanups: Array<() => Promise<void>> = [];
	afterEach(async () => {
		for (const cleanup of cleanups.reverse()) await cleanup();
		cleanups.length = 0;
	});

	/** A 0700 temp dir, removed after the test. */
	async function scratch(): Promise<TempDir> {
		const dir = await tempDir('auth');
		cleanups.push(async () => dir.dispose());
		return dir;
	}

	/** {@link startServer}, closed after the test. */
	async function serve(o: Parameters<typeof startServer>[0]) {
		const server = await startServer(o);
		cleanups.push(async () => server.close());
		return server;
	}

	async function setup(server: {port: number; hostKeyPub: string}, dir: TempDir) {
		const knownHosts = path.join(dir.path, 'known_hosts');
		await writeFile(knownHosts, `[127.0.0.1]:${server.port} ${server.hostKeyPub}\n`, {mode: 0o600});
		return knownHosts;
	}

	function hop(
		o: Partial<SshHopOptions> & Pick<SshHopOptions, 'port' | 'knownHostsFile' | 'auth'>,
	) {
		let status: Patch = {};
		const h = new SshHop({
			name: 'relay',
			label: `127.0.0.1:${o.port}`,
			host: '127.0.0.1',
			username: 'ml',
			hostKeyNames: [`[127.0.0.1]:${o.port}`],
			acceptNew: false,
			keepaliveMs: 1000,
			keepaliveCount: 3,
			...o,
			onStatus(patch) {
				status = {...status, ...patch};
			},
		});
		cleanups.push(async () => h.dispose());
		return {hop: h, status: () => status};
	}

	async function encryptedKey(
		dir: TempDir,
		name = 'id_ed25519',
	): Promise<{file: string; parsed: ParsedKey}> {
		const file = path.join(dir.path, name);
		await execFileP('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'correct horse', '-f', file]);
		const parsed = ssh2.utils.parseKey(await readFile(`${file}.pub`));
		if (parsed instanceof Error || Array.isArray(parsed)) throw new Error('bad test key');
		return {file, parsed};
	}

	it('explains an encrypted key when nobody can type the passphrase', async () => {
		const dir = await scratch();
		const key = await encryptedKey(dir);
		const server = await serve({acceptKey: key.parsed});
		const {hop: h, status} = hop({
			port: server.port,
			knownHostsFile: await setup(server, dir),
			auth: {agentSocket: null, identities: [key.file], defaultIdentities: []},
		});
		h.start();
		await waitFor(() => status().state === 'failed', {message: 'auth failed'});
		expect(status().error?.kind).toBe('auth');
		expect(status().error?.message).toContain(
			`key ${tildify(key.file)} is encrypted: load it into ssh-agent or run gpujup with its dashboard to type the passphrase`,
		);
		expect(status().error?.message).toContain(`ml@127.0.0.1:${server.port}`);
		expect(status().attempt).toBe(1);
	});

	/** A real ssh-agent on a socket of its own, stopped at cleanup. */
	async function startAgent(dir: TempDir): Promise<string> {
		const socket = path.join(dir.path, 'agent.sock');
		const {stdout} = await execFileP('ssh-agent', ['-a', socket, '-s']);
		const pid = Number(/SSH_AGENT_PID=(\d+)/.exec(stdout)?.[1]);
		cleanups.push(async () => {
			try {
				process.kill(pid, 'SIGTERM');
			} catch {
				// Gone already.
			}
		});
		return socket;
	}

	it('names the keys offered, and does not blame an encrypted key that the agent holds', async () => {
		const dir = await scratch();
		// The user's key, unlocked once into their agent; the file on disk is encrypted.
		const file = path.join(dir.path, 'id_ed25519');
		await execFileP('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'me@x390', '-f', file]);
		const agent = await startAgent(dir);
		await execFileP('ssh-add', [file], {env: {...process.env, SSH_AUTH_SOCK: agent}});
		await execFileP('ssh-keygen', ['-q', '-p', '-P', '', '-N', 'correct horse', '-f', file]);
		const fingerprint = (
			await execFileP('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${file}.pub`])
		).stdout.split(' ')[1]!;
		expect(fingerprint).toMatch(/^SHA256:/);
		// A second file that is not in the agent, encrypted: that one does need its passphrase.
		const other = await encryptedKey(dir, 'id_other');
		// The server takes some other key only.
		const someOther = ssh2.utils.parseKey(generateEd25519().public) as ParsedKey;
		const server = await serve({acceptKey: someOther});
		const asked: string[] = [];
		for (const askSecret of [
			undefined,
			async (message: string) => {
				asked.push(message);
				return null;
			},
		]) {
			const {hop: h, status} = hop({
				port: server.port,
				knownHostsFile: await setup(server, dir),
				auth: {
					agentSocket: agent,
					identities: [],
					defaultIdentities: [file, other.file],
					...(askSecret ? {askSecret} : {}),
				},
			});
			h.start();
			await waitFor(() => status().state === 'failed', {message: 'auth failed'});
			const message = status().error!.message;
			expect(status().error?.kind).toBe('auth');
			// What was offered comes first, by fingerprint and comment; the generic advice after it.
			expect(message).toMatch(
				new RegExp(`^authentication as ml@127\\.0\\.0\\.1:${server.port} failed: `),
			);
			expect(message).toContain(`ssh-agent offered ED25519 ${fingerprint} (me@x390)`);
			expect(message.indexOf(fingerprint)).toBeLessThan(message.indexOf('authorized_keys'));
			expect(message).toContain(`${tildify(file)} not tried again: the agent holds its key`);
			expect(message).not.toContain(`key ${tildify(file)} is encrypted`);
			expect(message).not.toContain(`${tildify(file)} not given`);
			// The one the agent does not hold is named as needing its passphrase.
			expect(message).toContain(
				askSecret
					? `passphrase for ${tildify(other.file)} not given`
					: `key ${tildify(other.file)} is encrypted`,
			);
			await h.dispose();
		}

		// With a dashboard, the passphrase of the agent's key is not even asked for.
		expect(asked).toEqual([`Enter passphrase for key '${tildify(other.file)}':`]);
	});

	it('asks for the passphrase once, retries a wrong one, and reuses the key after a reconnect', async () => {
		const dir = await scratch();
		const key = await encryptedKey(dir);
		const server = await serve({acceptKey: key.parsed});
		const asked: Array<[string, boolean]> = [];
		const answers = ['wrong', 'correct horse'];
		const {hop: h, status} = hop({
			port: server.port,
			knownHostsFile: await setup(server, dir),
			auth: {
				agentSocket: null,
				identities: [key.file],
				defaultIdentities: [],
				async askSecret(message, echo) {
					asked.push([message, echo]);
					return answers.shift() ?? null;
				},
			},
		});
		h.start();
		await waitFor(() => status().state === 'ready', {message: 'ready with the passphrase'});
		expect(asked).toEqual([
			[`Enter passphrase for key '${tildify(key.file)}':`, false],
			[`Wrong passphrase, try again. Enter passphrase for key '${tildify(key.file)}':`, false],
		]);
		server.dropAll();
		await waitFor(() => status().state === 'ready' && status().reconnects === 1, {
			message: 'reconnected',
		});
		expect(asked).toHaveLength(2);
		expect(server.accepted).toBe(2);
	});

	it('answers keyboard-interactive prompts through askSecret', async () => {
		const dir = await scratch();
		const server = await serve({code: '424242'});
		const prompts: string[] = [];
		const {hop: h, status} = hop({
			port: server.port,
			knownHostsFile: await setup(server, dir),
			auth: {
				agentSocket: path.join(dir.path, 'no-agent.sock'),
				identities: [],
				defaultIdentities: [path.join(dir.path, 'id_missing')],
				async askSecret(message) {
					prompts.push(message);
					return '424242';
				},
			},
		});
		h.start();
		await waitFor(() => status().state === 'ready', {message: 'ready via keyboard-interactive'});
		expect(prompts).toEqual(['Verification code: ']);
	});

	it('fails clearly when the server only takes keyboard-interactive and there is no dashboard', async () => {
		const dir = await scratch();
		const server = await serve({code: '424242'});
		const {hop: h, status} = hop({
			port: server.port,
			knownHostsFile: await setup(server, dir),
			auth: {
				agentSocket: path.join(dir.path, 'no-agent.sock'),
				identities: [],
				defaultIdentities: [],
			},
		});
		h.start();
		await waitFor(() => status().state === 'failed', {message: 'auth failed'});
		expect(status().error?.kind).toBe('auth');
		// The server's `none` answer rules out keys, so the agent is not even asked.
		expect(status().error?.message).toContain('the server accepts keyboard-interactive');
		expect(status().error?.message).toContain('keyboard-interactive needs the dashboard');
	});
});

describe('tildify', () => {
	it('shortens paths under HOME only', () => {
		expect(tildify('/home/u/.ssh/id_ed25519', '/home/u')).toBe('~/.ssh/id_ed25519');
		expect(tildify('/home/uv/.ssh/id', '/home/u')).toBe('/home/uv/.ssh/id');
		expect(tildify('/etc/key', '')).toBe('/etc/key');
	});
});
