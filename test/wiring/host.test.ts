import {readFileSync} from 'node:fs';
import path from 'node:path';
import {afterEach, describe, expect, test} from 'vitest';
import type {RelayConfig} from '../../source/config/types.js';
import {initialHop, initialState, reduce} from '../../source/core/app-state.js';
import {createStore} from '../../source/core/store.js';
import {requestControl} from '../../source/services/control-socket.js';
import {terminateJupyter} from '../../source/services/jupyter-supervisor.js';
import {processAlive} from '../../source/services/proc-table.js';
import {
	reverseLabel,
	runHost,
	stopJupyterForProfile,
	type HostHandle,
} from '../../source/wiring/host.js';
import {serveSession} from '../../source/wiring/control.js';
import {controlSocketPath} from '../../source/wiring/ssh-options.js';
import {runKernelCode} from '../helpers/jupyter.js';
import {startLab, type Lab} from '../helpers/openssh-lab.js';
import {freePort, tempDir} from '../helpers/ports.js';
import {waitFor} from '../helpers/wait-for.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
	for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

delete process.env['SSH_AUTH_SOCK'];

async function setup() {
	const lab = await startLab({reverse: 'none'});
	cleanups.push(async () => lab.dispose());
	const root = await tempDir('host-role');
	cleanups.push(async () => root.dispose());
	const jupyterPort = await freePort();
	const config: RelayConfig = {
		command: 'host',
		profile: null,
		configFile: null,
		relay: {host: '127.0.0.1', port: lab.relay.port, user: lab.user, alias: null},
		relayPort: lab.relayPort,
		chain: [],
		hostAlias: null,
		hostUser: lab.user,
		jupyterPort,
		localPort: 0,
		identities: [lab.clientKey],
		relayHostKeys: {
			userFiles: [lab.knownHosts],
			globalFiles: [],
			alias: null,
			strict: 'yes',
			hash: false,
		},
		gpuHostKeys: {
			userFiles: [lab.knownHosts],
			globalFiles: [],
			alias: null,
			strict: 'yes',
			hash: false,
		},
		keepaliveS: 1,
		keepaliveCount: 3,
		forwards: [],
		jupyterLog: null,
		nvidiaSmi: 'nvidia-smi',
		sshPort: lab.gpu.sshPort,
		jupyterCmd: null,
		env: {kind: 'none'},
		notebookDir: root.path,
		noTui: true,
		notifyAfterS: 60,
		tunnelBackAfterS: 60,
		notifyUrl: null,
		slurm: null,
		warnings: [],
		json: false,
		stopJupyter: false,
		printSystemdUnit: false,
		home: lab.gpuHome,
		stateDir: path.join(lab.gpuHome, '.local', 'state', 'gpujup'),
	};
	// Jupyter's runtime and data dirs follow the lab's GPU home, like an ssh session there sees.
	const jupyterEnv = {...process.env, ...lab.gpuEnv()};
	delete jupyterEnv['JUPYTER_TOKEN'];
	const pids = new Set<number>();
	cleanups.push(async () => {
		await Promise.all([...pids].map(async (pid) => terminateJupyter(pid, 5000)));
	});

	const start = async () => {
		const store = createStore(
			reduce,
			initialState({
				role: 'host',
				title: 'gpu',
				hops: [initialHop('reverse', reverseLabel(config))],
			}),
		);
		store.subscribe(() => {
			const pid = store.getSnapshot().jupyter?.pid;
			if (pid) pids.add(pid);
		});
		// As the session shell does it (wiring/control.ts): the socket first, then the role.
		let attached: HostHandle | null = null;
		const server = await serveSession(config, 'host', store, () => attached);
		cleanups.push(async () => server.dispose());
		const handle: HostHandle = await runHost(config, {
			store,
			jupyterEnv,
			attach(early) {
				attached = early;
			},
		});
		const dispose = async () => {
			await handle.dispose();
			await server.dispose();
		};
		cleanups.push(dispose);
		const snapshot = () => store.getSnapshot();
		const up = async () =>
			waitFor(
				() => {
					const s = snapshot();
					return s.hops[0]?.state === 'ready' && s.jupyter?.state === 'running' ? s : null;
				},
				{timeoutMs: 90_000, intervalMs: 100, message: 'reverse hop ready and Jupyter running'},
			);
		return {store, handle, snapshot, up, dispose};
	};

	return {lab, config, start, root};
}

async function kernelThroughTunnel(lab: Lab, jupyterPort: number, token: string): Promise<string> {
	const local = await freePort();
	const ssh = lab.spawnSsh([
		'-N',
		'-o',
		'ExitOnForwardFailure=yes',
		'-L',
		`${local}:127.0.0.1:${jupyterPort}`,
		...lab.sshArgs(),
	]);
	try {
		return await waitFor(
			async () => runKernelCode(`http://127.0.0.1:${local}/`, token, 'print(6 * 7)', 30_000),
			{timeoutMs: 60_000, intervalMs: 500, message: 'kernel through the reverse tunnel'},
		);
	} finally {
		ssh.kill('SIGTERM');
	}
}

describe('gpujup host role', () => {
	test('tunnel + Jupyter + control socket: a kernel runs through the relay; a second host is refused', async () => {
		const {lab, config, start} = await setup();
		const host = await start();
		const ready = await host.up();
		expect(ready.hops[0]!.label).toBe(`127.0.0.1 (listening :${lab.relayPort})`);
		expect(ready.jupyter).toMatchObject({
			url: `http://127.0.0.1:${config.jupyterPort}/`,
			origin: 'started',
		});

		const socket = controlSocketPath(config, 'host');
		const status = (await requestControl(socket, 'status')) as Record<string, unknown>;
		expect(status).toMatchObject({ok: true, pid: process.pid, role: 'host', profile: 'default'});
		const token = (await requestControl(socket, 'token')) as {token: string; port: number};
		const tokenFile = path.join(config.stateDir, 'default', 'token');
		expect(token).toEqual({
			token: readFileSync(tokenFile, 'utf8').trim(),
			port: config.jupyterPort,
		});
		expect(host.handle.token()).toEqual(token);
		expect(JSON.stringify(host.snapshot())).not.toContain(token.token);

		expect((await kernelThroughTunnel(lab, config.jupyterPort, token.token)).trim()).toBe('42');

		await expect(start()).rejects.toThrow(
			`gpujup host is already running for profile default (pid ${process.pid})`,
		);
		// The refused second host left the first one's Jupyter alone.
		expect(host.snapshot().jupyter?.pid).toBe(ready.jupyter?.pid);
		expect(processAlive(ready.jupyter!.pid!)).toBe(true);
	});

	test('Jupyter outlives the host and is adopted; --stop-jupyter asks a running host, else uses the pid file', async () => {
		const {config, start} = await setup();
		const first = await start();
		const {jupyter} = await first.up();
		const pid = jupyter!.pid!;
		await first.dispose();
		expect(processAlive(pid)).toBe(true);

		const second = await start();
		const adopted = await second.up();
		expect(adopted.jupyter).toMatchObject({pid, origin: 'adopted'});

		// With a host running, the host stops it (and does not restart it as a crash).
		expect(await stopJupyterForProfile(config)).toBe(
			`stopped Jupyter (pid ${pid}) of the running gpujup host for profile default`,
		);
		expect(processAlive(pid)).toBe(false);
		expect(second.snapshot().jupyter).toMatchObject({state: 'exited', pid: null});
		await expect(requestControl(controlSocketPath(config, 'host'), 'token')).rejects.toThrow(
			/not running/,
		);

		await second.handle.restartJupyter();
		const restarted = await second.up();
		const newPid = restarted.jupyter!.pid!;
		expect(newPid).not.toBe(pid);
		await second.dispose();
		expect(processAlive(newPid)).toBe(true);

		// No host running: the pid file leads to it.
		expect(await stopJupyterForProfile(config)).toBe(
			`stopped Jupyter (pid ${newPid}, port ${config.jupyterPort}) for profile default`,
		);
		expect(processAlive(newPid)).toBe(false);
		expect(await stopJupyterForProfile(config)).toBe('no Jupyter running for profile default');
	});
});
