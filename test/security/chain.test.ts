import {lstat, readdir, readFile} from 'node:fs/promises';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {runGpujup, type GpujupProcess} from '../e2e/gpujup-process.js';
import {runKernelCode} from '../helpers/jupyter.js';
import {descendants} from '../helpers/proc.js';
import {startTmux, type Tmux} from '../helpers/tmux.js';
import {waitFor} from '../helpers/wait-for.js';
import {
	connectArgs,
	forwardPort,
	hostArgs,
	isLoopback,
	jupyterAnswers,
	spawn,
	startChain,
	stopGpujup,
	tcpListeners,
	waitReady,
	type Chain,
} from '../faults/fixture.js';
import {cli} from '../e2e/gpujup-process.js';

type Entry = {
	readonly file: string;
	readonly mode: number;
	readonly kind: 'dir' | 'file' | 'socket' | 'other';
};

/** Every entry under `root` (root included), with its permission bits; [] when root is absent. */
const walk = async (root: string): Promise<Entry[]> => {
	const result: Entry[] = [];
	const visit = async (file: string) => {
		const stat = await lstat(file).catch(() => undefined);
		if (!stat) return;
		const kind = stat.isDirectory()
			? 'dir'
			: stat.isFile()
				? 'file'
				: stat.isSocket()
					? 'socket'
					: 'other';
		result.push({file, mode: stat.mode & 0o777, kind});
		if (kind === 'dir') {
			for (const name of await readdir(file).catch(() => [])) await visit(path.join(file, name));
		}
	};
	await visit(root);
	return result;
};

/** gpujup's own dirs under a HOME's XDG dirs (as the lab sets them). */
const gpujupDirs = (home: string) => [
	path.join(home, '.local', 'state', 'gpujup'),
	path.join(home, '.config', 'gpujup'),
];

/** Pids of every process whose argv contains `needle`. */
const argvHolders = async (needle: string): Promise<Array<{pid: number; argv: string}>> => {
	const hits: Array<{pid: number; argv: string}> = [];
	for (const name of await readdir('/proc')) {
		if (!/^\d+$/.test(name)) continue;
		const argv = await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '');
		if (argv.includes(needle)) hits.push({pid: Number(name), argv: argv.replaceAll('\0', ' ')});
	}
	return hits;
};

/**
 * The whole product chain on real OpenSSH and Jupyter: `gpujup host` (reverse tunnel + supervised
 * Jupyter) on the "GPU host", `gpujup connect` on the "laptop"; then what a careful user would check.
 */
describe('security of a running chain (gpujup host + gpujup connect)', () => {
	let chain: Chain;
	let host: GpujupProcess;
	let connect: GpujupProcess;
	let token: string;
	let localPort: number;
	let jupyterPid: number;

	beforeAll(async () => {
		chain = await startChain({jupyter: false, lab: {reverse: 'none'}});
		host = spawn(
			hostArgs(chain.lab, {jupyterPort: chain.jupyterPort, notebookDir: chain.scratch}),
			chain.lab.gpuEnv(),
		);
		await waitReady(host, ['reverse'], {timeoutMs: 120_000});
		const running = await waitFor(
			() =>
				host.lines.findLast(
					(line) => line.type === 'jupyter' && line['state'] === 'running' && line['pid'],
				),
			{timeoutMs: 120_000, message: 'Jupyter running under gpujup host'},
		);
		jupyterPid = Number(running['pid']);
		const url = await waitFor(
			async () => {
				const result = await runGpujup(['url'], chain.lab.gpuEnv(), 30_000);
				return result.code === 0 ? new URL(result.stdout.trim()) : undefined;
			},
			{timeoutMs: 60_000, message: '`gpujup url` on the GPU host'},
		);
		token = url.searchParams.get('token') ?? '';
		connect = spawn(
			connectArgs(chain.lab, {jupyterPort: chain.jupyterPort, keepalive: 1}),
			chain.lab.env(),
		);
		await waitReady(connect, ['relay', 'host'], {timeoutMs: 120_000});
		localPort = await forwardPort(connect, chain.jupyterPort);
		await waitFor(async () => jupyterAnswers(localPort, token), {
			timeoutMs: 60_000,
			message: 'Jupyter through the forward',
		});
	}, 300_000);

	afterAll(async () => {
		await stopGpujup(connect);
		await stopGpujup(host);
		if (chain) {
			await runGpujup(
				[
					...hostArgs(chain.lab, {jupyterPort: chain.jupyterPort, notebookDir: chain.scratch}),
					'--stop-jupyter',
				],
				chain.lab.gpuEnv(),
			).catch(() => undefined);
		}
		if (jupyterPid) {
			try {
				process.kill(jupyterPid, 'SIGKILL');
			} catch {
				// Already stopped by --stop-jupyter.
			}
		}
		await chain?.dispose();
	}, 120_000);

	/** Run `fn` while a kernel started through the forward is alive. */
	const withKernel = async <T>(fn: () => Promise<T>): Promise<T> => {
		const created = await fetch(`http://127.0.0.1:${localPort}/api/kernels`, {
			method: 'POST',
			headers: {authorization: `token ${token}`, 'content-type': 'application/json'},
			body: JSON.stringify({name: 'python3'}),
		});
		expect(created.status).toBe(201);
		const {id} = (await created.json()) as {id: string};
		try {
			// The kernel is up once it has executed code.
			expect(await runKernelCode(`http://127.0.0.1:${localPort}/`, token, 'print(1)')).toBe('1\n');
			await waitFor(async () => (await descendants(jupyterPid)).length > 0, {
				timeoutMs: 60_000,
				message: 'a kernel process under Jupyter',
			});
			return await fn();
		} finally {
			await fetch(`http://127.0.0.1:${localPort}/api/kernels/${id}`, {
				method: 'DELETE',
				headers: {authorization: `token ${token}`},
			}).catch(() => undefined);
		}
	};

	it('has a token worth hiding', () => {
		expect(token).toMatch(/^\S{16,}$/);
	}, 240_000);

	it('binds every TCP listener of gpujup and its Jupyter to 127.0.0.1', async () => {
		const connectListeners = await tcpListeners(connect.child.pid!);
		// The forward at least: an empty list would prove nothing.
		expect(connectListeners.map((l) => l.port)).toContain(localPort);
		const hostListeners = await tcpListeners(host.child.pid!);
		// Jupyter (maybe under a wrapper shell) and a live kernel (its ZeroMQ ports).
		const jupyterListeners = await withKernel(async () => {
			const tree = [jupyterPid, ...(await descendants(jupyterPid))];
			return (await Promise.all(tree.map(async (pid) => tcpListeners(pid)))).flat();
		});
		expect(jupyterListeners.map((l) => l.port)).toContain(chain.jupyterPort);
		// Jupyter's own port plus the kernel's five ZeroMQ ports.
		expect(jupyterListeners.length).toBeGreaterThanOrEqual(6);
		for (const listener of [...connectListeners, ...hostListeners, ...jupyterListeners]) {
			expect(isLoopback(listener), JSON.stringify(listener)).toBe(true);
		}
	}, 240_000);

	it('answers 403 through the forward without the token, 200 with it', async () => {
		for (const endpoint of ['api/status', 'api/kernels', 'api/contents']) {
			const without = await fetch(`http://127.0.0.1:${localPort}/${endpoint}`);
			await without.arrayBuffer();
			expect(without.status, endpoint).toBe(403);
			const wrong = await fetch(`http://127.0.0.1:${localPort}/${endpoint}`, {
				headers: {authorization: 'token not-the-token'},
			});
			await wrong.arrayBuffer();
			expect(wrong.status, endpoint).toBe(403);
			const withToken = await fetch(`http://127.0.0.1:${localPort}/${endpoint}`, {
				headers: {authorization: `token ${token}`},
			});
			await withToken.arrayBuffer();
			expect(withToken.status, endpoint).toBe(200);
		}
	}, 240_000);

	it('keeps the token out of argv (gpujup, Jupyter, kernels), events, output and state files', async () => {
		// A live kernel, so its command line is there to read.
		expect(await withKernel(async () => argvHolders(token))).toEqual([]);
		expect(host.output()).not.toContain(token);
		expect(connect.output()).not.toContain(token);
		const status = await runGpujup(['status', '--json'], chain.lab.env());
		expect(status.stdout).toContain('"ok"');
		expect(status.stdout + status.stderr).not.toContain(token);
		const hostStatus = await runGpujup(['status', '--json'], chain.lab.gpuEnv());
		expect(hostStatus.stdout + hostStatus.stderr).not.toContain(token);

		// gpujup's files: only the 0600 token file may hold it (Jupyter's log included).
		const holders: string[] = [];
		let files = 0;
		for (const home of [chain.lab.home, chain.lab.gpuHome]) {
			for (const root of gpujupDirs(home)) {
				for (const entry of await walk(root)) {
					if (entry.kind !== 'file') continue;
					files++;
					const text = await readFile(entry.file, 'utf8').catch(() => '');
					if (text.includes(token)) holders.push(entry.file);
				}
			}
		}
		expect(files).toBeGreaterThan(0);
		expect(holders.filter((file) => path.basename(file) !== 'token')).toEqual([]);
	}, 240_000);

	it('writes its files 0600 (sockets too) in 0700 directories, on both machines', async () => {
		for (const home of [chain.lab.home, chain.lab.gpuHome]) {
			const entries = (await Promise.all(gpujupDirs(home).map(async (root) => walk(root)))).flat();
			// The state dir and its control socket exist while gpujup runs.
			expect(
				entries.some((entry) => entry.kind === 'socket'),
				home,
			).toBe(true);
			for (const entry of entries) {
				const want = entry.kind === 'dir' ? 0o700 : 0o600;
				expect(
					entry.mode & 0o077,
					`${entry.file} is ${entry.mode.toString(8)}, want ${want.toString(8)}`,
				).toBe(0);
				if (entry.kind === 'dir') expect(entry.mode, entry.file).toBe(0o700);
			}
		}
	}, 240_000);

	it('masks the token on the dashboard (tmux) with •••', async () => {
		const args = connectArgs(chain.lab, {jupyterPort: chain.jupyterPort, keepalive: 1}).filter(
			(arg) => arg !== '--no-tui',
		);
		let tmux: Tmux | undefined;
		try {
			// Its own state dir: the --no-tui connect above already serves this HOME's control socket.
			const env = {...chain.lab.env(), XDG_STATE_HOME: path.join(chain.scratch, 'tmux-state')};
			tmux = await startTmux([process.execPath, cli, ...args], {env, width: 120, height: 40});
			const screen = await tmux.waitForText('•••', 90_000);
			expect(screen).not.toContain(token);
			expect(screen).toContain('token=•••');
			// Still hidden a moment later, after more frames.
			const later = await tmux.waitForText(/relay/i, 10_000);
			expect(later).not.toContain(token);
		} finally {
			await tmux?.dispose();
		}
	}, 240_000);
});
