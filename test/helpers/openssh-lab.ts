/**
 * A real OpenSSH lab on loopback: a relay sshd and a GPU host sshd (Debian's /usr/sbin/sshd, each
 * with its own config, host key, log and authorized_keys in a per-lab temp dir), and optionally the
 * seed's reverse tunnel made by the real OpenSSH client (`ssh -N -R relayPort:localhost:gpuPort`).
 *
 *     laptop (the test) ──ssh──▶ relay sshd 127.0.0.1:relay.port
 *                                  └─ direct-tcpip to localhost:relayPort (the -R listener)
 *                                        └──▶ GPU host sshd 127.0.0.1:gpu.sshPort
 *
 * How a test reaches the GPU host through the relay:
 *   - OpenSSH: `spawn('ssh', [...lab.sshArgs(), 'echo ok'])` — `sshArgs()` is `-F <lab ssh_config>
 *     gpu`, where Host `gpu` is `localhost:<relayPort>` with `ProxyJump relay` (exactly `ssh -J`),
 *     the lab's key, known_hosts and BatchMode. `-L`/`-R`/`-N` can be placed before them.
 *   - gpujup: `--relay root@127.0.0.1:<relay.port> --relay-port <relayPort> -i <clientKey>
 *     --known-hosts <knownHosts>` with `env: lab.env()`.
 * The GPU host's key is in knownHosts under `[localhost]:<relayPort>`, the relay's under
 * `[127.0.0.1]:<relay.port>`.
 *
 * Sessions on the GPU host run as root but with HOME, XDG_* and PATH of the lab's GPU home
 * (`lab.gpuEnv()`, set through `environment=` in authorized_keys), so a `gpujup host` or Jupyter a
 * test starts with `env: lab.gpuEnv()` shares its state and runtime dirs with what an ssh session on
 * the "GPU host" sees. Everything is per lab; tests in parallel never share a port or a file.
 *
 * With `secondGpu: true` a second GPU host (a fleet behind one relay) runs beside the first:
 * `lab.gpu2`, its own sshd, host key, HOME (`gpu2.env()`) and `ssh -R <gpu2.relayPort>:…`;
 * Host `gpu2` in the lab's ssh_config, its key in knownHosts under `[localhost]:<gpu2.relayPort>`.
 */
import {spawn, execFile, type ChildProcess} from 'node:child_process';
import {appendFile, mkdir, readFile, writeFile} from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import {promisify} from 'node:util';
import {freePort, tempDir} from './ports.js';
import {descendants, exited, killAll, stopChild, waitGone} from './proc.js';
import {waitFor} from './wait-for.js';

const execFileP = promisify(execFile);

const SSHD = '/usr/sbin/sshd';
const SSH = '/usr/bin/ssh';
const SSH_KEYGEN = '/usr/bin/ssh-keygen';
const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Options for {@link startLab}. */
export type LabOptions = {
	/** 'openssh' (default): start the seed's `ssh -R` tunnel; 'none': leave relayPort to the test. */
	readonly reverse?: 'openssh' | 'none';
	/** Extra relay sshd_config lines (they win over the lab's defaults), e.g. 'ClientAliveInterval 2'. */
	readonly relayOptions?: readonly string[];
	/** Extra GPU host sshd_config lines, same rules. */
	readonly gpuOptions?: readonly string[];
	/** A dir put first on PATH for ssh sessions on the GPU host (a fake nvidia-smi). */
	readonly hostEnvPath?: string;
	/** ServerAliveInterval of the OpenSSH reverse tunnel (default 5 s). */
	readonly reverseAliveSeconds?: number;
	/**
	 * The login shell of the GPU host's user (root) as its sshd sees it, e.g. '/usr/bin/fish'. The
	 * GPU host sshd then runs in a mount namespace of its own where a copy of /etc/passwd with that
	 * shell is bound over the real one: nothing outside that sshd and its sessions sees the change,
	 * and it ends with them.
	 */
	readonly gpuLoginShell?: string;
	/**
	 * More variables for ssh sessions on the GPU host (through `environment=` in authorized_keys),
	 * e.g. a test Slurm cluster's `SLURM_CONF` when that sshd plays a login node.
	 */
	readonly hostEnv?: Readonly<Record<string, string>>;
	/**
	 * Start a third sshd, a bastion in front of the relay (a university's bastion → login node →
	 * machine), accepting the client key; its key goes into known_hosts as `[127.0.0.1]:<port>`.
	 */
	readonly bastion?: boolean;
	/**
	 * Start a second GPU host behind the same relay (a fleet): its own sshd, host key, HOME and
	 * reverse tunnel (`ssh -R <gpu2.relayPort>:localhost:<its port>`), started with the first's.
	 */
	readonly secondGpu?: boolean;
	/**
	 * Start another sshd, a Slurm compute node beside the GPU host's sshd (which then plays the
	 * login node): the same authorized_keys, so its sessions share the GPU home and `hostEnv` (a
	 * cluster's shared filesystem); its key goes into known_hosts as `[localhost]:<port>`, the name
	 * the test cluster's one node has.
	 */
	readonly node?: boolean;
};

/** The second GPU host of a lab started with `secondGpu: true`. */
export type LabSecondGpu = LabSshd & {
	readonly sshPort: number;
	/** Its reverse-forward port on the relay's loopback. */
	readonly relayPort: number;
	/** Its HOME (ssh sessions on it, its Jupyter). */
	readonly home: string;
	/** Environment for spawning Jupyter / gpujup host on it. */
	env(): NodeJS.ProcessEnv;
	reverseRunning(): boolean;
	/** Kill its `ssh -R` and wait until the relay frees its port. */
	stopReverse(): Promise<void>;
	startReverse(): Promise<void>;
};

/** One sshd of the lab. */
export type LabSshd = {
	readonly host: '127.0.0.1';
	readonly port: number;
	/** 'ssh-ed25519 AAAA…' (no comment). */
	readonly hostKeyPub: string;
	readonly logFile: string;
	readonly configFile: string;
	/** Pid of the listener, undefined while stopped. */
	readonly pid: number | undefined;
	/**
	 * Stop and start again on the same port with the same host key. By default every session dies
	 * too (a crash or reboot of that machine); `keepSessions` kills only the listener, as
	 * `systemctl restart ssh` does.
	 */
	restart(options?: {keepSessions?: boolean}): Promise<void>;
	/** Kill the listener and (unless `keepSessions`) every session; the port then refuses. */
	stop(options?: {keepSessions?: boolean}): Promise<void>;
	/** Start again after stop(). */
	start(): Promise<void>;
	/** Kill every per-connection child but keep the listener: all sessions drop at once. */
	dropSessions(): Promise<void>;
	/**
	 * Restart with other extra sshd_config lines (they win over the lab's defaults), e.g.
	 * `['DenyUsers root']` for a node that refuses the login as pam_slurm_adopt would; `[]` undoes.
	 */
	reconfigure(extra: readonly string[]): Promise<void>;
};

export type Lab = {
	readonly relay: LabSshd;
	/** The third sshd, with `bastion: true`; null otherwise. */
	readonly bastion: LabSshd | null;
	/** The second GPU host, with `secondGpu: true` (ssh_config Host `gpu2`); null otherwise. */
	readonly gpu2: LabSecondGpu | null;
	/** The compute node's sshd, with `node: true`; null otherwise. */
	readonly node: LabSshd | null;
	/** The GPU host's sshd; `sshPort` is its real port (what `-R …:localhost:<sshPort>` exposes). */
	readonly gpu: LabSshd & {readonly sshPort: number};
	/** The reverse-forward port on the relay's loopback. */
	readonly relayPort: number;
	readonly user: 'root';
	/** Private key path (ed25519, no passphrase), accepted by both sshds. */
	readonly clientKey: string;
	readonly clientKeyPub: string;
	/** known_hosts with `[127.0.0.1]:<relay.port>` and `[localhost]:<relayPort>`. */
	readonly knownHosts: string;
	/** ssh_config with Hosts `relay` and `gpu` (ProxyJump relay). */
	readonly sshConfig: string;
	readonly dir: string;
	/** The laptop's HOME (for gpujup connect). */
	readonly home: string;
	/** The GPU host's HOME (ssh sessions on the GPU host, and gpujup host). */
	readonly gpuHome: string;
	/** Environment for spawning gpujup on the "laptop". */
	env(): NodeJS.ProcessEnv;
	/** Environment for spawning gpujup host / Jupyter on the "GPU host". */
	gpuEnv(): NodeJS.ProcessEnv;
	/** OpenSSH client args to reach the GPU host through the relay (like `ssh -J`). */
	sshArgs(): string[];
	/** OpenSSH client args to reach the relay itself. */
	relaySshArgs(): string[];
	/** Run `ssh` with `args` and resolve with its result (never rejects on non-zero exit). */
	ssh(args: readonly string[], options?: {timeoutMs?: number}): Promise<SshResult>;
	/**
	 * Spawn a long-running `ssh` (e.g. `['-N', '-o', 'ExitOnForwardFailure=yes', '-L', …,
	 * ...lab.sshArgs()]`) with the lab's env; dispose() kills it if the test did not.
	 */
	spawnSsh(args: readonly string[]): ChildProcess;
	/** Whether the OpenSSH reverse tunnel process is running. */
	reverseRunning(): boolean;
	stopReverse(): Promise<void>;
	/** Start the OpenSSH `-R` tunnel and wait until relayPort answers with the GPU host's banner. */
	startReverse(): Promise<void>;
	/** Kill the relay sshd's per-connection children (not the listener): every session drops. */
	dropRelaySessions(): Promise<void>;
	addAuthorizedKey(pubLine: string, target: 'relay' | 'gpu'): Promise<void>;
	dispose(): Promise<void>;
};

export type SshResult = {code: number | null; stdout: string; stderr: string};

/**
 * The ssh_config lines (indented, for under a `Host`) with which OpenSSH reaches a lab's hosts as
 * root with `clientKey` only, no agent, host keys from `knownHosts` only and checked, no prompts,
 * ServerAlive `alive` (default 5 s × 3).
 */
export function sshClientOptions(
	clientKey: string,
	knownHosts: string,
	alive: {interval: number; count: number} = {interval: 5, count: 3},
): string[] {
	return [
		'  User root',
		`  IdentityFile ${clientKey}`,
		'  IdentitiesOnly yes',
		'  IdentityAgent none',
		`  UserKnownHostsFile ${knownHosts}`,
		'  GlobalKnownHostsFile /dev/null',
		'  StrictHostKeyChecking yes',
		'  UpdateHostKeys no',
		'  BatchMode yes',
		'  ConnectTimeout 15',
		`  ServerAliveInterval ${alive.interval}`,
		`  ServerAliveCountMax ${alive.count}`,
	];
}

/** Read the first line a server sends (an SSH banner), or reject. */
export async function readBanner(
	port: number,
	host = '127.0.0.1',
	timeoutMs = 3000,
): Promise<string> {
	return new Promise((resolve, reject) => {
		const socket = net.connect({host, port});
		let data = '';
		const done = (error: Error | undefined, line?: string) => {
			clearTimeout(timer);
			socket.destroy();
			if (error) reject(error);
			else resolve(line ?? '');
		};
		const timer = setTimeout(() => done(new Error(`no banner from ${host}:${port}`)), timeoutMs);
		socket.setEncoding('latin1');
		socket.on('data', (chunk: string) => {
			data += chunk;
			const end = data.indexOf('\n');
			if (end !== -1) done(undefined, data.slice(0, end).trimEnd());
		});
		socket.on('error', (error) => done(error));
		socket.on('close', () => done(new Error(`closed before a banner from ${host}:${port}`)));
	});
}

/** Whether a TCP connect to 127.0.0.1:port is refused (nothing listens). */
export async function portRefuses(port: number, host = '127.0.0.1'): Promise<boolean> {
	return new Promise((resolve) => {
		const socket = net.connect({host, port});
		socket.once('connect', () => {
			socket.destroy();
			resolve(false);
		});
		socket.once('error', () => resolve(true));
	});
}

const keygen = async (file: string, comment: string): Promise<string> => {
	await execFileP(SSH_KEYGEN, ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file]);
	const pub = (await readFile(`${file}.pub`, 'utf8')).trim();
	// Without the comment: 'ssh-ed25519 AAAA…'.
	return pub.split(' ').slice(0, 2).join(' ');
};

/** Split user lines so that `Match` blocks go last and plain lines first (first value wins). */
const sshdConfig = (base: readonly string[], extra: readonly string[]): string => {
	const matchAt = extra.findIndex((line) => /^\s*match\s/i.test(line));
	const plain = matchAt === -1 ? extra : extra.slice(0, matchAt);
	const match = matchAt === -1 ? [] : extra.slice(matchAt);
	return [...plain, ...base, ...match, ''].join('\n');
};

type SshdSpec = {
	readonly name: 'relay' | 'gpu' | 'gpu2' | 'bastion' | 'node';
	readonly dir: string;
	readonly hostKey: string;
	readonly hostKeyPub: string;
	readonly authorizedKeys: string;
	readonly extra: readonly string[];
	readonly permitUserEnvironment: boolean;
	readonly loginShell?: string;
};

const makeSshd = async (spec: SshdSpec): Promise<LabSshd> => {
	const logFile = path.join(spec.dir, `${spec.name}-sshd.log`);
	const configFile = path.join(spec.dir, `${spec.name}-sshd_config`);
	const pidFile = path.join(spec.dir, `${spec.name}-sshd.pid`);
	let port = 0;
	let child: ChildProcess | undefined;
	let extraLines = spec.extra;

	const writeConfig = async () => {
		const base = [
			`Port ${port}`,
			'ListenAddress 127.0.0.1',
			`PidFile ${pidFile}`,
			`HostKey ${spec.hostKey}`,
			`AuthorizedKeysFile ${spec.authorizedKeys}`,
			'StrictModes no',
			'PermitRootLogin yes',
			'PubkeyAuthentication yes',
			'PasswordAuthentication no',
			'KbdInteractiveAuthentication no',
			'AllowTcpForwarding yes',
			'AllowStreamLocalForwarding yes',
			'StreamLocalBindUnlink yes',
			'GatewayPorts no',
			'UsePAM no',
			'UseDNS no',
			'PrintMotd no',
			'PrintLastLog no',
			'X11Forwarding no',
			`PermitUserEnvironment ${spec.permitUserEnvironment ? 'yes' : 'no'}`,
			// Many probes and parallel connects from tests: do not let sshd throttle them.
			'MaxStartups 200',
			'MaxSessions 100',
			'LoginGraceTime 60',
			'LogLevel VERBOSE',
			'Subsystem sftp internal-sftp',
		];
		await writeFile(configFile, sshdConfig(base, extraLines), {mode: 0o600});
	};

	const sshdArgv = async (): Promise<[string, ...string[]]> => {
		const argv: [string, ...string[]] = [SSHD, '-D', '-e', '-f', configFile, '-E', logFile];
		if (!spec.loginShell) return argv;
		const passwd = path.join(spec.dir, `${spec.name}-passwd`);
		const lines = (await readFile('/etc/passwd', 'utf8')).split('\n').map((line) => {
			const fields = line.split(':');
			if (fields[0] !== 'root' || fields.length !== 7) return line;
			fields[6] = spec.loginShell!;
			return fields.join(':');
		});
		await writeFile(passwd, lines.join('\n'), {mode: 0o644});
		// unshare and sh both exec: the pid stays sshd's.
		return [
			'unshare',
			'--mount',
			'--propagation',
			'private',
			'/bin/sh',
			'-c',
			'mount --bind "$1" /etc/passwd && shift && exec "$@"',
			'sh',
			passwd,
			...argv,
		];
	};

	const launch = async (): Promise<void> => {
		await writeConfig();
		await appendFile(logFile, `--- gpujup lab: starting ${spec.name} sshd on ${port}\n`);
		const [program, ...args] = await sshdArgv();
		const proc = spawn(program, args, {
			stdio: ['ignore', 'ignore', 'pipe'],
		});
		let stderr = '';
		proc.stderr?.setEncoding('utf8');
		proc.stderr?.on('data', (chunk: string) => (stderr += chunk));
		proc.on('error', () => {});
		child = proc;
		try {
			await waitFor(
				async () => {
					if (proc.exitCode !== null || proc.signalCode !== null) {
						const log = await readFile(logFile, 'utf8').catch(() => '');
						throw Object.assign(
							new Error(`${spec.name} sshd exited: ${stderr}${log.slice(-1500)}`),
							{
								exited: true,
							},
						);
					}
					return (await readBanner(port)).startsWith('SSH-2.0-');
				},
				{timeoutMs: 20_000, message: `${spec.name} sshd on 127.0.0.1:${port}`},
			);
		} catch (error: unknown) {
			await stopChild(proc, {graceMs: 1000});
			child = undefined;
			throw error;
		}
	};

	const kill = async (keepSessions: boolean) => {
		const proc = child;
		child = undefined;
		if (!proc?.pid) return;
		// Snapshot the session tree first: once the listener dies its children are re-parented.
		const sessions = keepSessions ? [] : await descendants(proc.pid);
		await stopChild(proc, {graceMs: 2000});
		killAll(sessions);
		await waitGone(sessions);
	};

	const sshd: LabSshd = {
		host: '127.0.0.1',
		get port() {
			return port;
		},
		hostKeyPub: spec.hostKeyPub,
		logFile,
		configFile,
		get pid() {
			return child?.pid;
		},
		async start() {
			if (child) return;
			// The same port again: another process may grab it meanwhile, but only on a busy machine.
			await waitFor(
				async () => {
					await launch();
					return true;
				},
				{timeoutMs: 30_000, intervalMs: 200, message: `restart ${spec.name} sshd on ${port}`},
			);
		},
		async stop(options) {
			await kill(options?.keepSessions ?? false);
		},
		async restart(options) {
			await kill(options?.keepSessions ?? false);
			await sshd.start();
		},
		async dropSessions() {
			const pid = child?.pid;
			if (!pid) return;
			const sessions = await descendants(pid);
			killAll(sessions);
			await waitGone(sessions);
		},
		async reconfigure(extra) {
			extraLines = extra;
			await sshd.restart();
		},
	};

	// First start: a fresh port each try, in case another process took the one we were given.
	for (let attempt = 1; ; attempt++) {
		port = await freePort();
		try {
			await launch();
			break;
		} catch (error: unknown) {
			if (attempt >= 3) throw error;
		}
	}
	return sshd;
};

/** Start a lab. Always `await lab.dispose()` in `finally`/`afterEach`. */
export async function startLab(options: LabOptions = {}): Promise<Lab> {
	await mkdir('/run/sshd', {recursive: true, mode: 0o755});
	const temp = await tempDir('lab');
	const dir = temp.path;
	const cleanups: Array<() => Promise<void>> = [];
	try {
		const home = path.join(dir, 'home');
		const gpuHome = path.join(dir, 'gpu-home');
		const runtime = path.join(dir, 'run');
		const gpuRuntime = path.join(dir, 'gpu-run');
		const gpu2Home = path.join(dir, 'gpu2-home');
		const gpu2Runtime = path.join(dir, 'gpu2-run');
		for (const d of [
			...(options.secondGpu
				? [
						gpu2Home,
						gpu2Runtime,
						path.join(gpu2Home, '.config'),
						path.join(gpu2Home, '.local', 'state'),
						path.join(gpu2Home, '.local', 'share'),
					]
				: []),
			home,
			gpuHome,
			runtime,
			gpuRuntime,
			path.join(home, '.config'),
			path.join(home, '.local', 'state'),
			path.join(gpuHome, '.config'),
			path.join(gpuHome, '.local', 'state'),
			path.join(gpuHome, '.local', 'share'),
		]) {
			await mkdir(d, {recursive: true, mode: 0o700});
		}

		const clientKey = path.join(dir, 'id_ed25519');
		const [clientKeyPub, relayHostPub, gpuHostPub, bastionHostPub, gpu2HostPub, nodeHostPub] =
			await Promise.all([
				keygen(clientKey, 'gpujup-lab-client'),
				keygen(path.join(dir, 'relay_host_ed25519'), 'relay'),
				keygen(path.join(dir, 'gpu_host_ed25519'), 'gpu'),
				options.bastion ? keygen(path.join(dir, 'bastion_host_ed25519'), 'bastion') : null,
				options.secondGpu ? keygen(path.join(dir, 'gpu2_host_ed25519'), 'gpu2') : null,
				options.node ? keygen(path.join(dir, 'node_host_ed25519'), 'node') : null,
			]);

		const hostEnvFor = (hostHome: string, hostRuntime: string): Record<string, string> => ({
			HOME: hostHome,
			XDG_CONFIG_HOME: path.join(hostHome, '.config'),
			XDG_STATE_HOME: path.join(hostHome, '.local', 'state'),
			XDG_DATA_HOME: path.join(hostHome, '.local', 'share'),
			XDG_RUNTIME_DIR: hostRuntime,
			// Debian's jupyter and python3 before anything else (root's pyenv shims are not on it);
			// node's own dir last so `node` works in sessions too.
			PATH: [options.hostEnvPath, SYSTEM_PATH, path.dirname(process.execPath)]
				.filter(Boolean)
				.join(':'),
			...options.hostEnv,
		});
		const gpuEnvValues = hostEnvFor(gpuHome, gpuRuntime);
		const gpu2EnvValues = hostEnvFor(gpu2Home, gpu2Runtime);
		const keyOptionsFor = (values: Record<string, string>) =>
			Object.entries(values)
				.map(([key, value]) => `environment="${key}=${value}"`)
				.join(',');
		const gpuKeyOptions = keyOptionsFor(gpuEnvValues);

		const relayAuthorized = path.join(dir, 'relay_authorized_keys');
		const gpuAuthorized = path.join(dir, 'gpu_authorized_keys');
		const authorizedLine = (pubLine: string, target: 'relay' | 'gpu') => {
			const line = pubLine.trim();
			// Lines that already carry options are taken as they are.
			const bare = /^(ssh-|ecdsa-|sk-)/.test(line);
			return target === 'gpu' && bare ? `${gpuKeyOptions} ${line}\n` : `${line}\n`;
		};
		await writeFile(relayAuthorized, authorizedLine(clientKeyPub, 'relay'), {mode: 0o600});
		await writeFile(gpuAuthorized, authorizedLine(clientKeyPub, 'gpu'), {mode: 0o600});
		const gpu2Authorized = path.join(dir, 'gpu2_authorized_keys');
		if (gpu2HostPub)
			await writeFile(gpu2Authorized, `${keyOptionsFor(gpu2EnvValues)} ${clientKeyPub}\n`, {
				mode: 0o600,
			});

		const [relay, gpuSshd] = await Promise.all([
			makeSshd({
				name: 'relay',
				dir,
				hostKey: path.join(dir, 'relay_host_ed25519'),
				hostKeyPub: relayHostPub,
				authorizedKeys: relayAuthorized,
				extra: options.relayOptions ?? [],
				permitUserEnvironment: false,
			}),
			makeSshd({
				name: 'gpu',
				dir,
				hostKey: path.join(dir, 'gpu_host_ed25519'),
				hostKeyPub: gpuHostPub,
				authorizedKeys: gpuAuthorized,
				extra: options.gpuOptions ?? [],
				permitUserEnvironment: true,
				...(options.gpuLoginShell ? {loginShell: options.gpuLoginShell} : {}),
			}),
		]);
		cleanups.push(
			async () => relay.stop(),
			async () => gpuSshd.stop(),
		);
		/** One of the optional sshds (its host key made above, or none asked for: null). */
		const optionalSshd = async (
			name: 'bastion' | 'gpu2' | 'node',
			hostKeyPub: string | null,
			spec: Pick<SshdSpec, 'authorizedKeys' | 'extra' | 'permitUserEnvironment'>,
		): Promise<LabSshd | null> => {
			if (!hostKeyPub) return null;
			const sshd = await makeSshd({
				name,
				dir,
				hostKey: path.join(dir, `${name}_host_ed25519`),
				hostKeyPub,
				...spec,
			});
			cleanups.push(async () => sshd.stop());
			return sshd;
		};
		const bastion = await optionalSshd('bastion', bastionHostPub, {
			authorizedKeys: relayAuthorized,
			extra: [],
			permitUserEnvironment: false,
		});
		const gpu2Sshd = await optionalSshd('gpu2', gpu2HostPub, {
			authorizedKeys: gpu2Authorized,
			extra: options.gpuOptions ?? [],
			permitUserEnvironment: true,
		});
		const node = await optionalSshd('node', nodeHostPub, {
			authorizedKeys: gpuAuthorized,
			extra: [],
			permitUserEnvironment: true,
		});

		const relayPort = await freePort();
		const relayPort2 = gpu2Sshd ? await freePort() : 0;
		const knownHosts = path.join(dir, 'known_hosts');
		await writeFile(
			knownHosts,
			`[127.0.0.1]:${relay.port} ${relayHostPub}\n[localhost]:${relayPort} ${gpuHostPub}\n${
				bastion ? `[127.0.0.1]:${bastion.port} ${bastion.hostKeyPub}\n` : ''
			}${gpu2HostPub ? `[localhost]:${relayPort2} ${gpu2HostPub}\n` : ''}${node ? `[localhost]:${node.port} ${node.hostKeyPub}\n` : ''}`,
			{mode: 0o600},
		);

		const common = [...sshClientOptions(clientKey, knownHosts), '  LogLevel ERROR'];
		const sshConfig = path.join(dir, 'ssh_config');
		await writeFile(
			sshConfig,
			[
				'Host relay',
				'  HostName 127.0.0.1',
				`  Port ${relay.port}`,
				...common,
				'Host gpu',
				'  HostName localhost',
				`  Port ${relayPort}`,
				'  ProxyJump relay',
				...common,
				...(gpu2Sshd
					? [
							'Host gpu2',
							'  HostName localhost',
							`  Port ${relayPort2}`,
							'  ProxyJump relay',
							...common,
						]
					: []),
				'',
			].join('\n'),
			{mode: 0o600},
		);

		const baseEnv = (): NodeJS.ProcessEnv => {
			const env = {...process.env};
			delete env.SSH_AUTH_SOCK;
			delete env.SSH_AGENT_PID;
			delete env.NO_COLOR;
			delete env.TMUX;
			delete env.TMUX_PANE;
			env.CI = 'false';
			return env;
		};

		const sshEnv = baseEnv();
		sshEnv.HOME = home;

		const reverseAlive = options.reverseAliveSeconds ?? 5;
		/** The seed's `ssh -R port:localhost:<sshd>` to the relay, for one GPU host. */
		const reverseTunnel = (port: number, sshd: () => number) => {
			let proc: ChildProcess | undefined;
			let stderr = '';
			const running = () =>
				proc !== undefined && proc.exitCode === null && proc.signalCode === null;
			const stop = async () => {
				const current = proc;
				proc = undefined;
				if (current) await stopChild(current, {graceMs: 2000});
				// The relay frees the port when it notices the session ended.
				await waitFor(async () => portRefuses(port), {
					timeoutMs: 15_000,
					message: `relay port ${port} closed after the reverse tunnel stopped`,
				});
			};

			const start = async () => {
				if (running()) return;
				stderr = '';
				const child = spawn(
					SSH,
					[
						'-N',
						'-F',
						'/dev/null',
						'-o',
						'ExitOnForwardFailure=yes',
						'-o',
						'StrictHostKeyChecking=yes',
						'-o',
						`UserKnownHostsFile=${knownHosts}`,
						'-o',
						'GlobalKnownHostsFile=/dev/null',
						'-o',
						'BatchMode=yes',
						'-o',
						'IdentitiesOnly=yes',
						'-o',
						'IdentityAgent=none',
						'-o',
						`ServerAliveInterval=${reverseAlive}`,
						'-o',
						'ServerAliveCountMax=3',
						'-i',
						clientKey,
						'-R',
						`${port}:localhost:${sshd()}`,
						'-p',
						String(relay.port),
						'root@127.0.0.1',
					],
					{stdio: ['ignore', 'ignore', 'pipe'], env: sshEnv},
				);
				child.on('error', () => {});
				child.stderr?.setEncoding('utf8');
				child.stderr?.on('data', (chunk: string) => (stderr += chunk));
				proc = child;
				try {
					await waitFor(
						async () => {
							if (child.exitCode !== null || child.signalCode !== null) {
								throw Object.assign(
									new Error(
										`reverse ssh exited (${child.exitCode ?? child.signalCode}): ${stderr}`,
									),
								);
							}
							return (await readBanner(port)).startsWith('SSH-2.0-');
						},
						{timeoutMs: 20_000, message: `GPU host banner on relay port ${port}`},
					);
				} catch (error: unknown) {
					proc = undefined;
					await stopChild(child, {graceMs: 1000});
					throw error;
				}
			};

			return {
				running,
				start,
				stop,
				/** The relay's sessions were dropped: the `ssh -R` exits; make sure it is gone. */
				async reap() {
					const current = proc;
					proc = undefined;
					if (current) {
						await Promise.race([
							exited(current),
							new Promise((resolve) => setTimeout(resolve, 10_000)),
						]);
						await stopChild(current, {graceMs: 1000});
					}
				},
				async dispose() {
					if (proc) await stopChild(proc, {graceMs: 1000});
					proc = undefined;
				},
			};
		};

		const reverse = reverseTunnel(relayPort, () => gpuSshd.port);
		const reverse2 = gpu2Sshd ? reverseTunnel(relayPort2, () => gpu2Sshd.port) : null;
		const stopReverse = reverse.stop;
		const startReverse = reverse.start;
		cleanups.push(async () => {
			await reverse.dispose();
			await reverse2?.dispose();
		});

		const runSsh = async (args: readonly string[], runOptions: {timeoutMs?: number} = {}) =>
			new Promise<SshResult>((resolve) => {
				const proc = spawn(SSH, args, {stdio: ['ignore', 'pipe', 'pipe'], env: sshEnv});
				let stdout = '';
				let stderr = '';
				proc.stdout.setEncoding('utf8');
				proc.stderr.setEncoding('utf8');
				proc.stdout.on('data', (chunk: string) => (stdout += chunk));
				proc.stderr.on('data', (chunk: string) => (stderr += chunk));
				const timer = setTimeout(() => proc.kill('SIGKILL'), runOptions.timeoutMs ?? 30_000);
				proc.on('error', (error) => {
					clearTimeout(timer);
					resolve({code: null, stdout, stderr: stderr + String(error)});
				});
				proc.on('close', (code) => {
					clearTimeout(timer);
					resolve({code, stdout, stderr});
				});
			});

		const spawned = new Set<ChildProcess>();
		cleanups.push(async () => {
			await Promise.all([...spawned].map(async (proc) => stopChild(proc, {graceMs: 1000})));
		});

		const gpu = Object.defineProperty(gpuSshd, 'sshPort', {
			get: () => gpuSshd.port,
			enumerable: true,
		}) as LabSshd & {readonly sshPort: number};

		const gpu2: LabSecondGpu | null =
			gpu2Sshd && reverse2
				? (Object.defineProperties(gpu2Sshd, {
						sshPort: {get: () => gpu2Sshd.port, enumerable: true},
						relayPort: {value: relayPort2, enumerable: true},
						home: {value: gpu2Home, enumerable: true},
						env: {value: () => ({...baseEnv(), ...gpu2EnvValues})},
						reverseRunning: {value: reverse2.running},
						stopReverse: {value: reverse2.stop},
						startReverse: {value: reverse2.start},
					}) as LabSecondGpu)
				: null;

		const lab: Lab = {
			relay,
			bastion,
			gpu2,
			node,
			gpu,
			relayPort,
			user: 'root',
			clientKey,
			clientKeyPub,
			knownHosts,
			sshConfig,
			dir,
			home,
			gpuHome,
			env() {
				const env = baseEnv();
				env.HOME = home;
				env.XDG_CONFIG_HOME = path.join(home, '.config');
				env.XDG_STATE_HOME = path.join(home, '.local', 'state');
				env.XDG_RUNTIME_DIR = runtime;
				return env;
			},
			gpuEnv() {
				return {...baseEnv(), ...gpuEnvValues};
			},
			sshArgs: () => ['-F', sshConfig, 'gpu'],
			relaySshArgs: () => ['-F', sshConfig, 'relay'],
			ssh: runSsh,
			spawnSsh(args) {
				const proc = spawn(SSH, args, {stdio: ['ignore', 'pipe', 'pipe'], env: sshEnv});
				proc.on('error', () => {});
				spawned.add(proc);
				proc.once('exit', () => spawned.delete(proc));
				return proc;
			},
			reverseRunning: reverse.running,
			stopReverse,
			startReverse,
			async dropRelaySessions() {
				await relay.dropSessions();
				// The OpenSSH -R clients exit once their relay sessions are gone.
				await Promise.all([reverse.reap(), reverse2?.reap()]);
			},
			async addAuthorizedKey(pubLine, target) {
				await appendFile(
					target === 'relay' ? relayAuthorized : gpuAuthorized,
					authorizedLine(pubLine, target),
				);
			},
			async dispose() {
				for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
				await temp.dispose();
			},
		};

		if ((options.reverse ?? 'openssh') === 'openssh')
			await Promise.all([startReverse(), reverse2?.start()]);
		return lab;
	} catch (error: unknown) {
		for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
		await temp.dispose();
		throw error;
	}
}
