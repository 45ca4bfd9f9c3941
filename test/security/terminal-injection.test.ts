/**
 * Remote text never reaches the terminal raw: a hostile relay or GPU host puts OSC 52 (the
 * clipboard), CSI and C1 controls into every string it controls — a DISCONNECT description sent
 * before key exchange, the SSH banner read through the relay port, the auth-method list, a
 * keyboard-interactive prompt, a GPU name — and none of it may come out of the dashboard (raw bytes
 * through tmux `pipe-pane`), `status`, `doctor` or `--no-tui`.
 */
import {mkdir, readFile, writeFile} from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import ssh2 from 'ssh2';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {generateEd25519} from '../../source/services/ssh-keys.js';
import {cli, runGpujup, spawnGpujup, type GpujupProcess} from '../e2e/gpujup-process.js';
import {installFakeNvidiaSmi} from '../helpers/fake-nvidia-smi.js';
import {freePort, tempDir, type TempDir} from '../helpers/ports.js';
import {startTmux, type Tmux} from '../helpers/tmux.js';
import {waitFor} from '../helpers/wait-for.js';
import {connectArgs, startChain, stopGpujup, type Chain} from '../faults/fixture.js';
import {startLab, type Lab} from '../helpers/openssh-lab.js';

/** base64 of "HOSTILE": what an OSC 52 would put on the user's clipboard. */
const clipboardPayload = 'SE9TVElMRQ==';

/** `marker` wrapped in OSC 52 (BEL and ST ends), a CSI, and their 8-bit C1 forms. */
const hostile = (marker: string) =>
	`${marker} \u001B]52;c;${clipboardPayload}\u0007\u001B[7777X` +
	`\u009B7777X\u009D52;c;${clipboardPayload}\u009C\u001B]52;c;${clipboardPayload}\u001B\\ tail`;

/** The parts of {@link hostile} that must never come out, whatever else the terminal gets. */
const forbidden = [']52;', clipboardPayload, '7777X'];

/** Output that holds no escape of gpujup's own (stdout/stderr of the plain printers and JSON). */
function expectPlain(output: Buffer | string, where: string): void {
	const bytes = typeof output === 'string' ? Buffer.from(output) : output;
	const text = bytes.toString('latin1');
	expect(bytes.includes(0x1b), `${where}: an ESC byte in ${JSON.stringify(text)}`).toBe(false);
	expect(/\u00C2[\u0080-\u009F]/.test(text), `${where}: a C1 control`).toBe(false);
	for (const part of forbidden) expect(text, where).not.toContain(part);
}

/** Dashboard bytes: gpujup's own ESC sequences are fine; none of the remote side's. */
function expectNoRemoteEscapes(raw: Buffer, where: string): void {
	const text = raw.toString('latin1');
	expect(/\u00C2[\u0080-\u009F]/.test(text), `${where}: a C1 control`).toBe(false);
	for (const part of forbidden) expect(text, where).not.toContain(part);
}

const u32 = (n: number) => {
	const b = Buffer.alloc(4);
	b.writeUInt32BE(n);
	return b;
};

/** SSH_MSG_DISCONNECT as a cleartext binary packet (before any key exchange, RFC 4253 §6). */
function disconnectPacket(reason: number, description: string): Buffer {
	const text = Buffer.from(description, 'utf8');
	const payload = Buffer.concat([Buffer.from([1]), u32(reason), u32(text.length), text, u32(0)]);
	let padding = 8 - ((5 + payload.length) % 8);
	if (padding < 4) padding += 8;
	return Buffer.concat([
		u32(1 + payload.length + padding),
		Buffer.from([padding]),
		payload,
		Buffer.alloc(padding),
	]);
}

/**
 * A raw TCP "SSH server": a banner with escapes in its comment, then a DISCONNECT (reason 14,
 * NO_MORE_AUTH_METHODS) whose description carries {@link hostile} — all before any host key.
 */
async function startDisconnectServer(
	port: number,
	marker: string,
): Promise<{port: number; close(): Promise<void>}> {
	const sockets = new Set<net.Socket>();
	const server = net.createServer((socket) => {
		sockets.add(socket);
		socket.on('close', () => sockets.delete(socket));
		socket.on('error', () => {});
		socket.write(`SSH-2.0-OpenSSH_9.6 ${hostile('BANNER')}\r\n`);
		socket.once('data', () => {
			socket.end(disconnectPacket(14, hostile(marker)));
		});
	});
	await new Promise<void>((resolve) => server.listen({host: '127.0.0.1', port}, resolve));
	return {
		port,
		async close() {
			for (const socket of sockets) socket.destroy();
			await new Promise<void>((resolve) => server.close(() => resolve()));
		},
	};
}

/** A laptop environment of its own (HOME, XDG dirs), no agent, colours on. */
async function laptopEnv(home: string): Promise<NodeJS.ProcessEnv> {
	const env: NodeJS.ProcessEnv = {
		...process.env,
		HOME: home,
		XDG_CONFIG_HOME: path.join(home, '.config'),
		XDG_STATE_HOME: path.join(home, '.local', 'state'),
		XDG_RUNTIME_DIR: path.join(home, 'run'),
		CI: 'false',
	};
	delete env.SSH_AUTH_SOCK;
	delete env.NO_COLOR;
	delete env.TMUX;
	await mkdir(path.join(home, 'run'), {recursive: true, mode: 0o700});
	return env;
}

/** The dashboard in tmux until `text` shows; resolves with every raw byte it wrote. */
async function dashboardBytes(
	args: readonly string[],
	env: NodeJS.ProcessEnv,
	dir: string,
	text: string,
): Promise<{raw: Buffer; screen: string}> {
	const rawFile = path.join(dir, `pane-${Date.now()}.raw`);
	let tmux: Tmux | undefined;
	try {
		tmux = await startTmux([process.execPath, cli, ...args], {env, rawOutputFile: rawFile});
		const screen = await tmux.waitForText(text, 60_000);
		// The pipe writes behind the screen: wait until the marker is in the raw bytes too.
		const raw = await waitFor(
			async () => {
				const bytes = await readFile(rawFile).catch(() => Buffer.alloc(0));
				return bytes.includes(text) ? bytes : undefined;
			},
			{timeoutMs: 20_000, message: `${text} in the pane's raw output`},
		);
		return {raw, screen};
	} finally {
		await tmux?.dispose();
	}
}

/** `--no-tui` until a line mentions `text`; then stopped. Resolves stdout and stderr. */
async function noTuiOutput(
	args: readonly string[],
	env: NodeJS.ProcessEnv,
	text: string,
): Promise<{stdout: string; stderr: string}> {
	let proc: GpujupProcess | undefined;
	try {
		proc = spawnGpujup(args, env);
		await proc.waitForLine((line) => JSON.stringify(line).includes(text), {timeoutMs: 60_000});
		await stopGpujup(proc);
		const all = proc.output();
		const stderr = proc.stderr();
		return {stdout: all.slice(0, all.length - stderr.length), stderr};
	} finally {
		await stopGpujup(proc);
	}
}

/** Flags for a relay on 127.0.0.1:`port`, with a known_hosts of `knownHostsText` in `dir`. */
async function relayFlags(dir: string, port: number, knownHostsText: string): Promise<string[]> {
	const knownHosts = path.join(dir, 'known_hosts');
	await writeFile(knownHosts, knownHostsText, {mode: 0o600});
	return [
		'--relay',
		`root@127.0.0.1:${port}`,
		'--known-hosts',
		knownHosts,
		'--local-port',
		'0',
		'--keepalive',
		'1',
	];
}

/** Run a plain printer (`status`, `doctor`) to its end: it names `marker`, with no escapes. */
async function expectPrintedPlain(
	args: readonly string[],
	env: NodeJS.ProcessEnv,
	marker: string,
): Promise<void> {
	const {stdout, stderr} = await runGpujup(args, env);
	const where = `gpujup ${args[0]}${args[1] === '--json' ? ' --json' : ''}`;
	expect(stdout, where).toContain(marker);
	expectPlain(stdout + stderr, where);
}

/** `--no-tui` until a line names `marker`: stdout and stderr without escapes. */
async function expectNoTuiPlain(
	args: readonly string[],
	env: NodeJS.ProcessEnv,
	marker: string,
): Promise<void> {
	const {stdout, stderr} = await noTuiOutput(args, env, marker);
	expectPlain(stdout, '--no-tui stdout');
	expectPlain(stderr, '--no-tui stderr');
}

/** The dashboard in tmux shows `marker`, and its raw bytes hold no escape of the remote side. */
async function expectDashboardClean(
	args: readonly string[],
	env: NodeJS.ProcessEnv,
	dir: string,
	marker: string,
): Promise<void> {
	const {raw, screen} = await dashboardBytes(args, env, dir, marker);
	expect(screen).toContain(marker);
	expectNoRemoteEscapes(raw, 'dashboard');
}

describe('a relay that disconnects before key exchange with escapes in its message', () => {
	let home: TempDir;
	let env: NodeJS.ProcessEnv;
	let relay: {port: number; close(): Promise<void>};
	let flags: string[];

	beforeAll(async () => {
		home = await tempDir('inject-disconnect');
		env = await laptopEnv(home.path);
		relay = await startDisconnectServer(await freePort(), 'HOSTILE-DISCONNECT');
		flags = await relayFlags(home.path, relay.port, '');
	});

	afterAll(async () => {
		await relay?.close();
		await home?.dispose();
	});

	it('--no-tui: the hop error and the stderr line carry the message without its escapes', async () => {
		await expectNoTuiPlain(['connect', '--no-tui', ...flags], env, 'HOSTILE-DISCONNECT');
	});

	it('status, status --json and doctor print it without its escapes', async () => {
		await expectPrintedPlain(['status', ...flags], env, 'HOSTILE-DISCONNECT');
		await expectPrintedPlain(['status', '--json', ...flags], env, 'HOSTILE-DISCONNECT');
		await expectPrintedPlain(['doctor', ...flags], env, 'HOSTILE-DISCONNECT');
	});

	it('the dashboard shows it, and no escape of the server reaches the terminal', async () => {
		await expectDashboardClean(['connect', ...flags], env, home.path, 'HOSTILE-DISCONNECT');
	});
});

describe('a relay whose auth-method list and keyboard-interactive prompt carry escapes', () => {
	let home: TempDir;
	let env: NodeJS.ProcessEnv;
	let server: ssh2.Server;
	let flags: string[];

	beforeAll(async () => {
		home = await tempDir('inject-kbdint');
		env = await laptopEnv(home.path);
		const hostKey = generateEd25519();
		server = new ssh2.Server({hostKeys: [hostKey.private]}, (connection) => {
			connection.on('error', () => {});
			connection.on('authentication', (ctx) => {
				if (ctx.method === 'keyboard-interactive') {
					ctx.prompt([{prompt: hostile('HOSTILE-PROMPT'), echo: false}], () => {
						ctx.reject(['keyboard-interactive']);
					});
					return;
				}
				// A method name is the server's text too (ssh2's types only know the real ones).
				const methods = [
					'keyboard-interactive',
					`HOSTILE-METHOD\u001B]52;c;${clipboardPayload}\u0007`,
				];
				ctx.reject(methods as ssh2.AuthenticationType[]);
			});
		});
		const port = await freePort();
		await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
		const [type, blob] = hostKey.public.split(' ');
		flags = await relayFlags(home.path, port, `[127.0.0.1]:${port} ${type} ${blob}\n`);
	});

	afterAll(async () => {
		await new Promise<void>((resolve) => {
			if (!server) resolve();
			else server.close(() => resolve());
		});
		await home?.dispose();
	});

	it('--no-tui, status and doctor name the methods without their escapes', async () => {
		await expectNoTuiPlain(['connect', '--no-tui', ...flags], env, 'HOSTILE-METHOD');
		await expectPrintedPlain(['status', ...flags], env, 'HOSTILE-METHOD');
		await expectPrintedPlain(['doctor', ...flags], env, 'HOSTILE-METHOD');
	});

	it('the dashboard asks the prompt without its escapes', async () => {
		await expectDashboardClean(['connect', ...flags], env, home.path, 'HOSTILE-PROMPT');
	});
});

describe('a GPU host whose GPU name and SSH banner carry escapes (real OpenSSH)', () => {
	let chain: Chain;
	let bin: TempDir;

	beforeAll(async () => {
		bin = await tempDir('inject-gpu-bin');
		// The project's own fixture, in nvidia-smi's `--format=csv,nounits` shape.
		const capture = path.join(bin.path, 'hostile_query-gpu.csv');
		await writeFile(
			capture,
			'name, uuid, fan.speed [%], pstate, memory.used [MiB], memory.total [MiB], utilization.gpu [%], temperature.gpu, power.draw [W], driver_version\n' +
				`${hostile('HOSTILE-GPU')}, GPU-ef1b2c9b-38d8-2090-2bd1-f567a3eb42a6, 30, P0, 100, 16280, 5, 37, 28.16, 535.54.03\n`,
		);
		await installFakeNvidiaSmi(bin.path, {captures: [capture], state: 'idle'});
		chain = await startChain({lab: {hostEnvPath: bin.path}});
	});

	afterAll(async () => {
		await chain?.dispose();
		await bin?.dispose();
	});

	it('--no-tui, status (running and one-shot) and doctor print the name without its escapes', async () => {
		const {lab, jupyterPort} = chain;
		let proc: GpujupProcess | undefined;
		try {
			proc = spawnGpujup(connectArgs(lab, {jupyterPort}), lab.env());
			await proc.waitForLine(
				(line) => line.type === 'gpu' && JSON.stringify(line).includes('HOSTILE-GPU'),
				{timeoutMs: 60_000},
			);
			// `status` asks the running connect through its socket.
			await expectPrintedPlain(['status'], lab.env(), 'HOSTILE-GPU');
			await stopGpujup(proc);
			expectPlain(proc.output(), '--no-tui');
		} finally {
			await stopGpujup(proc);
		}

		const chainFlags = connectArgs(lab, {jupyterPort}).slice(2);
		await expectPrintedPlain(['status', ...chainFlags], lab.env(), 'HOSTILE-GPU');
		await expectPrintedPlain(['doctor', ...chainFlags], lab.env(), 'HOSTILE-GPU');
	});

	it('the dashboard shows the GPU without its escapes', async () => {
		const {lab, jupyterPort} = chain;
		const args = connectArgs(lab, {jupyterPort}).filter((arg) => arg !== '--no-tui');
		await expectDashboardClean(args, lab.env(), chain.scratch, 'HOSTILE-GPU');
	});
});

describe("doctor reading a hostile banner through the relay's port (real OpenSSH relay)", () => {
	let lab: Lab;
	let gpu: {port: number; close(): Promise<void>};

	beforeAll(async () => {
		lab = await startLab({reverse: 'none'});
		// What answers on the relay's localhost:<relay-port>, where the GPU host's sshd should be.
		gpu = await startDisconnectServer(lab.relayPort, 'HOSTILE-HOST');
	});

	afterAll(async () => {
		await gpu?.close();
		await lab?.dispose();
	});

	it('doctor, status and --no-tui print the banner and the disconnect without their escapes', async () => {
		const flags = connectArgs(lab, {jupyterPort: 1}).slice(2);
		await expectPrintedPlain(['doctor', ...flags], lab.env(), 'BANNER');
		await expectPrintedPlain(['doctor', ...flags], lab.env(), 'HOSTILE-HOST');
		await expectPrintedPlain(['status', ...flags], lab.env(), 'HOSTILE-HOST');
		await expectNoTuiPlain(connectArgs(lab, {jupyterPort: 1}), lab.env(), 'HOSTILE-HOST');
	});
});
