import {readdir, readFile} from 'node:fs/promises';
import type {ChildProcess} from 'node:child_process';

type ProcInfo = {readonly pid: number; readonly ppid: number; readonly state: string};

const readStat = async (pid: number): Promise<ProcInfo | undefined> => {
	try {
		const text = await readFile(`/proc/${pid}/stat`, 'utf8');
		// The command name is in parentheses and may itself contain spaces or parentheses.
		const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
		return {pid, state: rest[0] ?? '?', ppid: Number(rest[1])};
	} catch {
		return undefined;
	}
};

/** True while `pid` exists and is not a zombie. */
export async function isAlive(pid: number): Promise<boolean> {
	const info = await readStat(pid);
	return info !== undefined && info.state !== 'Z' && info.state !== 'X';
}

/**
 * Every live descendant of `rootPid` (children, grandchildren, …), read from /proc. Take this
 * snapshot BEFORE killing the root: once it dies its children are re-parented and lost.
 */
export async function descendants(rootPid: number): Promise<number[]> {
	const entries = await readdir('/proc');
	const infos = await Promise.all(
		entries.filter((name) => /^\d+$/.test(name)).map(async (name) => readStat(Number(name))),
	);
	const children = new Map<number, number[]>();
	for (const info of infos) {
		if (!info || info.state === 'Z') continue;
		const list = children.get(info.ppid) ?? [];
		list.push(info.pid);
		children.set(info.ppid, list);
	}
	const result: number[] = [];
	const stack = [...(children.get(rootPid) ?? [])];
	while (stack.length > 0) {
		const pid = stack.pop()!;
		result.push(pid);
		stack.push(...(children.get(pid) ?? []));
	}
	return result;
}

/** Send `signal` to each pid, ignoring ones already gone. */
export function killAll(pids: readonly number[], signal: NodeJS.Signals = 'SIGKILL'): void {
	for (const pid of pids) {
		try {
			process.kill(pid, signal);
		} catch {
			// Already gone.
		}
	}
}

/** Wait until none of `pids` is alive (zombies count as gone), for at most `timeoutMs`. */
export async function waitGone(pids: readonly number[], timeoutMs = 10_000): Promise<boolean> {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		const alive = await Promise.all(pids.map(async (pid) => isAlive(pid)));
		if (!alive.includes(true)) return true;
		if (Date.now() > deadline) return false;
		await new Promise((resolve) => setTimeout(resolve, 25));
	}
}

/** Resolve when the child has exited (at once if it already has). */
export async function exited(child: ChildProcess): Promise<void> {
	if (child.exitCode !== null || child.signalCode !== null) return;
	await new Promise<void>((resolve) => child.once('exit', () => resolve()));
}

/**
 * Stop a child: SIGTERM, then SIGKILL after `graceMs`. With `group`, signal its whole process
 * group (the child must have been spawned with `detached: true`).
 */
export async function stopChild(
	child: ChildProcess,
	{graceMs = 5000, group = false} = {},
): Promise<void> {
	const pid = child.pid;
	if (pid === undefined) return;
	const send = (signal: NodeJS.Signals) => {
		try {
			if (group) process.kill(-pid, signal);
			else child.kill(signal);
		} catch {
			// Already gone.
		}
	};
	if (child.exitCode === null && child.signalCode === null) {
		send('SIGTERM');
		const timer = setTimeout(() => send('SIGKILL'), graceMs);
		await exited(child);
		clearTimeout(timer);
	}
	// The leader is gone; sweep anything left in its group.
	if (group) send('SIGKILL');
}
