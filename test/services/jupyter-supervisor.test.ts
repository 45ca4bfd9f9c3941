import {execFileSync} from 'node:child_process';
import {
	appendFileSync,
	chmodSync,
	mkdirSync,
	readFileSync,
	statSync,
	symlinkSync,
	writeFileSync,
} from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import {afterEach, describe, expect, test} from 'vitest';
import {initialState, reduce, type AppAction, type AppState} from '../../source/core/app-state.js';
import {diffEvents} from '../../source/core/events.js';
import type {JupyterEnv} from '../../source/core/jupyter-command.js';
import type {JsonEvent} from '../../source/core/events.js';
import {createStore, type Store} from '../../source/core/store.js';
import {ControlConnection} from '../../source/services/control-connection.js';
import {startControlServer} from '../../source/services/control-socket.js';
import {jupyterPaths} from '../../source/services/jupyter-files.js';
import {JupyterSupervisor, terminateJupyter} from '../../source/services/jupyter-supervisor.js';
import {processAlive} from '../../source/services/proc-table.js';
import {makeVenv, runKernelCode} from '../helpers/jupyter.js';
import {freePort, tempDir, type TempDir} from '../helpers/ports.js';
import {waitFor} from '../helpers/wait-for.js';

type Harness = {
	readonly store: Store<AppState, AppAction>;
	/** Every JSON event the store produced, serialised. */
	readonly events: string[];
	readonly stateDir: string;
	readonly notebookDir: string;
	readonly baseEnv: NodeJS.ProcessEnv;
	readonly port: number;
	readonly root: TempDir;
	supervisor(options?: {env?: JupyterEnv; cmd?: string | null; port?: number}): JupyterSupervisor;
};

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
	for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function harness(): Promise<Harness> {
	const root = await tempDir('jsup');
	const port = await freePort();
	const stateDir = path.join(root.path, 'state', 'default');
	const notebookDir = path.join(root.path, 'notebooks');
	const home = path.join(root.path, 'home');
	mkdirSync(notebookDir, {recursive: true});
	mkdirSync(home, {recursive: true});
	const baseEnv: NodeJS.ProcessEnv = {
		...process.env,
		HOME: home,
		XDG_DATA_HOME: path.join(home, '.local/share'),
		XDG_RUNTIME_DIR: path.join(home, 'run'),
		JUPYTER_RUNTIME_DIR: path.join(home, 'runtime'),
		JUPYTER_CONFIG_DIR: path.join(home, '.jupyter'),
		IPYTHONDIR: path.join(home, '.ipython'),
	};
	delete baseEnv['JUPYTER_TOKEN'];
	const store = createStore(reduce, initialState({role: 'host', title: 't', hops: []}));
	const events: string[] = [];
	let previous: AppState | null = null;
	const record = () => {
		const next = store.getSnapshot();
		for (const event of diffEvents(previous, next)) events.push(JSON.stringify(event));
		previous = next;
	};

	record();
	const unsubscribe = store.subscribe(record);
	const supervisors: JupyterSupervisor[] = [];
	const pids = new Set<number>();
	const unwatch = store.subscribe(() => {
		const pid = store.getSnapshot().jupyter?.pid;
		if (pid) pids.add(pid);
	});
	cleanups.push(async () => {
		unsubscribe();
		unwatch();
		for (const supervisor of supervisors) await supervisor.dispose();
		await Promise.all([...pids].map(async (pid) => terminateJupyter(pid, 5000)));
		await root.dispose();
	});
	return {
		store,
		events,
		stateDir,
		notebookDir,
		baseEnv,
		port,
		root,
		supervisor(options = {}) {
			const supervisor = new JupyterSupervisor({
				dir: stateDir,
				port: options.port ?? port,
				cmd: options.cmd === undefined ? null : options.cmd,
				env: options.env ?? {kind: 'none'},
				notebookDir,
				dispatch: store.dispatch,
				baseEnv,
				pollMs: 250,
				tailMs: 100,
				backoff: {initialMs: 200, stepMs: 500, multiplier: 2, maxMs: 2000, jitter: 0},
			});
			supervisors.push(supervisor);
			return supervisor;
		},
	};
}

async function apiStatus(port: number, token: string | null): Promise<number> {
	return new Promise((resolve, reject) => {
		const headers: Record<string, string> = token ? {authorization: `token ${token}`} : {};
		const request = http.get(
			{host: '127.0.0.1', port, path: '/api/status', headers},
			(response) => {
				response.resume();
				resolve(response.statusCode ?? 0);
			},
		);
		request.on('error', reject);
	});
}

const jupyterOf = (h: Harness) => h.store.getSnapshot().jupyter;

async function waitRunning(h: Harness, predicate: (pid: number) => boolean = () => true) {
	return waitFor(
		() => {
			const j = jupyterOf(h);
			return j?.state === 'running' && j.pid !== null && predicate(j.pid) ? j : null;
		},
		{timeoutMs: 90_000, intervalMs: 100, message: 'Jupyter running'},
	);
}

const environOf = (pid: number): Map<string, string> =>
	new Map(
		readFileSync(`/proc/${pid}/environ`, 'utf8')
			.split('\0')
			.filter(Boolean)
			.map((entry) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)]),
	);

const mode = (file: string) => statSync(file).mode & 0o777;

describe('JupyterSupervisor with Debian Jupyter', () => {
	test('starts Jupyter on its port, keeps the token out of argv, log and events, restarts it after kill -9', async () => {
		const h = await harness();
		const supervisor = h.supervisor();
		await supervisor.start();
		const first = await waitRunning(h);
		const token = supervisor.token();
		expect(token).toMatch(/^[\da-f]{48}$/);
		expect(first).toMatchObject({
			url: `http://127.0.0.1:${h.port}/`,
			origin: 'started',
			restarts: 0,
			kernels: 0,
		});
		expect(first.lastActivity).toMatch(/^\d{4}-/);
		expect(await apiStatus(h.port, token)).toBe(200);
		expect(await apiStatus(h.port, null)).toBe(403);

		const pid = first.pid!;
		const files = jupyterPaths(h.stateDir);
		expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8')).not.toContain(token);
		expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8')).toContain(`--port=${h.port}`);
		expect(environOf(pid).get('JUPYTER_TOKEN')).toBe(token);
		expect(readFileSync(files.token, 'utf8').trim()).toBe(token);
		expect(mode(files.token)).toBe(0o600);
		expect(mode(files.log)).toBe(0o600);
		expect(mode(h.stateDir)).toBe(0o700);
		expect(Number(readFileSync(files.pid, 'utf8'))).toBe(pid);
		expect(JSON.parse(readFileSync(files.info, 'utf8'))).toMatchObject({pid, port: h.port});
		// Jupyter's own log lines reach the store (the "is running at" banner).
		await waitFor(() => h.store.getSnapshot().logs.some((l) => l.includes('is running at')), {
			message: 'banner in the log pane',
		});
		await apiStatus(h.port, token);
		const log = readFileSync(files.log, 'utf8');
		expect(log).toContain(`127.0.0.1:${h.port}`);
		expect(log).not.toContain(token);
		expect(h.store.getSnapshot().logs.join('\n')).not.toContain(token);
		expect(h.events.join('\n')).not.toContain(token);
		expect(JSON.stringify(h.store.getSnapshot())).not.toContain(token);

		process.kill(pid, 'SIGKILL');
		const second = await waitRunning(h, (p) => p !== pid);
		// The log says it died, before the new one's lines (issue 10 item 8).
		const logs = h.store.getSnapshot().logs;
		const died = logs.findIndex((l) =>
			l.includes(`Jupyter (pid ${pid}) died: SIGKILL; restarting`),
		);
		expect(died, logs.join('\n')).toBeGreaterThanOrEqual(0);
		expect(logs[died]).toMatch(/^\[gpujup\] \d{4}-\S+ Jupyter/);
		expect(logs.findIndex((l, i) => i > died && l.includes('starting Jupyter'))).toBeGreaterThan(
			died,
		);
		expect(second.restarts).toBe(1);
		expect(second.url).toBe(`http://127.0.0.1:${h.port}/`);
		expect(supervisor.token()).toBe(token);
		expect(await apiStatus(h.port, token)).toBe(200);
		expect(h.events.some((e) => e.includes('"state":"restarting"'))).toBe(true);
		expect(h.events.join('\n')).not.toContain(token);
	});

	test('Jupyter outlives the supervisor, the next one adopts it; restart makes a new pid; stop ends it', async () => {
		const h = await harness();
		const first = h.supervisor();
		await first.start();
		const {pid} = await waitRunning(h);
		const token = first.token();
		await first.dispose();
		// gpujup host is gone: Jupyter must not be.
		expect(processAlive(pid!)).toBe(true);
		expect(await apiStatus(h.port, token)).toBe(200);

		const second = h.supervisor();
		await second.start();
		const adopted = await waitRunning(h);
		expect(adopted.pid).toBe(pid);
		expect(adopted.origin).toBe('adopted');
		expect(second.token()).toBe(token);

		await second.restart();
		const restarted = await waitRunning(h, (p) => p !== pid);
		expect(restarted.origin).toBe('started');
		expect(processAlive(pid!)).toBe(false);
		expect(await apiStatus(h.port, token)).toBe(200);

		await second.stop();
		expect(processAlive(restarted.pid!)).toBe(false);
		expect(jupyterOf(h)).toMatchObject({state: 'exited', pid: null, message: 'stopped'});
		await expect(apiStatus(h.port, token)).rejects.toThrow(/ECONNREFUSED/);
	});

	test('a 2 MiB line of \\r progress reaches subscribed laptops as its last state and cuts none off', async () => {
		const h = await harness();
		const supervisor = h.supervisor();
		await supervisor.start();
		await waitRunning(h);
		const server = await startControlServer({
			path: path.join(h.root.path, 'host.sock'),
			store: h.store,
			handlers: {token: () => null, restartJupyter: async () => {}, reconnect: () => {}},
		});
		cleanups.push(async () => server.dispose());
		/** A laptop's agent channel: the same client, subscribed to the host's events. */
		const subscribe = async () => {
			const connection = new ControlConnection(net.connect({path: server.path}));
			const laptop = {lines: [] as string[], closed: undefined as Error | null | undefined};
			connection.on('event', (event: JsonEvent) => {
				if (event.type === 'log') laptop.lines.push(event.line);
			});
			connection.on('close', (error) => {
				laptop.closed = error;
			});
			cleanups.push(async () => connection.close());
			await connection.request('subscribe');
			return laptop;
		};

		const first = await subscribe();
		// tqdm-style progress on one line, as a notebook extension or Jupyter's stderr writes it.
		let progress = '';
		for (let step = 0; progress.length < 2 * 1024 * 1024; step++)
			progress += `\rdownloading: ${String(step).padStart(6)} ${'#'.repeat(step % 50).padEnd(50)}|`;
		const last = progress.slice(progress.lastIndexOf('\r') + 1);
		appendFileSync(jupyterPaths(h.stateDir).log, `${progress}\nafter the progress\n`);
		await waitFor(() => first.closed !== undefined || first.lines.includes('after the progress'), {
			message: 'the line after the progress',
		});
		expect(first.closed).toBeUndefined();
		expect(first.lines.filter((line) => line.startsWith('downloading:'))).toEqual([last]);

		// A laptop that connects later gets the recent lines replayed: the same, still connected.
		const second = await subscribe();
		await waitFor(
			() => second.closed !== undefined || second.lines.includes('after the progress'),
			{
				message: 'the replayed lines',
			},
		);
		expect(second.closed).toBeUndefined();
		expect(second.lines).toContain(last);
		expect(first.closed).toBeUndefined();
	});

	test('a Jupyter that exits says so in the log, with its exit code', async () => {
		const h = await harness();
		const supervisor = h.supervisor({cmd: 'false'});
		await supervisor.start();
		const line = await waitFor(
			() =>
				h.store
					.getSnapshot()
					.logs.find((l) => /Jupyter \(pid \d+\) exited with code 1; restarting/.test(l)),
			{timeoutMs: 60_000, message: 'the exited line'},
		);
		expect(line).toMatch(/^\[gpujup\] \d{4}-/);
	});

	test('a busy port is reported with the process holding it and the flag to change', async () => {
		const h = await harness();
		const blocker = net.createServer();
		await new Promise<void>((resolve) => blocker.listen(h.port, '127.0.0.1', resolve));
		cleanups.push(async () => new Promise((resolve) => blocker.close(() => resolve())));
		const supervisor = h.supervisor();
		await supervisor.start();
		const j = await waitFor(() => (jupyterOf(h)?.state === 'exited' ? jupyterOf(h) : null), {
			message: 'exited',
		});
		expect(j.message).toContain(
			`port ${h.port} on 127.0.0.1 is already in use by pid ${process.pid}`,
		);
		expect(j.message).toContain('--jupyter-port');
		expect(j.pid).toBeNull();
	});

	test("venv: Jupyter runs with the venv activated, and its kernels on the venv's python", async () => {
		const h = await harness();
		const venv = path.join(h.root.path, 'my venv');
		// Debian's python3 over Debian's Jupyter: the venv has no jupyter of its own, so the server
		// is /usr/bin/jupyter, whose python3 kernelspec names /usr/bin/python3.
		const sitePackages = makeVenv(venv);
		writeFileSync(path.join(sitePackages, 'venvonly.py'), 'WHERE = "only in the venv"\n');
		// The user's own kernelspecs stay, on the JUPYTER_PATH they set.
		const userData = path.join(h.root.path, 'user-data');
		mkdirSync(path.join(userData, 'kernels', 'mine'), {recursive: true});
		writeFileSync(
			path.join(userData, 'kernels', 'mine', 'kernel.json'),
			JSON.stringify({
				argv: ['/usr/bin/python3', '-m', 'ipykernel_launcher', '-f', '{connection_file}'],
				display_name: 'Mine',
				language: 'python',
			}),
		);
		h.baseEnv['JUPYTER_PATH'] = userData;
		const supervisor = h.supervisor({env: {kind: 'venv', path: venv}});
		await supervisor.start();
		const {pid} = await waitRunning(h);
		const environ = environOf(pid!);
		expect(environ.get('VIRTUAL_ENV')).toBe(venv);
		expect(environ.get('PATH')?.split(':')[0]).toBe(path.join(venv, 'bin'));
		expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8')).not.toContain(supervisor.token());
		const jupyterPath = environ.get('JUPYTER_PATH')!.split(':');
		expect(jupyterPath).toHaveLength(2);
		expect(jupyterPath[0]!.startsWith(`${h.stateDir}/`)).toBe(true);
		expect(jupyterPath[1]).toBe(userData);
		expect(mode(jupyterPath[0]!)).toBe(0o700);

		const url = `http://127.0.0.1:${h.port}/`;
		const printed = await runKernelCode(
			url,
			supervisor.token(),
			'import sys, venvonly; print(venvonly.WHERE); print(sys.executable)',
		);
		expect(printed).toBe(`only in the venv\n${path.join(venv, 'bin', 'python')}\n`);
		const specs = (await (
			await fetch(`${url}api/kernelspecs`, {
				headers: {authorization: `token ${supervisor.token()}`},
			})
		).json()) as {default: string; kernelspecs: Record<string, {spec: {display_name: string}}>};
		expect(specs.default).toBe('python3');
		expect(specs.kernelspecs['python3']?.spec.display_name).toBe(`Python 3 (venv:${venv})`);
		expect(specs.kernelspecs['mine']?.spec.display_name).toBe('Mine');
	});

	test('venv without ipykernel: Jupyter is not started, and the message names the fix', async () => {
		const h = await harness();
		const venv = path.join(h.root.path, 'bare venv');
		execFileSync('/usr/bin/python3', ['-m', 'venv', '--without-pip', venv]);
		const supervisor = h.supervisor({env: {kind: 'venv', path: venv}});
		await supervisor.start();
		const j = await waitFor(
			() => {
				const now = jupyterOf(h);
				return now?.state === 'exited' || now?.state === 'restarting' ? now : null;
			},
			{timeoutMs: 60_000, message: 'the refusal'},
		);
		expect(j.state).toBe('exited');
		expect(j.message).toContain(`venv:${venv} has no ipykernel`);
		expect(j.message).toContain('pip install ipykernel');
		expect(j.restarts).toBe(0);
		expect(j.pid).toBeNull();
		// Not retried as a crash: the same refusal stands until the user fixes the env.
		expect(supervisor.status).toMatchObject({state: 'exited', restarts: 0});
		expect(h.store.getSnapshot().logs.join('\n')).toContain('pip install ipykernel');
	});

	test('conda: activates through conda.sh of `conda info --base` (stand-in conda)', async () => {
		const h = await harness();
		// The SPEC's stand-in: a `conda` that only checks the activation command line.
		const base = path.join(h.root.path, 'conda base');
		const bin = path.join(h.root.path, 'bin');
		const record = path.join(h.root.path, 'conda-calls');
		mkdirSync(path.join(base, 'etc/profile.d'), {recursive: true});
		mkdirSync(bin, {recursive: true});
		writeFileSync(
			path.join(bin, 'conda'),
			`#!/bin/sh\necho "exe $*" >> '${record}'\n[ "$*" = "info --base" ] && echo '${base}' && exit 0\nexit 2\n`,
		);
		chmodSync(path.join(bin, 'conda'), 0o755);
		// The env's python, as conda puts it in the env's prefix (Debian's, which has ipykernel).
		const prefix = path.join(base, 'envs', 'tf 2');
		mkdirSync(path.join(prefix, 'bin'), {recursive: true});
		symlinkSync('/usr/bin/python3', path.join(prefix, 'bin', 'python'));
		writeFileSync(
			path.join(base, 'etc/profile.d/conda.sh'),
			`conda() {\n echo "fn $*" >> '${record}'\n [ "$1" = activate ] || return 2\n export CONDA_DEFAULT_ENV="$2" CONDA_PREFIX='${base}/envs/'"$2"\n}\n`,
		);
		h.baseEnv['PATH'] = `${bin}:${h.baseEnv['PATH'] ?? ''}`;
		const supervisor = h.supervisor({env: {kind: 'conda', name: 'tf 2'}});
		await supervisor.start();
		const {pid} = await waitRunning(h);
		expect(readFileSync(record, 'utf8').split('\n').filter(Boolean)).toEqual([
			'exe info --base',
			'fn activate tf 2',
		]);
		expect(environOf(pid!).get('CONDA_DEFAULT_ENV')).toBe('tf 2');
		// The env's python runs the kernels.
		const printed = await runKernelCode(
			`http://127.0.0.1:${h.port}/`,
			supervisor.token(),
			'import sys; print(sys.executable)',
		);
		expect(printed).toBe(`${path.join(prefix, 'bin', 'python')}\n`);
	});
});
