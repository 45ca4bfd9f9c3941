import {spawn, type ChildProcess} from 'node:child_process';
import {randomBytes} from 'node:crypto';
import {fileURLToPath} from 'node:url';
import {afterAll, beforeAll} from 'vitest';
import {
	installFakeNvidiaSmi,
	type FakeNvidiaSmi,
	type FakeNvidiaSmiConfig,
} from '../helpers/fake-nvidia-smi.js';
import {jupyterAnswers, startJupyter, type RunningJupyter} from '../helpers/jupyter.js';
import {startLab, type Lab, type LabOptions} from '../helpers/openssh-lab.js';
import {freePort, tempDir, type TempDir} from '../helpers/ports.js';
import {waitFor} from '../helpers/wait-for.js';

/** The built binary; `npm test` builds it before vitest runs. */
export const cli = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

export type JsonLine = Record<string, unknown> & {type: string; at: string};

/** A `gpujup … --no-tui` child whose JSON lines the test reads. */
export type GpujupProcess = {
	readonly child: ChildProcess;
	readonly lines: JsonLine[];
	/** Everything on stdout and stderr, for assertions that nothing leaked. */
	output(): string;
	stderr(): string;
	/** The first line (from line `from` on, default 0) that matches, waiting for it. */
	waitForLine(
		match: (line: JsonLine) => boolean,
		options?: {timeoutMs?: number; from?: number},
	): Promise<JsonLine>;
	exited(): Promise<number | null>;
	stop(): Promise<number | null>;
};

export function spawnGpujup(args: readonly string[], env: NodeJS.ProcessEnv): GpujupProcess {
	const child = spawn(process.execPath, [cli, ...args], {
		env,
		stdio: ['ignore', 'pipe', 'pipe'],
	});
	const lines: JsonLine[] = [];
	let stdout = '';
	let stderr = '';
	let pending = '';
	child.stdout!.setEncoding('utf8');
	child.stderr!.setEncoding('utf8');
	child.stdout!.on('data', (chunk: string) => {
		stdout += chunk;
		pending += chunk;
		let newline = pending.indexOf('\n');
		while (newline !== -1) {
			const line = pending.slice(0, newline);
			pending = pending.slice(newline + 1);
			if (line.trim()) lines.push(JSON.parse(line) as JsonLine);
			newline = pending.indexOf('\n');
		}
	});
	child.stderr!.on('data', (chunk: string) => {
		stderr += chunk;
	});
	const exit = new Promise<number | null>((resolve) => {
		child.on('exit', (code) => {
			resolve(code);
		});
	});
	return {
		child,
		lines,
		output: () => stdout + stderr,
		stderr: () => stderr,
		async waitForLine(match, options = {}) {
			const from = options.from ?? 0;
			return waitFor(() => lines.find((line, i) => i >= from && match(line)), {
				timeoutMs: options.timeoutMs ?? 60_000,
				message: `a matching JSON line; stderr: ${stderr}`,
			});
		},
		exited: async () => exit,
		async stop() {
			if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
			return exit;
		},
	};
}

/** Runs gpujup to completion. */
export async function runGpujup(
	args: readonly string[],
	env: NodeJS.ProcessEnv,
	timeoutMs = 90_000,
): Promise<{code: number | null; stdout: string; stderr: string}> {
	return new Promise((resolve, reject) => {
		const child = spawn(process.execPath, [cli, ...args], {env, stdio: ['ignore', 'pipe', 'pipe']});
		let stdout = '';
		let stderr = '';
		child.stdout.on('data', (chunk: Buffer) => {
			stdout += chunk.toString();
		});
		child.stderr.on('data', (chunk: Buffer) => {
			stderr += chunk.toString();
		});
		const timer = setTimeout(() => {
			child.kill('SIGKILL');
			reject(new Error(`gpujup ${args.join(' ')} did not finish in ${timeoutMs} ms: ${stderr}`));
		}, timeoutMs);
		child.on('exit', (code) => {
			clearTimeout(timer);
			resolve({code, stdout, stderr});
		});
	});
}

/** Where {@link labChainFlags} and {@link labHostArgs} part from the lab's defaults. */
export type LabFlagOptions = {
	/** The port `--relay` names (default the relay's own; a fault proxy's, say). */
	readonly relayPort?: number;
	/** Default the lab's known_hosts. */
	readonly knownHosts?: string;
	/** Seconds (default 1). */
	readonly keepalive?: number;
	/** Default 3. */
	readonly keepaliveCount?: number;
};

/**
 * The flags that point `gpujup connect`, `status`, `doctor` (and `host`) at a lab's relay and GPU
 * host, with short keepalives (tests wait with generous deadlines instead).
 */
export function labChainFlags(
	lab: Lab,
	jupyterPort: number,
	options: LabFlagOptions = {},
): string[] {
	return [
		'--relay',
		`root@127.0.0.1:${options.relayPort ?? lab.relay.port}`,
		'--relay-port',
		String(lab.relayPort),
		'--jupyter-port',
		String(jupyterPort),
		'--identity',
		lab.clientKey,
		'--known-hosts',
		options.knownHosts ?? lab.knownHosts,
		'--keepalive',
		String(options.keepalive ?? 1),
		'--keepalive-count',
		String(options.keepaliveCount ?? 3),
	];
}

/** `gpujup connect --no-tui` through a lab's chain ({@link labChainFlags}), on a free local port. */
export function spawnLabConnect(lab: Lab, jupyterPort: number): GpujupProcess {
	return spawnGpujup(
		['connect', '--no-tui', '--local-port', '0', ...labChainFlags(lab, jupyterPort)],
		lab.env(),
	);
}

/**
 * `gpujup host --no-tui` on a lab's GPU host, supervising `jupyterCmd` (default `jupyter notebook`;
 * null: gpujup's own default) in `notebookDir`.
 */
export function labHostArgs(
	lab: Lab,
	jupyterPort: number,
	notebookDir: string,
	options: LabFlagOptions & {readonly jupyterCmd?: string | null} = {},
): string[] {
	const jupyterCmd = options.jupyterCmd === undefined ? 'jupyter notebook' : options.jupyterCmd;
	return [
		'host',
		'--no-tui',
		...labChainFlags(lab, jupyterPort, options),
		'--ssh-port',
		String(lab.gpu.sshPort),
		...(jupyterCmd === null ? [] : ['--jupyter-cmd', jupyterCmd]),
		'--notebook-dir',
		notebookDir,
	];
}

/** What the e2e labs add to startLab's options. */
export type E2eLabOptions = LabOptions & {
	/**
	 * A replaying nvidia-smi on the GPU host's PATH, with this config, in a bin dir of its own (the
	 * lab's hostEnvPath: give one or the other).
	 */
	readonly nvidiaSmi?: FakeNvidiaSmiConfig;
};

/** Runs `cleanups` last first, and empties it. */
export async function undo(cleanups: Array<() => Promise<void>>): Promise<void> {
	while (cleanups.length > 0) await cleanups.pop()!();
}

/**
 * startLab with {@link E2eLabOptions}, and the fake nvidia-smi if one was asked for; what to undo
 * (the bin dir, then the lab) goes on `cleanups`.
 */
export async function startE2eLab(
	options: E2eLabOptions,
	cleanups: Array<() => Promise<void>>,
): Promise<{lab: Lab; nvidiaSmi: FakeNvidiaSmi | null}> {
	const {nvidiaSmi, ...labOptions} = options;
	if (nvidiaSmi === undefined) {
		const lab = await startLab(labOptions);
		cleanups.push(async () => lab.dispose());
		return {lab, nvidiaSmi: null};
	}
	const bin = await tempDir('fake-smi');
	cleanups.push(async () => bin.dispose());
	const fake = await installFakeNvidiaSmi(bin.path, nvidiaSmi);
	const lab = await startLab({...labOptions, hostEnvPath: bin.path});
	cleanups.push(async () => lab.dispose());
	return {lab, nvidiaSmi: fake};
}

/** A lab whose GPU host runs a Jupyter started by hand (the seed's way: no `gpujup host`). */
export type LabWithJupyter = {
	readonly lab: Lab;
	readonly jupyter: RunningJupyter;
	readonly jupyterPort: number;
	/** Jupyter's token (given as JUPYTER_TOKEN), for the tests that it reaches nowhere else. */
	readonly token: string;
	/** The notebook dir (Jupyter's log is there), removed with the rest: scratch files go here too. */
	readonly notebooks: string;
	dispose(): Promise<void>;
};

export async function startLabWithJupyter(options: E2eLabOptions = {}): Promise<LabWithJupyter> {
	const cleanups: Array<() => Promise<void>> = [];
	try {
		const {lab} = await startE2eLab(options, cleanups);
		const notebooks = await tempDir('gpujup-hand-nb-');
		cleanups.push(async () => notebooks.dispose());
		const jupyterPort = await freePort();
		const token = randomBytes(16).toString('hex');
		const jupyter = await startJupyter({
			port: jupyterPort,
			token,
			dir: notebooks.path,
			env: lab.gpuEnv(),
		});
		cleanups.push(async () => jupyter.dispose());
		return {
			lab,
			jupyter,
			jupyterPort,
			token,
			notebooks: notebooks.path,
			dispose: async () => undo(cleanups),
		};
	} catch (error) {
		await undo(cleanups);
		throw error;
	}
}

/** Registers a describe block's hooks for {@link startLabWithJupyter}; the getter gives it. */
export function labWithJupyterHooks(options: E2eLabOptions = {}): () => LabWithJupyter {
	let hand: LabWithJupyter | undefined;
	beforeAll(async () => {
		hand = await startLabWithJupyter(options);
	}, 240_000);
	afterAll(async () => {
		await hand?.dispose();
	});
	return () => hand!;
}

/**
 * A lab (no seed `ssh -R`: `gpujup host` makes the tunnel) with a temp dir and a free port for the
 * Jupyter that `gpujup host` supervises. Filled by the describe block's `beforeAll`.
 */
export type HostLab = {
	readonly lab: Lab;
	readonly dir: TempDir;
	readonly jupyterPort: number;
	/** Processes stopped, in order, after the block (before the supervised Jupyter is stopped). */
	readonly children: GpujupProcess[];
};

/**
 * Registers a describe block's hooks for a {@link HostLab}: before, the lab (`options`, with no seed
 * `ssh -R`), the dir (`dirPrefix`) and the port; after, the children stopped, `gpujup host
 * --stop-jupyter`, the dir and the lab gone.
 */
export function hostLabHooks(dirPrefix: string, options: E2eLabOptions = {}): HostLab {
	const fixture = {children: [] as GpujupProcess[]} as {
		lab: Lab;
		dir: TempDir;
		jupyterPort: number;
		children: GpujupProcess[];
	};
	const cleanups: Array<() => Promise<void>> = [];
	beforeAll(async () => {
		fixture.lab = (await startE2eLab({reverse: 'none', ...options}, cleanups)).lab;
		fixture.dir = await tempDir(dirPrefix);
		fixture.jupyterPort = await freePort();
	}, 240_000);
	afterAll(async () => {
		for (const child of fixture.children) await child.stop();
		if (fixture.lab) {
			await runGpujup(
				['host', '--stop-jupyter', '--jupyter-port', String(fixture.jupyterPort)],
				fixture.lab.gpuEnv(),
			);
		}
		await fixture.dir?.dispose();
		await undo(cleanups);
	});
	return fixture;
}

/** `hop`'s line saying it is ready again after a loss (reconnects ≥ 1), from line `from` on. */
export async function waitForReconnect(
	gpujup: GpujupProcess,
	hop: string,
	from: number,
): Promise<JsonLine> {
	return gpujup.waitForLine(
		(l) =>
			l.type === 'hop' && l.hop === hop && l.state === 'ready' && (l['reconnects'] as number) >= 1,
		{timeoutMs: 90_000, from},
	);
}

/**
 * After the link to the relay dropped (the lines from `from` on): the relay hop leaves ready, the
 * GPU host's hop is ready again with a reconnect, and Jupyter answers on `localPort` once more.
 */
export async function waitForHealed(
	gpujup: GpujupProcess,
	from: number,
	localPort: number,
	token: string,
): Promise<void> {
	await gpujup.waitForLine((l) => l.type === 'hop' && l.hop === 'relay' && l.state !== 'ready', {
		from,
	});
	await waitForReconnect(gpujup, 'host', from);
	await waitFor(async () => jupyterAnswers(localPort, token));
}

/** `gpujup url` in `env`, asked until it answers; the URL it prints. */
export async function waitForUrl(env: NodeJS.ProcessEnv): Promise<string> {
	return waitFor(async () => {
		const result = await runGpujup(['url'], env);
		return result.code === 0 ? result.stdout.trim() : undefined;
	});
}
