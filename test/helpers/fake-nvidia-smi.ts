/**
 * Puts the replaying fake nvidia-smi (fake-nvidia-smi.mjs, through the fake-nvidia-smi-bin/
 * wrapper) into a bin dir of a test's own, configured by a file beside it, so that it works both
 * for local runs (PATH of a child) and as the GPU host's nvidia-smi in an OpenSSH lab
 * (`startLab({hostEnvPath: binDir})`), where the test's environment does not reach the session.
 */
import {execFile} from 'node:child_process';
import {copyFile, readFile, writeFile} from 'node:fs/promises';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {promisify} from 'node:util';
import {shellQuote} from '../../source/core/shell.js';
import {samplePath} from './nvidia-smi-samples.js';

const execFileP = promisify(execFile);

const helpersDir = path.dirname(fileURLToPath(import.meta.url));
const wrapper = path.join(helpersDir, 'fake-nvidia-smi-bin', 'nvidia-smi');
const script = path.join(helpersDir, 'fake-nvidia-smi.mjs');

/** How the fake behaves (see fake-nvidia-smi.mjs). */
export type FakeNvidiaSmiConfig = {
	/** Sample names (see nvidia-smi-samples.ts) or absolute paths; several make a multi-GPU host. */
	readonly captures?: readonly string[];
	readonly mode?: 'replay' | 'hang' | `hang-after:${number}` | 'no-driver' | 'mismatch';
	readonly state?: 'idle' | 'load' | 'cycle';
	/** Fields the fake rejects as an older driver would. */
	readonly invalidFields?: readonly string[];
	/** Captured pid → live pid. */
	readonly pidMap?: Readonly<Record<number, number>>;
	/** A file that gets one line per invocation. */
	readonly logFile?: string;
	/** A file of `capturedPid=livePid` pairs, read again for every sample (written by the test). */
	readonly pidFile?: string;
};

/** An installed fake. */
export type FakeNvidiaSmi = {
	/** The wrapper's absolute path (the bin dir is its dirname). */
	readonly command: string;
	/** A string in the command line of every fake process of this install, for `pgrep -f`. */
	readonly marker: string;
	/** Rewrite the config (takes effect at the next invocation). */
	configure(config: FakeNvidiaSmiConfig): Promise<void>;
	/** Live processes of this install (the fake itself: the wrapper execs node). */
	pids(): Promise<number[]>;
	/**
	 * Live processes of this install that have set up their SIGTERM handler: a hung fake is only
	 * "hung" from then on (before, SIGTERM would still end it, which would hide a missing SIGKILL).
	 */
	hungPids(): Promise<number[]>;
};

/** Install the fake as `<binDir>/nvidia-smi`, with `config`. */
export async function installFakeNvidiaSmi(
	binDir: string,
	config: FakeNvidiaSmiConfig,
): Promise<FakeNvidiaSmi> {
	const command = path.join(binDir, 'nvidia-smi');
	const marker = `--fake-id=${binDir}`;
	await copyFile(wrapper, command);
	const configure = async (next: FakeNvidiaSmiConfig) => {
		const values: Record<string, string> = {
			FAKE_NVIDIA_SMI_NODE: process.execPath,
			FAKE_NVIDIA_SMI_SCRIPT: script,
			FAKE_NVIDIA_SMI_ID: binDir,
			FAKE_NVIDIA_SMI_CAPTURES: (next.captures ?? [])
				.map((name) => (path.isAbsolute(name) ? name : samplePath(name)))
				.join(','),
			FAKE_NVIDIA_SMI_MODE: next.mode ?? 'replay',
			FAKE_NVIDIA_SMI_STATE: next.state ?? 'cycle',
			FAKE_NVIDIA_SMI_INVALID: (next.invalidFields ?? []).join(','),
			FAKE_NVIDIA_SMI_PID_MAP: Object.entries(next.pidMap ?? {})
				.map(([from, to]) => `${from}=${to}`)
				.join(','),
			FAKE_NVIDIA_SMI_LOG: next.logFile ?? '',
			FAKE_NVIDIA_SMI_PID_FILE: next.pidFile ?? '',
		};
		const text = Object.entries(values)
			.map(([key, value]) => `${key}=${shellQuote(value)}; export ${key}\n`)
			.join('');
		await writeFile(path.join(binDir, 'fake-nvidia-smi.env'), text);
	};
	await configure(config);
	return {
		command,
		marker,
		configure,
		pids: async () => pgrep(marker),
		async hungPids() {
			const pids = await pgrep(marker);
			const catching = await Promise.all(pids.map(async (pid) => catchesSigterm(pid)));
			return pids.filter((_, i) => catching[i]);
		},
	};
}

/** Whether `pid` has a handler for SIGTERM (bit 15 of SigCgt in /proc/PID/status). */
async function catchesSigterm(pid: number): Promise<boolean> {
	const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
	const mask = /^SigCgt:\s*([0-9a-f]+)$/m.exec(status)?.[1];
	return mask !== undefined && (BigInt(`0x${mask}`) & (1n << 14n)) !== 0n;
}

/** Pids whose command line contains `pattern` (pgrep -f, run directly so no shell matches itself). */
export async function pgrep(pattern: string): Promise<number[]> {
	try {
		const {stdout} = await execFileP('pgrep', ['-f', '--', pattern]);
		return stdout
			.split('\n')
			.filter(Boolean)
			.map(Number)
			.filter((pid) => pid !== process.pid);
	} catch (error: unknown) {
		// pgrep exits 1 when nothing matches.
		if ((error as {code?: number}).code === 1) return [];
		throw error;
	}
}
