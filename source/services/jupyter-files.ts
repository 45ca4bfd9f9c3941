/**
 * The files of one profile's Jupyter under its state directory: the token, and the pid and runtime
 * records that let the next gpujup recognise (adopt or stop) the Jupyter an earlier one started.
 */
import {randomBytes} from 'node:crypto';
import {chmodSync, readFileSync, unlinkSync} from 'node:fs';
import path from 'node:path';
import {writePrivateFile} from './private-file.js';
import {processAlive, procStat} from './proc-table.js';

/** What `jupyter.json` holds: enough to recognise our Jupyter after gpujup restarts. */
export type RuntimeInfo = {
	readonly pid: number;
	readonly port: number;
	readonly startedAt: number;
	/** `/proc/<pid>/stat` start time, which tells our process from a later one with a reused pid. */
	readonly startTicks: number | null;
	readonly cmd: string;
	readonly env: string;
	readonly notebookDir: string;
	readonly log: string;
};

/** Files of one profile's Jupyter under its state directory. */
export function jupyterPaths(dir: string) {
	return {
		pid: path.join(dir, 'jupyter.pid'),
		info: path.join(dir, 'jupyter.json'),
		token: path.join(dir, 'token'),
		log: path.join(dir, 'jupyter.log'),
		/** gpujup's own entry first on Jupyter's JUPYTER_PATH: the env's `python3` kernelspec. */
		data: path.join(dir, 'jupyter-data'),
	} as const;
}

/** The profile's token: read from its 0600 file, or made (24 random bytes, hex) and saved. */
export function loadOrCreateToken(file: string): string {
	try {
		const text = readFileSync(file, 'utf8').trim();
		if (/^[\da-f]{32,}$/.test(text)) {
			chmodSync(file, 0o600);
			return text;
		}
	} catch {
		// No token yet.
	}

	const token = randomBytes(24).toString('hex');
	writePrivateFile(file, `${token}\n`);
	return token;
}

/** `jupyter.json`, or null when missing or not ours. */
export function readRuntimeInfo(file: string): RuntimeInfo | null {
	try {
		const parsed = JSON.parse(readFileSync(file, 'utf8')) as Partial<RuntimeInfo>;
		if (typeof parsed.pid !== 'number' || typeof parsed.port !== 'number') return null;
		return {
			pid: parsed.pid,
			port: parsed.port,
			startedAt: typeof parsed.startedAt === 'number' ? parsed.startedAt : Date.now(),
			startTicks: typeof parsed.startTicks === 'number' ? parsed.startTicks : null,
			cmd: typeof parsed.cmd === 'string' ? parsed.cmd : '',
			env: typeof parsed.env === 'string' ? parsed.env : '',
			notebookDir: typeof parsed.notebookDir === 'string' ? parsed.notebookDir : '',
			log: typeof parsed.log === 'string' ? parsed.log : '',
		};
	} catch {
		return null;
	}
}

/** `jupyter.pid`, or null when missing or not a pid. */
export function readPidFile(file: string): number | null {
	try {
		const pid = Number.parseInt(readFileSync(file, 'utf8').trim(), 10);
		return Number.isInteger(pid) && pid > 1 ? pid : null;
	} catch {
		return null;
	}
}

/**
 * The Jupyter this profile's pid file names, when it is still that process (same start time).
 * Used by `--stop-jupyter` without a running host.
 */
export function recordedJupyter(dir: string): {pid: number; port: number} | null {
	const files = jupyterPaths(dir);
	const pid = readPidFile(files.pid);
	const info = readRuntimeInfo(files.info);
	if (pid === null || !info || info.pid !== pid || !processAlive(pid)) return null;
	if (info.startTicks !== null && procStat(pid)?.startTicks !== info.startTicks) return null;
	return {pid, port: info.port};
}

/** Forget the recorded Jupyter (after it was stopped). */
export function clearRecordedJupyter(dir: string): void {
	const files = jupyterPaths(dir);
	for (const file of [files.pid, files.info]) {
		try {
			unlinkSync(file);
		} catch {
			// Not there.
		}
	}
}
