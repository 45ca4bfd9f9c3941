/**
 * Shared set-up for the fault and security suites: a real OpenSSH lab, Debian's Jupyter on the
 * GPU host's loopback, the built `gpujup` with `--no-tui`, and small readers of its JSON lines and
 * of /proc. Nothing here asserts; the tests do.
 */
import {randomBytes} from 'node:crypto';
import {readdir, readFile, readlink, writeFile} from 'node:fs/promises';
import path from 'node:path';
import {
	labChainFlags,
	labHostArgs,
	spawnGpujup,
	startE2eLab,
	undo,
	type E2eLabOptions,
	type GpujupProcess,
	type JsonLine,
} from '../e2e/gpujup-process.js';
import {jupyterAnswers, startJupyter, type RunningJupyter} from '../helpers/jupyter.js';
import type {FakeNvidiaSmi} from '../helpers/fake-nvidia-smi.js';
import type {Lab} from '../helpers/openssh-lab.js';
import {freePort, tempDir} from '../helpers/ports.js';
import {waitFor} from '../helpers/wait-for.js';

export {jupyterAnswers};

/** A lab with (optionally) a Jupyter started by the test on the GPU host's loopback. */
export type Chain = {
	readonly lab: Lab;
	readonly jupyterPort: number;
	readonly token: string;
	readonly jupyter: RunningJupyter | undefined;
	/** The fake nvidia-smi on the GPU host's PATH, where `lab.nvidiaSmi` asked for one. */
	readonly nvidiaSmi: FakeNvidiaSmi | null;
	/** Scratch dir of the test (notebooks, extra known_hosts files). */
	readonly scratch: string;
	dispose(): Promise<void>;
};

export async function startChain(
	options: {lab?: E2eLabOptions; jupyter?: boolean} = {},
): Promise<Chain> {
	const cleanups: Array<() => Promise<void>> = [];
	try {
		const {lab, nvidiaSmi} = await startE2eLab(options.lab ?? {}, cleanups);
		const scratch = await tempDir('faults');
		cleanups.push(async () => scratch.dispose());
		const token = randomBytes(16).toString('hex');
		const jupyterPort = await freePort();
		let jupyter: RunningJupyter | undefined;
		if (options.jupyter ?? true) {
			const started = await startJupyter({
				port: jupyterPort,
				token,
				dir: scratch.path,
				env: lab.gpuEnv(),
			});
			cleanups.push(async () => started.dispose());
			jupyter = started;
		}
		return {
			lab,
			jupyterPort,
			token,
			jupyter,
			nvidiaSmi,
			scratch: scratch.path,
			dispose: async () => undo(cleanups),
		};
	} catch (error: unknown) {
		await undo(cleanups);
		throw error;
	}
}

/**
 * A known_hosts for reaching the relay through a proxy on `port`: the relay's key under
 * `[127.0.0.1]:<port>`, the GPU host's where the lab put it.
 */
export async function proxyKnownHosts(lab: Lab, dir: string, port: number): Promise<string> {
	const file = path.join(dir, `known_hosts-${port}`);
	const original = await readFile(lab.knownHosts, 'utf8');
	await writeFile(file, `${original}[127.0.0.1]:${port} ${lab.relay.hostKeyPub}\n`, {mode: 0o600});
	return file;
}

export type ConnectArgsOptions = {
	/** The port `--relay` names (the relay's own, or a fault proxy's). */
	readonly relayPort?: number;
	readonly knownHosts?: string;
	readonly jupyterPort: number;
	readonly keepalive?: number;
	readonly keepaliveCount?: number;
	readonly localPort?: number;
	readonly extra?: readonly string[];
};

/** Flags for `gpujup connect --no-tui` against the lab: {@link labChainFlags}, keepalive 0.5 s. */
export function connectArgs(lab: Lab, options: ConnectArgsOptions): string[] {
	return [
		'connect',
		'--no-tui',
		...labChainFlags(lab, options.jupyterPort, {
			relayPort: options.relayPort,
			knownHosts: options.knownHosts,
			keepalive: options.keepalive ?? 0.5,
			keepaliveCount: options.keepaliveCount,
		}),
		'--local-port',
		String(options.localPort ?? 0),
		...(options.extra ?? []),
	];
}

/**
 * Flags for `gpujup host --no-tui` against the lab (the lab must not run its own `ssh -R`):
 * {@link labHostArgs} with gpujup's own Jupyter command, keepalive 0.5 s × 3.
 */
export function hostArgs(
	lab: Lab,
	options: {
		relayPort?: number;
		knownHosts?: string;
		jupyterPort: number;
		notebookDir: string;
		keepalive?: number;
		keepaliveCount?: number;
	},
): string[] {
	return labHostArgs(lab, options.jupyterPort, options.notebookDir, {
		relayPort: options.relayPort,
		knownHosts: options.knownHosts,
		keepalive: options.keepalive ?? 0.5,
		keepaliveCount: options.keepaliveCount,
		jupyterCmd: null,
	});
}

export type HopName = 'relay' | 'host' | 'reverse';

/** The last `hop` line for `hop` from index `from` on. */
export function lastHop(proc: GpujupProcess, hop: HopName, from = 0): JsonLine | undefined {
	for (let i = proc.lines.length - 1; i >= from; i--) {
		const line = proc.lines[i]!;
		if (line.type === 'hop' && line['hop'] === hop) return line;
	}
	return undefined;
}

/** Throw (so waitFor reports it) when the process has exited: a crash is never "not yet". */
export function assertAlive(proc: GpujupProcess): void {
	const {child} = proc;
	if (child.exitCode !== null || child.signalCode !== null) {
		throw new Error(
			`gpujup exited (${child.exitCode ?? child.signalCode}); stderr: ${proc.stderr().slice(-3000)}`,
		);
	}
}

/** Wait until every hop in `hops` is ready (by its latest line) and return those lines. */
export async function waitReady(
	proc: GpujupProcess,
	hops: readonly HopName[],
	options: {timeoutMs?: number; minReconnects?: Partial<Record<HopName, number>>} = {},
): Promise<JsonLine[]> {
	const wanted = options.minReconnects ?? {};
	let seen: unknown;
	try {
		return await waitFor(
			() => {
				assertAlive(proc);
				const lines = hops.map((hop) => lastHop(proc, hop));
				seen = lines;
				const ready = lines.every(
					(line, i) =>
						line?.['state'] === 'ready' &&
						Number(line['reconnects'] ?? 0) >= (wanted[hops[i]!] ?? 0),
				);
				return ready ? (lines as JsonLine[]) : undefined;
			},
			{timeoutMs: options.timeoutMs ?? 60_000, intervalMs: 25},
		);
	} catch (error: unknown) {
		throw new Error(
			`hops ${hops.join(', ')} not ready (reconnects >= ${JSON.stringify(wanted)}); last hop lines: ${JSON.stringify(seen)}; ${String(error)}`,
			{cause: error},
		);
	}
}

/** The `reconnects` of the latest line for `hop` (0 before any). */
export function reconnects(proc: GpujupProcess, hop: HopName): number {
	return Number(lastHop(proc, hop)?.['reconnects'] ?? 0);
}

/** Wait for a line after index `from` that matches; resolve with its index. */
export async function waitLineAfter(
	proc: GpujupProcess,
	from: number,
	match: (line: JsonLine) => boolean,
	timeoutMs = 60_000,
	message = 'a matching JSON line',
): Promise<number> {
	return waitFor(
		() => {
			for (let i = from; i < proc.lines.length; i++) if (match(proc.lines[i]!)) return i + 1;
			assertAlive(proc);
			return undefined;
		},
		{timeoutMs, intervalMs: 25, message: `${message}; stderr: ${proc.stderr().slice(-2000)}`},
	).then((index) => index - 1);
}

export const isHopState =
	(hop: HopName, state: string) =>
	(line: JsonLine): boolean =>
		line.type === 'hop' && line['hop'] === hop && line['state'] === state;

/** The local port of the listening forward to `127.0.0.1:<remotePort>`. */
export async function forwardPort(proc: GpujupProcess, remotePort: number): Promise<number> {
	return waitFor(
		() => {
			assertAlive(proc);
			const line = proc.lines.findLast(
				(l) =>
					l.type === 'forward' &&
					l['state'] === 'listening' &&
					l['remote'] === `127.0.0.1:${remotePort}`,
			);
			return line ? Number(String(line['local']).split(':').at(-1)) : undefined;
		},
		{timeoutMs: 60_000, message: `forward to 127.0.0.1:${remotePort} listening`},
	);
}

/** Spawn gpujup and give it back with a disposer that also waits for its exit. */
export function spawn(args: readonly string[], env: NodeJS.ProcessEnv): GpujupProcess {
	return spawnGpujup(args, env);
}

/** Stop a gpujup child: SIGTERM, SIGKILL after 10 s. */
export async function stopGpujup(proc: GpujupProcess | undefined): Promise<void> {
	if (!proc) return;
	const {child} = proc;
	if (child.exitCode !== null || child.signalCode !== null) return;
	const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
	await proc.stop();
	clearTimeout(timer);
}

/** VmRSS (KiB) and the number of open fds of a live process. */
export async function processFootprint(pid: number): Promise<{rssKiB: number; fds: number}> {
	const status = await readFile(`/proc/${pid}/status`, 'utf8');
	const rss = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
	const fds = await readdir(`/proc/${pid}/fd`);
	return {rssKiB: Number(rss?.[1] ?? Number.NaN), fds: fds.length};
}

/** Socket inodes among a process's open fds. */
export async function socketInodes(pid: number): Promise<Set<string>> {
	const inodes = new Set<string>();
	const fds = await readdir(`/proc/${pid}/fd`).catch(() => []);
	for (const fd of fds) {
		const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
		const match = /^socket:\[(\d+)\]$/.exec(target);
		if (match) inodes.add(match[1]!);
	}
	return inodes;
}

export type Listener = {readonly family: 4 | 6; readonly address: string; readonly port: number};

const hexToIpv4 = (hex: string): string =>
	[6, 4, 2, 0].map((i) => Number.parseInt(hex.slice(i, i + 2), 16)).join('.');

/** IPv6 in /proc/net/tcp6 is four little-endian 32-bit words. */
const hexToIpv6 = (hex: string): string => {
	const bytes: string[] = [];
	for (let word = 0; word < 4; word++) {
		const chunk = hex.slice(word * 8, word * 8 + 8);
		for (let i = 6; i >= 0; i -= 2) bytes.push(chunk.slice(i, i + 2));
	}
	const groups: string[] = [];
	for (let i = 0; i < 16; i += 2) groups.push(`${bytes[i]}${bytes[i + 1]}`.toLowerCase());
	return groups.join(':');
};

/** Every TCP socket in LISTEN state owned by `pid` (from /proc/net/tcp and tcp6). */
export async function tcpListeners(pid: number): Promise<Listener[]> {
	const inodes = await socketInodes(pid);
	const result: Listener[] = [];
	for (const [file, family] of [
		['/proc/net/tcp', 4],
		['/proc/net/tcp6', 6],
	] as const) {
		const text = await readFile(file, 'utf8').catch(() => '');
		for (const row of text.split('\n').slice(1)) {
			const cols = row.trim().split(/\s+/);
			if (cols.length < 10 || cols[3] !== '0A' || !inodes.has(cols[9]!)) continue;
			const [addressHex, portHex] = cols[1]!.split(':') as [string, string];
			result.push({
				family,
				address: family === 4 ? hexToIpv4(addressHex) : hexToIpv6(addressHex),
				port: Number.parseInt(portHex, 16),
			});
		}
	}
	return result;
}

/** True for 127.0.0.1 (and ::ffff:127.0.0.1 / ::1, the loopback in IPv6 form). */
export function isLoopback(listener: Listener): boolean {
	if (listener.family === 4) return listener.address === '127.0.0.1';
	return (
		listener.address === '0000:0000:0000:0000:0000:ffff:7f00:0001' ||
		listener.address === '0000:0000:0000:0000:0000:0000:0000:0001'
	);
}

/** A small seeded PRNG (mulberry32), so a failing random run can be replayed from its seed. */
export function seededRandom(seed: number): () => number {
	let a = seed >>> 0;
	return () => {
		a = (a + 0x6d2b79f5) >>> 0;
		let t = a;
		t = Math.imul(t ^ (t >>> 15), t | 1);
		t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
		return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
	};
}

export async function sleep(ms: number): Promise<void> {
	await new Promise((resolve) => setTimeout(resolve, ms));
}
