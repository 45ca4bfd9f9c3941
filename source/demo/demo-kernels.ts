/**
 * The demo's notebooks: the simulated machine's kernels as they are now (interrupted, restarted or
 * shut down from the dashboard), told the way the real sources tell them: Jupyter's
 * `/api/kernels` and `/api/sessions` (served by the stand-in), and the process table the kernel
 * monitor's exec prints (answered by the demo GPU host). The client's own kernel monitor
 * (services/kernel-monitor.ts, core/kernels.ts) reads both, exactly as on a real GPU host.
 */
import {kernelFile, type SimulatedMachine} from './simulated-gpus.js';

type KernelNow = {
	readonly id: string;
	readonly notebook: string;
	state: 'busy' | 'idle';
	/** Epoch ms of its `last_activity`. */
	lastActivity: number;
	pid: number;
	childPids: readonly number[];
	/** Epoch ms its process started (CPU ticks count from here). */
	processStart: number;
};

/** Clock ticks per second of the simulated `/proc` (`getconf CLK_TCK`). */
const ticksPerSecond = 100;
const pageBytes = 4096;

export type DemoKernels = {
	/** `GET /api/kernels`'s body. */
	kernelsJson(): unknown[];
	/** `GET /api/sessions`'s body. */
	sessionsJson(): unknown[];
	/**
	 * `POST …/interrupt`, `POST …/restart`, `DELETE /api/kernels/<id>`: false for an unknown kernel.
	 * Interrupting ends the running cell; a restart gives a new process (without the old one's GPU
	 * memory); a shutdown ends the kernel and its processes.
	 */
	act(id: string, action: 'interrupt' | 'restart' | 'shutdown'): boolean;
	/** What `procDumpCommand` prints on the simulated machine now. */
	procDump(): string;
	/** The machine without the processes that ended (for nvidia-smi and ps). */
	live(machine: SimulatedMachine): SimulatedMachine;
};

/** The machine's kernels, from `startedAt` (epoch ms: the demo's start). */
export function createDemoKernels(machine: SimulatedMachine, startedAt: number): DemoKernels {
	const kernels: KernelNow[] = machine.kernels.map((k) => ({
		id: k.id,
		notebook: k.notebook,
		state: k.state,
		lastActivity: startedAt - k.sinceBeforeStartMs,
		pid: k.pid,
		childPids: k.childPids,
		processStart: startedAt - k.sinceBeforeStartMs - 5 * 60_000,
	}));
	const gone = new Set<number>();
	let nextPid = machine.jupyterPid + 5000;
	const iso = (ms: number) => new Date(ms).toISOString();

	const statLine = (
		pid: number,
		comm: string,
		ppid: number,
		cpuShare: number,
		rssMiB: number,
		start: number,
	) => {
		const ticks = Math.round(((Date.now() - start) / 1000) * ticksPerSecond * cpuShare);
		const utime = Math.round(ticks * 0.9);
		const stime = ticks - utime;
		const rssPages = Math.round((rssMiB * 1024 * 1024) / pageBytes);
		// pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
		// cutime cstime priority nice threads itrealvalue starttime vsize rss …
		return `${pid} (${comm}) S ${ppid} ${ppid} ${ppid} 0 -1 4194560 1000 0 0 0 ${utime} ${stime} 0 0 20 0 8 0 100 ${rssPages * pageBytes * 4} ${rssPages} 18446744073709551615`;
	};

	return {
		kernelsJson: () =>
			kernels.map((k) => ({
				id: k.id,
				name: 'python3',
				last_activity: iso(k.lastActivity),
				execution_state: k.state,
				connections: k.state === 'busy' ? 1 : 0,
			})),
		sessionsJson: () =>
			kernels.map((k) => ({
				id: `session-${k.id.slice(0, 8)}`,
				path: k.notebook,
				name: k.notebook.split('/').pop(),
				type: 'notebook',
				kernel: {id: k.id, name: 'python3'},
				notebook: {path: k.notebook, name: k.notebook.split('/').pop()},
			})),
		act(id, action) {
			const index = kernels.findIndex((k) => k.id === id);
			const kernel = kernels[index];
			if (!kernel) return false;
			const now = Date.now();
			if (action === 'interrupt') {
				kernel.state = 'idle';
				kernel.lastActivity = now;
				return true;
			}
			for (const pid of [kernel.pid, ...kernel.childPids]) gone.add(pid);
			if (action === 'shutdown') {
				kernels.splice(index, 1);
				return true;
			}
			kernel.pid = nextPid++;
			kernel.childPids = [];
			kernel.state = 'idle';
			kernel.lastActivity = now;
			kernel.processStart = now;
			return true;
		},
		procDump() {
			const lines = [String(ticksPerSecond), String(pageBytes), '---'];
			const files: string[] = [];
			const start = startedAt - 4 * 60 * 60_000;
			lines.push(statLine(machine.jupyterPid, 'jupyter-noteboo', 1, 0.01, 142, start));
			for (const p of machine.processes) {
				if (gone.has(p.pid) || kernels.some((k) => k.pid === p.pid)) continue;
				lines.push(statLine(p.pid, 'python', 1, 0.98, 6210, startedAt - 30 * 60_000));
			}
			for (const k of kernels) {
				const busy = k.state === 'busy';
				lines.push(
					statLine(
						k.pid,
						'python3',
						machine.jupyterPid,
						busy ? 1.1 : 0,
						busy ? 9530 : 1870,
						k.processStart,
					),
				);
				files.push(`/proc/${k.pid}/cmdline:${kernelFile(k.id).split('/').pop()!}`);
				for (const child of k.childPids)
					lines.push(
						statLine(child, 'pt_data_worker', k.pid, busy ? 0.62 : 0, 2140, k.processStart),
					);
			}
			return `${lines.join('\n')}\n---\n${files.join('\n')}\n`;
		},
		live: (m) =>
			gone.size === 0 ? m : {...m, processes: m.processes.filter((p) => !gone.has(p.pid))},
	};
}
