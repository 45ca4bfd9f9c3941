/**
 * This machine's processes and sockets from /proc (no `ps`, no `ss`, no shell): the kernel
 * monitor's process table, and the Jupyter supervisor's lookups (is a pid alive, its descendants,
 * who holds a port).
 */
import {execFile} from 'node:child_process';
import {readdirSync, readFileSync, readlinkSync} from 'node:fs';
import {readdir, readFile} from 'node:fs/promises';
import {promisify} from 'node:util';
import {maskTokens} from '../core/events.js';
import {
	parseProcStat,
	processTree,
	type ProcSample,
	type ProcSnapshot,
	type ProcStat,
} from '../core/kernels.js';
import {describeUid, parseTcpListeners, passwdName, type TcpListener} from '../core/proc-net.js';

const execFileP = promisify(execFile);

async function sysconf(name: string, fallback: number): Promise<number> {
	try {
		const {stdout} = await execFileP('getconf', [name], {timeout: 5000});
		const value = Number(stdout.trim());
		return Number.isInteger(value) && value > 0 ? value : fallback;
	} catch {
		return fallback;
	}
}

let units: Promise<{ticksPerSecond: number; pageKiB: number}> | undefined;

/** Clock ticks per second and the page size, asked once per process. */
async function procUnits(): Promise<{ticksPerSecond: number; pageKiB: number}> {
	units ??= Promise.all([sysconf('CLK_TCK', 100), sysconf('PAGESIZE', 4096)]).then(
		([ticksPerSecond, pageBytes]) => ({ticksPerSecond, pageKiB: pageBytes / 1024}),
	);
	return units;
}

async function readSample(pid: number, pageKiB: number): Promise<ProcSample | undefined> {
	try {
		const [text, cmdline] = await Promise.all([
			readFile(`/proc/${pid}/stat`, 'utf8'),
			readFile(`/proc/${pid}/cmdline`, 'utf8'),
		]);
		const stat = parseProcStat(text);
		if (!stat || stat.state === 'Z' || stat.state === 'X') return undefined;
		return {
			pid,
			ppid: stat.ppid,
			argv: cmdline.split('\0').filter((arg) => arg !== ''),
			cpuTicks: stat.cpuTicks,
			rssKiB: stat.rssPages * pageKiB,
		};
	} catch {
		// Gone between readdir and read, or not ours to read.
		return undefined;
	}
}

/** Every live process this user can see, with its argv, CPU ticks and RSS. */
export async function readProcTable(): Promise<ProcSnapshot> {
	const {ticksPerSecond, pageKiB} = await procUnits();
	const names = await readdir('/proc');
	const samples = await Promise.all(
		names
			.filter((name) => /^\d+$/.test(name))
			.map(async (name) => readSample(Number(name), pageKiB)),
	);
	return {
		at: Date.now(),
		ticksPerSecond,
		processes: samples.filter((sample): sample is ProcSample => sample !== undefined),
	};
}

/** `/proc/<pid>/stat`, or undefined when there is no such process. */
export function procStat(pid: number): ProcStat | undefined {
	try {
		return parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8')) ?? undefined;
	} catch {
		return undefined;
	}
}

/** True while `pid` exists and is not a zombie. */
export function processAlive(pid: number): boolean {
	const stat = procStat(pid);
	return stat !== undefined && stat.state !== 'Z' && stat.state !== 'X';
}

/** Every descendant of `root` (children, their children, …), from one look at /proc. */
export function descendants(root: number): number[] {
	const processes: ProcStat[] = [];
	for (const name of readdirSync('/proc')) {
		if (!/^\d+$/.test(name)) continue;
		const stat = procStat(Number(name));
		if (stat) processes.push(stat);
	}

	return processTree(root, processes).slice(1);
}

/** The listening sockets in this machine's /proc/net/tcp{,6}. */
function localListeners(): TcpListener[] {
	const listeners: TcpListener[] = [];
	for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
		try {
			listeners.push(...parseTcpListeners(readFileSync(table, 'utf8')));
		} catch {
			// No IPv6, say.
		}
	}

	return listeners;
}

/** `socket:[inode]` links among the open descriptors of `pid` (empty when not readable). */
function socketLinks(pid: number): Set<string> {
	const links = new Set<string>();
	let fds: string[];
	try {
		fds = readdirSync(`/proc/${pid}/fd`);
	} catch {
		return links;
	}

	for (const fd of fds) {
		try {
			const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
			if (target.startsWith('socket:[')) links.add(target);
		} catch {
			// Closed meanwhile.
		}
	}

	return links;
}

/** The user name of `uid` on this machine, from /etc/passwd. */
export function localUserName(uid: number): string | null {
	try {
		return passwdName(readFileSync('/etc/passwd', 'utf8'), uid);
	} catch {
		return null;
	}
}

/**
 * The process listening on TCP `port` (any address), found as `ss -ltnp` does: the socket's inode
 * in /proc/net/tcp{,6}, then the process holding a descriptor to it. Null when unknown (another
 * user's process is not readable); `uid` is the socket's owner, known even then.
 */
export function portHolder(
	port: number,
): {pid: number | null; command: string; uid: number} | null {
	const onPort = localListeners().filter((l) => l.port === port && l.inode !== '0');
	if (onPort.length === 0) return null;
	for (const name of readdirSync('/proc')) {
		if (!/^\d+$/.test(name)) continue;
		const links = socketLinks(Number(name));
		const held = onPort.find((l) => links.has(`socket:[${l.inode}]`));
		if (!held) continue;
		let command = '';
		try {
			command = readFileSync(`/proc/${name}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
		} catch {
			// Gone meanwhile.
		}

		if (command.length > 80) command = `${command.slice(0, 77)}…`;
		return {pid: Number(name), command: maskTokens(command), uid: held.uid};
	}

	return {pid: null, command: '', uid: onPort[0]!.uid};
}

/**
 * Whether the listener on 127.0.0.1:`port` belongs to Jupyter `pid` (the process or one of its
 * descendants holds every listening socket on the port): the token is sent to nothing else.
 */
export function jupyterOwnsPort(
	pid: number,
	port: number,
): {readonly kind: 'ours' | 'free'} | {readonly kind: 'foreign'; readonly message: string} {
	const onPort = localListeners().filter((l) => l.port === port);
	if (onPort.length === 0) return {kind: 'free'};
	const links = socketLinks(pid);
	const owned = () => onPort.every((l) => links.has(`socket:[${l.inode}]`));
	if (!owned())
		for (const child of descendants(pid)) for (const link of socketLinks(child)) links.add(link);
	if (owned()) return {kind: 'ours'};
	const holder = portHolder(port);
	const uid = holder?.uid ?? onPort[0]!.uid;
	const by = holder?.pid ? `, pid ${holder.pid}` : '';
	return {
		kind: 'foreign',
		message: `something else holds 127.0.0.1:${port}: its listener belongs to ${describeUid(uid, localUserName(uid))}${by}, not to Jupyter (pid ${pid}); the token is not sent to it — stop that server, or give Jupyter another port with --jupyter-port`,
	};
}
