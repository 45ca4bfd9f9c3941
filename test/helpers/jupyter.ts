/**
 * Debian's real Jupyter (`/usr/bin/jupyter notebook`, notebook 6 + ipykernel on /usr/bin/python3)
 * for tests, and a tiny Jupyter client that executes code in a kernel over REST + WebSocket.
 */
import {execFileSync, spawn, type ChildProcess} from 'node:child_process';
import {randomUUID} from 'node:crypto';
import {readdirSync} from 'node:fs';
import {mkdir, open, readFile, writeFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import {tempDir, type TempDir} from './ports.js';
import {stopChild} from './proc.js';
import {waitFor} from './wait-for.js';

export const JUPYTER = '/usr/bin/jupyter';

export type StartJupyterOptions = {
	readonly port: number;
	/** Passed as JUPYTER_TOKEN in the environment, never in argv. */
	readonly token: string;
	/** Notebook directory (and where the log file goes). */
	readonly dir: string;
	/**
	 * Base environment. When its HOME is not the real one (e.g. `lab.gpuEnv()`), Jupyter's runtime,
	 * config and data dirs follow that HOME (so `jupyter --runtime-dir` in an ssh session on the lab's
	 * GPU host finds the runtime file). Otherwise they go to a temp dir of their own.
	 */
	readonly env?: NodeJS.ProcessEnv;
	/** Extra argv after the lab's defaults. */
	readonly args?: readonly string[];
};

export type RunningJupyter = {
	readonly pid: number;
	/** `http://127.0.0.1:<port>/`, without the token. */
	readonly url: string;
	readonly logFile: string;
	/** The dir holding `nbserver-<pid>.json` (JUPYTER_RUNTIME_DIR or HOME's default). */
	readonly runtimeDir: string;
	/** SIGTERM the process group (kernels included), SIGKILL after 5 s; once, however often called. */
	dispose(): Promise<void>;
};

/** GET `api/status` on 127.0.0.1:`port` (a forward's, say) with the token; true on 200 (false on any failure: for polling). */
export async function jupyterAnswers(port: number, token: string): Promise<boolean> {
	const response = await fetch(`http://127.0.0.1:${port}/api/status`, {
		headers: {authorization: `token ${token}`},
		signal: AbortSignal.timeout(5000),
	}).catch(() => undefined);
	await response?.arrayBuffer().catch(() => undefined);
	return response?.status === 200;
}

/**
 * A venv at `dir`, made the way a user makes one over Debian's python3 (system site-packages, no
 * pip: it has no jupyter of its own, so the server stays /usr/bin/jupyter); its site-packages dir.
 */
export function makeVenv(dir: string): string {
	execFileSync('/usr/bin/python3', ['-m', 'venv', '--system-site-packages', '--without-pip', dir]);
	const lib = path.join(dir, 'lib');
	return path.join(lib, readdirSync(lib)[0]!, 'site-packages');
}

/** Start `jupyter notebook` and wait until `/api/status` answers 200 with the token. */
export async function startJupyter(options: StartJupyterOptions): Promise<RunningJupyter> {
	const env: NodeJS.ProcessEnv = {...(options.env ?? process.env)};
	delete env.PYTHONPATH;
	delete env.PYTHONHOME;
	delete env.VIRTUAL_ENV;
	delete env.JUPYTER_PATH;
	// /usr/bin first: root's python3 is a pyenv shim without ipykernel.
	env.PATH = ['/usr/bin', '/bin', env.PATH].filter(Boolean).join(':');
	env.JUPYTER_TOKEN = options.token;
	env.PYTHONUNBUFFERED = '1';

	let isolated: TempDir | undefined;
	const home = env.HOME ?? os.homedir();
	if (home === os.homedir() && !env.JUPYTER_RUNTIME_DIR) {
		isolated = await tempDir('jupyter');
		env.JUPYTER_RUNTIME_DIR = path.join(isolated.path, 'runtime');
		env.JUPYTER_CONFIG_DIR = path.join(isolated.path, 'config');
		env.JUPYTER_DATA_DIR = path.join(isolated.path, 'data');
		env.IPYTHONDIR = path.join(isolated.path, 'ipython');
	}
	const runtimeDir =
		env.JUPYTER_RUNTIME_DIR ??
		path.join(env.XDG_DATA_HOME ?? path.join(home, '.local', 'share'), 'jupyter', 'runtime');

	const logFile = path.join(options.dir, `jupyter-${options.port}.log`);
	const log = await open(logFile, 'a', 0o600);
	let child: ChildProcess;
	try {
		child = spawn(
			JUPYTER,
			[
				'notebook',
				'--no-browser',
				'--ip=127.0.0.1',
				`--port=${options.port}`,
				'--port-retries=0',
				'--allow-root',
				`--notebook-dir=${options.dir}`,
				...(options.args ?? []),
			],
			// Own process group: dispose() takes the kernels down with the server.
			{cwd: options.dir, env, stdio: ['ignore', log.fd, log.fd], detached: true},
		);
	} finally {
		await log.close();
	}
	child.on('error', () => {});
	const url = `http://127.0.0.1:${options.port}/`;
	// Once: a test may stop its Jupyter before the fixture's own clean-up does.
	let disposed: Promise<void> | undefined;
	const dispose = async () => {
		disposed ??= (async () => {
			await stopChild(child, {graceMs: 5000, group: true});
			await isolated?.dispose();
		})();
		return disposed;
	};
	try {
		await waitFor(
			async () => {
				if (child.exitCode !== null || child.signalCode !== null) {
					const text = await readFile(logFile, 'utf8').catch(() => '');
					throw Object.assign(
						new Error(`jupyter exited (${child.exitCode}): ${text.slice(-2000)}`),
					);
				}
				const response = await fetch(`${url}api/status`, {
					headers: {authorization: `token ${options.token}`},
					signal: AbortSignal.timeout(2000),
				});
				return response.status === 200;
			},
			{timeoutMs: 60_000, intervalMs: 200, message: `jupyter on ${url}`},
		);
	} catch (error: unknown) {
		await dispose();
		throw error;
	}
	return {pid: child.pid!, url, logFile, runtimeDir, dispose};
}

type JupyterMessage = {
	header: {msg_id: string; msg_type: string};
	parent_header: {msg_id?: string};
	content: Record<string, unknown>;
	channel?: string;
};

/** A Jupyter messaging protocol 5.3 `execute_request` for the kernel's shell channel. */
export function executeRequest(code: string, session: string, msgId: string, username: string) {
	return {
		header: {
			msg_id: msgId,
			username,
			session,
			msg_type: 'execute_request',
			version: '5.3',
			date: new Date().toISOString(),
		},
		parent_header: {},
		metadata: {},
		content: {
			code,
			silent: false,
			store_history: false,
			user_expressions: {},
			allow_stdin: false,
			stop_on_error: true,
		},
		channel: 'shell',
		buffers: [],
	};
}

/**
 * Start a python3 kernel on the server at `baseUrl` (maybe a forwarded port), run `code`, return
 * what it printed on stdout, and delete the kernel. Rejects with the traceback on an error.
 */
export async function runKernelCode(
	baseUrl: string,
	token: string,
	code: string,
	timeoutMs = 60_000,
): Promise<string> {
	const base = new URL(baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`);
	const headers = {authorization: `token ${token}`, 'content-type': 'application/json'};
	const created = await fetch(new URL('api/kernels', base), {
		method: 'POST',
		headers,
		body: JSON.stringify({name: 'python3'}),
		signal: AbortSignal.timeout(timeoutMs),
	});
	if (!created.ok) throw new Error(`POST api/kernels: ${created.status} ${await created.text()}`);
	const {id} = (await created.json()) as {id: string};
	try {
		return await executeInKernel(baseUrl, token, id, code, timeoutMs);
	} finally {
		await fetch(new URL(`api/kernels/${id}`, base), {
			method: 'DELETE',
			headers,
			signal: AbortSignal.timeout(10_000),
		}).catch(() => {});
	}
}

/**
 * Run `code` in the existing kernel `kernelId` over its WebSocket; resolves with what it printed
 * on stdout once it is idle again, rejects with `ename: evalue` and the traceback on an error.
 */
export async function executeInKernel(
	baseUrl: string,
	token: string,
	kernelId: string,
	code: string,
	timeoutMs = 60_000,
): Promise<string> {
	const base = new URL(baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`);
	const wsUrl = new URL(`api/kernels/${kernelId}/channels`, base);
	wsUrl.protocol = base.protocol === 'https:' ? 'wss:' : 'ws:';
	const session = randomUUID();
	wsUrl.searchParams.set('session_id', session);
	return new Promise<string>((resolve, reject) => {
		const ws = new WebSocket(wsUrl, {headers: {authorization: `token ${token}`}});
		const msgId = randomUUID();
		let stdout = '';
		let replied = false;
		let idle = false;
		const timer = setTimeout(
			() => finish(new Error(`kernel did not finish in ${timeoutMs} ms`)),
			timeoutMs,
		);
		const finish = (error?: Error) => {
			clearTimeout(timer);
			ws.removeAllListeners();
			ws.on('error', () => {});
			ws.terminate();
			if (error) reject(error);
			else resolve(stdout);
		};
		ws.on('error', (error) => finish(error));
		ws.on('close', () => finish(new Error('kernel websocket closed before the reply')));
		ws.on('open', () => {
			ws.send(JSON.stringify(executeRequest(code, session, msgId, 'gpujup-test')));
		});
		ws.on('message', (data, isBinary) => {
			if (isBinary) return;
			const message = JSON.parse(String(data)) as JupyterMessage;
			if (message.parent_header.msg_id !== msgId) return;
			const type = message.header.msg_type;
			if (type === 'stream' && message.content.name === 'stdout') {
				stdout += String(message.content.text);
			} else if (type === 'error') {
				const traceback = (message.content.traceback as string[] | undefined) ?? [];
				finish(
					new Error(
						`${String(message.content.ename)}: ${String(message.content.evalue)}\n${traceback.join('\n')}`,
					),
				);
				return;
			} else if (type === 'execute_reply') {
				replied = true;
			} else if (type === 'status' && message.content.execution_state === 'idle') {
				idle = true;
			}
			if (replied && idle) finish();
		});
	});
}

/** One JSON request to Jupyter's REST API at `baseUrl` (`http://127.0.0.1:PORT/`) with `token`. */
export type JupyterApi = (method: string, route: string, body?: unknown) => Promise<unknown>;

export function jupyterApi(baseUrl: string, token: string): JupyterApi {
	return async (method, route, body) => {
		const response = await fetch(`${baseUrl.replace(/\/?$/, '/')}${route}`, {
			method,
			headers: {authorization: `token ${token}`, 'content-type': 'application/json'},
			body: body === undefined ? undefined : JSON.stringify(body),
			signal: AbortSignal.timeout(60_000),
		});
		if (!response.ok) throw new Error(`${method} ${route}: ${response.status}`);
		return response.status === 204 ? null : response.json();
	};
}

/**
 * Write an empty notebook at `notebook` (relative to the server's notebook dir `dir`) and open a
 * session on it with a python3 kernel, as a browser tab does; resolves the kernel id.
 */
export async function openNotebook(
	api: JupyterApi,
	dir: string,
	notebook: string,
): Promise<string> {
	await mkdir(path.dirname(path.join(dir, notebook)), {recursive: true});
	await writeFile(
		path.join(dir, notebook),
		JSON.stringify({cells: [], metadata: {}, nbformat: 4, nbformat_minor: 5}),
	);
	const session = (await api('POST', 'api/sessions', {
		path: notebook,
		name: '',
		type: 'notebook',
		kernel: {name: 'python3'},
	})) as {kernel: {id: string}};
	return session.kernel.id;
}
