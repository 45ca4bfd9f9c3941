/**
 * The demo's Jupyter, on the demo GPU host's loopback: a real `jupyter notebook` when one is
 * installed, else a small built-in HTTP stand-in that answers what gpujup asks (`/api/status`, with
 * the token) and says plainly what it is. Either way it leaves a runtime file (`nbserver-*.json` /
 * `jpserver-*.json`, port, token, pid) in a runtime directory of its own, which the demo GPU host
 * hands to the client's runtime-file lookup, just as a real GPU host's files would be read.
 */
import {execFile} from 'node:child_process';
import {randomBytes, timingSafeEqual} from 'node:crypto';
import {mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import {maskTokens} from '../core/events.js';
import {runtimeFileSeparator} from '../core/jupyter-runtime.js';
import {shellQuote} from '../core/shell.js';
import {JupyterSupervisor} from '../services/jupyter-supervisor.js';
import type {DemoKernels} from './demo-kernels.js';

export type DemoJupyterOptions = {
	/** A private (0700) directory: the notebook and runtime directories go under it. */
	readonly dir: string;
	/** Each log line, tokens already masked. */
	readonly onLog: (line: string) => void;
	/** `auto`: the real Jupyter when `jupyter notebook --version` works, else the stand-in. */
	readonly mode?: 'auto' | 'real' | 'stand-in';
	/** How long a real Jupyter may take to answer (default 90 s: a cold start on a busy box). */
	readonly startTimeoutMs?: number;
	/** The program to run (default `jupyter`). */
	readonly jupyterProgram?: string;
	/**
	 * The simulated notebooks the stand-in lists and controls over REST (`/api/kernels`,
	 * `/api/sessions`, interrupt, restart, shut down). A real Jupyter has its own.
	 */
	readonly kernels?: DemoKernels;
};

export type DemoJupyter = {
	/** Its port on 127.0.0.1 (kept across restarts). */
	readonly port: number;
	/** `real` or `stand-in`. */
	kind(): 'real' | 'stand-in';
	/** The current token (a new one after each restart, as Jupyter makes without a fixed one). */
	token(): string;
	pid(): number | null;
	restarts(): number;
	/** What the runtime-file lookup prints on a GPU host running this Jupyter. */
	runtimeFiles(): string;
	/** Stop it and start it again on the same port. */
	restart(): Promise<void>;
	/** Stop it (kernels included) and remove its files. Idempotent. */
	dispose(): Promise<void>;
};

const newToken = () => randomBytes(24).toString('hex');

/** `[I 14:02:11.123 Demo]`, Jupyter's log prefix, for the demo's own lines. */
function logPrefix(level: 'I' | 'W', who: string): string {
	const now = new Date();
	const pad = (n: number, w = 2) => String(n).padStart(w, '0');
	return `[${level} ${pad(now.getHours())}:${pad(now.getMinutes())}:${pad(now.getSeconds())}.${pad(now.getMilliseconds(), 3)} ${who}]`;
}

async function freeLoopbackPort(): Promise<number> {
	return new Promise((resolve, reject) => {
		const server = net.createServer();
		server.once('error', reject);
		server.listen(0, '127.0.0.1', () => {
			const address = server.address();
			const port = typeof address === 'object' && address ? address.port : 0;
			server.close(() => resolve(port));
		});
	});
}

/** True when `program notebook --version` runs within a few seconds. */
export async function jupyterAvailable(program = 'jupyter'): Promise<string | null> {
	return new Promise((resolve) => {
		execFile(program, ['notebook', '--version'], {timeout: 15_000}, (error, stdout) => {
			resolve(error ? null : (stdout.trim().split('\n').pop() ?? ''));
		});
	});
}

function sameSecret(given: string | null, token: string): boolean {
	if (!given) return false;
	const a = Buffer.from(given);
	const b = Buffer.from(token);
	return a.length === b.length && timingSafeEqual(a, b);
}

/** The built-in stand-in: enough of Jupyter's HTTP API for gpujup, and an honest front page. */
class StandIn {
	private server: http.Server | null = null;
	private readonly sockets = new Set<net.Socket>();
	private started = new Date();
	private lastActivity = new Date();

	constructor(
		private readonly port: number,
		private readonly runtimeDir: string,
		private readonly notebookDir: string,
		private readonly log: (line: string) => void,
		private readonly kernels: DemoKernels | null,
		/** Why the stand-in runs, for its first log line. */
		private readonly why: string,
	) {}

	private get runtimeFile() {
		return path.join(this.runtimeDir, `jpserver-${process.pid}.json`);
	}

	async start(token: string): Promise<void> {
		this.started = new Date();
		this.lastActivity = this.started;
		const server = http.createServer((request, response) => {
			const url = new URL(request.url ?? '/', 'http://127.0.0.1');
			const header = /^token\s+(\S+)$/i.exec(request.headers.authorization ?? '')?.[1] ?? null;
			const authorized = sameSecret(header ?? url.searchParams.get('token'), token);
			const forbidden = () => {
				this.log(
					`${logPrefix('W', 'StandIn')} 403 ${request.method} ${url.pathname} (127.0.0.1): token missing or wrong`,
				);
				response.writeHead(403, {'content-type': 'text/plain; charset=utf-8'});
				response.end(
					'403: the token is missing or wrong — press c in gpujup to copy the URL with it\n',
				);
			};
			if (url.pathname === '/api/status') {
				if (!authorized) {
					forbidden();
					return;
				}
				response.writeHead(200, {'content-type': 'application/json'});
				response.end(
					JSON.stringify({
						connections: 0,
						kernels: this.kernels?.kernelsJson().length ?? 0,
						last_activity: this.lastActivity.toISOString(),
						started: this.started.toISOString(),
					}),
				);
				return;
			}
			const kernelRoute = /^\/api\/kernels\/([\w-]{1,64})(?:\/(interrupt|restart))?$/.exec(
				url.pathname,
			);
			if (
				this.kernels &&
				(url.pathname === '/api/kernels' || url.pathname === '/api/sessions' || kernelRoute)
			) {
				if (!authorized) {
					forbidden();
					return;
				}
				const kernels = this.kernels;
				const reply = (code: number, body: unknown) => {
					response.writeHead(code, {'content-type': 'application/json'});
					response.end(body === null ? '' : JSON.stringify(body));
				};
				if (request.method === 'GET' && url.pathname === '/api/kernels') {
					reply(200, kernels.kernelsJson());
					return;
				}
				if (request.method === 'GET' && url.pathname === '/api/sessions') {
					reply(200, kernels.sessionsJson());
					return;
				}
				const [, id = '', verb] = kernelRoute ?? [];
				const action =
					request.method === 'DELETE' && !verb
						? 'shutdown'
						: request.method === 'POST' && verb
							? (verb as 'interrupt' | 'restart')
							: null;
				if (!action) {
					reply(405, {message: `${request.method} is not supported here`});
					return;
				}
				request.resume();
				if (!kernels.act(id, action)) {
					reply(404, {message: `Kernel does not exist: ${id}`});
					return;
				}
				this.lastActivity = new Date();
				this.log(`${logPrefix('I', 'StandIn')} Kernel ${action}: ${id}`);
				reply(action === 'shutdown' ? 204 : 200, action === 'shutdown' ? null : {id});
				return;
			}
			if (url.pathname === '/' || url.pathname === '/tree') {
				if (!authorized) {
					forbidden();
					return;
				}
				this.lastActivity = new Date();
				this.log(`${logPrefix('I', 'StandIn')} 200 GET ${url.pathname} (127.0.0.1)`);
				response.writeHead(200, {'content-type': 'text/html; charset=utf-8'});
				response.end(
					'<!doctype html><meta charset="utf-8"><title>gpujup demo: Jupyter stand-in</title>' +
						'<h1>gpujup demo: Jupyter stand-in</h1>' +
						'<p>This page came through the whole gpujup chain: a local forward, the relay hop and the GPU host hop, all embedded in <code>gpujup demo</code>.</p>' +
						'<p>It is a stand-in, not Jupyter: install jupyter-notebook for the real one (<code>pip install notebook</code>, or Debian’s <code>jupyter-notebook</code>), then run <code>gpujup demo</code> again.</p>',
				);
				return;
			}
			this.log(`${logPrefix('W', 'StandIn')} 404 ${request.method} ${url.pathname} (127.0.0.1)`);
			response.writeHead(404, {'content-type': 'text/plain; charset=utf-8'});
			response.end(
				'404: the gpujup demo stand-in serves /, /api/status and the demo notebooks’ kernels only\n',
			);
		});
		server.on('connection', (socket) => {
			this.sockets.add(socket);
			socket.on('close', () => this.sockets.delete(socket));
			socket.on('error', () => {});
		});
		server.on('clientError', (_error, socket) => socket.destroy());
		await new Promise<void>((resolve, reject) => {
			server.once('error', reject);
			server.listen({host: '127.0.0.1', port: this.port}, () => {
				server.off('error', reject);
				resolve();
			});
		});
		this.server = server;
		writeFileSync(
			this.runtimeFile,
			JSON.stringify({
				base_url: '/',
				hostname: '127.0.0.1',
				notebook_dir: this.notebookDir,
				password: false,
				pid: process.pid,
				port: this.port,
				secure: false,
				token,
				url: `http://127.0.0.1:${this.port}/`,
				version: 'gpujup-demo-stand-in',
			}),
			{mode: 0o600},
		);
		this.log(
			`${logPrefix('I', 'StandIn')} gpujup demo: Jupyter stand-in${this.kernels ? ' with simulated notebooks' : ''} (${this.why})`,
		);
		this.log(
			`${logPrefix('I', 'StandIn')} Serving on ${maskTokens(`http://127.0.0.1:${this.port}/?token=${token}`, token)}`,
		);
	}

	async stop(): Promise<void> {
		const server = this.server;
		this.server = null;
		rmSync(this.runtimeFile, {force: true});
		if (!server) return;
		const closed = new Promise<void>((resolve) => {
			server.close(() => resolve());
		});
		for (const socket of this.sockets) socket.destroy();
		await closed;
		this.log(`${logPrefix('I', 'StandIn')} Shutting down the stand-in`);
	}
}

/**
 * A real `jupyter notebook`, run by the same supervisor `gpujup host` uses (its own process
 * group, the token in the environment, the log tailed with the token masked, a restart as a new
 * process); the demo stops it for good when it ends.
 */
class RealJupyter {
	readonly #supervisor: JupyterSupervisor;
	readonly #startTimeoutMs: number;
	readonly #killOnExit = () => {
		const pid = this.pid();
		if (pid === null) return;
		try {
			process.kill(-pid, 'SIGKILL');
		} catch {
			// Already gone.
		}
	};

	constructor(options: {
		readonly program: string;
		readonly port: number;
		/** The supervisor's state directory: token, pid and log files. */
		readonly stateDir: string;
		readonly runtimeDir: string;
		readonly notebookDir: string;
		readonly log: (line: string) => void;
		readonly startTimeoutMs: number;
	}) {
		this.#startTimeoutMs = options.startTimeoutMs;
		this.#supervisor = new JupyterSupervisor({
			dir: options.stateDir,
			port: options.port,
			cmd: `${shellQuote(options.program)} notebook`,
			env: {kind: 'none'},
			notebookDir: options.notebookDir,
			dispatch(action) {
				if (action.type === 'log') for (const line of action.lines) options.log(line);
			},
			baseEnv: {...process.env, JUPYTER_RUNTIME_DIR: options.runtimeDir, PYTHONUNBUFFERED: '1'},
			startTimeoutMs: options.startTimeoutMs,
		});
	}

	pid(): number | null {
		return this.#supervisor.status.pid;
	}

	token(): string {
		return this.#supervisor.token();
	}

	/** Until it answers with its token, or why not. */
	async #answering(): Promise<void> {
		const deadline = Date.now() + this.#startTimeoutMs;
		while (Date.now() < deadline) {
			const {state, pid, message} = this.#supervisor.status;
			if (state === 'running' && pid !== null) return;
			if (state === 'exited' || state === 'unreachable')
				throw new Error(`jupyter notebook did not start (${message ?? state})`);
			await new Promise((resolve) => {
				setTimeout(resolve, 100);
			});
		}

		throw new Error(
			`jupyter notebook did not answer on 127.0.0.1:${this.#supervisor.port} within ${Math.round(this.#startTimeoutMs / 1000)} s`,
		);
	}

	async start(): Promise<void> {
		process.on('exit', this.#killOnExit);
		await this.#supervisor.start();
		await this.#answering();
	}

	async restart(): Promise<void> {
		await this.#supervisor.restart();
		await this.#answering();
	}

	async stop(): Promise<void> {
		await this.#supervisor.stop();
		await this.#supervisor.dispose();
		process.off('exit', this.#killOnExit);
	}
}

function writeWelcomeNotebook(dir: string): void {
	const notebook = {
		cells: [
			{
				cell_type: 'markdown',
				metadata: {},
				source: [
					'# gpujup demo\n',
					'\n',
					'This notebook reached you through the whole gpujup chain, embedded in one process: ',
					'a local forward, the relay hop and the GPU host hop. The GPUs in the dashboard are simulated.',
				],
			},
			{
				cell_type: 'code',
				execution_count: null,
				metadata: {},
				outputs: [],
				source: ['import os, platform\n', 'print(platform.node(), os.getpid())'],
			},
		],
		metadata: {kernelspec: {display_name: 'Python 3', language: 'python', name: 'python3'}},
		nbformat: 4,
		nbformat_minor: 5,
	};
	writeFileSync(path.join(dir, 'gpujup-demo.ipynb'), `${JSON.stringify(notebook, null, 1)}\n`, {
		mode: 0o600,
	});
}

/** Start the demo's Jupyter (the real one when possible) and wait until it answers. */
export async function startDemoJupyter(options: DemoJupyterOptions): Promise<DemoJupyter> {
	const runtimeDir = path.join(options.dir, 'runtime');
	const notebookDir = path.join(options.dir, 'notebooks');
	mkdirSync(runtimeDir, {recursive: true, mode: 0o700});
	mkdirSync(notebookDir, {recursive: true, mode: 0o700});
	writeWelcomeNotebook(notebookDir);
	const program = options.jupyterProgram ?? 'jupyter';
	const mode = options.mode ?? 'auto';
	let token = newToken();
	let restarts = 0;
	const log = (line: string, lineToken = token) => {
		options.onLog(maskTokens(line, lineToken));
	};

	let real: RealJupyter | null = null;
	let standIn: StandIn | null = null;
	let port = await freeLoopbackPort();

	if (mode !== 'stand-in') {
		const version = await jupyterAvailable(program);
		if (version === null) {
			if (mode === 'real')
				throw new Error(`\`${program} notebook --version\` failed: is Jupyter installed?`);
			log(
				`${logPrefix('I', 'gpujup-demo')} no \`jupyter notebook\` here: starting the built-in stand-in`,
			);
		} else {
			log(
				`${logPrefix('I', 'gpujup-demo')} starting jupyter notebook ${version} on 127.0.0.1:${port}`,
			);
			for (let attempt = 0; attempt < 2 && !real; attempt++) {
				const candidate = new RealJupyter({
					program,
					port,
					stateDir: path.join(options.dir, `jupyter-${attempt}`),
					runtimeDir,
					notebookDir,
					log: (line) => log(line),
					startTimeoutMs: options.startTimeoutMs ?? 90_000,
				});
				try {
					await candidate.start();
					real = candidate;
					token = candidate.token();
				} catch (error) {
					log(
						`${logPrefix('W', 'gpujup-demo')} ${error instanceof Error ? error.message : String(error)}`,
					);
					await candidate.stop();
					port = await freeLoopbackPort();
				}
			}
			if (!real) {
				if (mode === 'real') throw new Error('jupyter notebook did not start; see its log above');
				log(
					`${logPrefix('W', 'gpujup-demo')} jupyter notebook did not start: using the built-in stand-in`,
				);
			}
		}
	}
	if (!real) {
		standIn = new StandIn(
			port,
			runtimeDir,
			notebookDir,
			(line) => log(line),
			options.kernels ?? null,
			mode === 'stand-in'
				? 'asked for: GPUJUP_DEMO_JUPYTER=stand-in; without it the real jupyter-notebook runs when installed'
				: 'no working jupyter here — install jupyter-notebook for the real one',
		);
		await standIn.start(token);
	}

	let disposed = false;
	let disposing: Promise<void> | null = null;
	let busy: Promise<void> = Promise.resolve();
	return {
		port,
		kind: () => (real ? 'real' : 'stand-in'),
		token: () => token,
		pid: () => (real ? real.pid() : process.pid),
		restarts: () => restarts,
		runtimeFiles() {
			let names: string[];
			try {
				names = readdirSync(runtimeDir).filter((name) => /^(?:jp|nb)server-.*\.json$/.test(name));
			} catch {
				return '';
			}
			let text = '';
			for (const name of names.sort()) {
				try {
					text += `${readFileSync(path.join(runtimeDir, name), 'utf8')}${runtimeFileSeparator}\n`;
				} catch {
					// Removed while we looked: Jupyter is stopping.
				}
			}
			return text;
		},
		async restart() {
			const run = async () => {
				if (disposed) return;
				restarts++;
				log(`${logPrefix('I', 'gpujup-demo')} restarting Jupyter (restart ${restarts})…`);
				if (real) {
					// As `gpujup host` does: a new process, the same token (the client finds its pid again).
					await real.restart();
					log(`${logPrefix('I', 'gpujup-demo')} Jupyter restarted: pid ${real.pid()}`);
				} else if (standIn) {
					await standIn.stop();
					token = newToken();
					await standIn.start(token);
				}
			};
			busy = busy.then(run, run);
			await busy;
		},
		async dispose() {
			disposed = true;
			disposing ??= (async () => {
				await busy.catch(() => {});
				await real?.stop();
				await standIn?.stop();
				rmSync(runtimeDir, {recursive: true, force: true});
			})();
			await disposing;
		},
	};
}
