import {execFile} from 'node:child_process';
import {access, mkdir, readFile, writeFile} from 'node:fs/promises';
import path from 'node:path';
import {promisify} from 'node:util';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {hostCredentialsExitCode} from '../../source/core/exit-codes.js';
import {runGpujup} from '../e2e/gpujup-process.js';
import {samples} from '../helpers/nvidia-smi-samples.js';
import {startLab, type Lab} from '../helpers/openssh-lab.js';
import {freePort} from '../helpers/ports.js';
import {connectArgs, hostArgs, startChain, type Chain} from '../faults/fixture.js';

const execFileP = promisify(execFile);

type Line = {
	type: string;
	hop?: string;
	state?: string;
	attempt?: number;
	error?: {kind: string; message: string} | null;
};

const parseLines = (stdout: string): Line[] =>
	stdout
		.split('\n')
		.filter((line) => line.trim())
		.map((line) => JSON.parse(line) as Line);

const exists = async (file: string) =>
	access(file).then(
		() => true,
		() => false,
	);

/** Host keys (a changed one is refused on every hop) and ~/.ssh/config that never runs code. */
describe('host keys and ssh config', () => {
	let chain: Chain;
	let otherKey: string;

	beforeAll(async () => {
		// A GPU host with a (replaying) nvidia-smi, so that doctor can pass every step.
		chain = await startChain({lab: {nvidiaSmi: {captures: [samples.captures[2]]}}});
		const file = path.join(chain.scratch, 'impostor');
		await execFileP('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'impostor', '-f', file]);
		// 'ssh-ed25519 AAAA…': what a man in the middle's key looks like.
		otherKey = (await readFile(`${file}.pub`, 'utf8')).trim().split(' ').slice(0, 2).join(' ');
	});

	afterAll(async () => {
		await chain?.dispose();
	});

	/** A copy of the lab's known_hosts with `name`'s key swapped for the impostor's. */
	const changedKnownHosts = async (name: string): Promise<string> => {
		const original = await readFile(chain.lab.knownHosts, 'utf8');
		const lines = original.split('\n');
		const at = lines.findIndex((line) => line.startsWith(`${name} `));
		expect(at, `${name} in ${original}`).toBeGreaterThanOrEqual(0);
		lines[at] = `${name} ${otherKey}`;
		const file = path.join(chain.scratch, `known_hosts-changed-${name.replaceAll(/\W/g, '_')}`);
		await writeFile(file, lines.join('\n'), {mode: 0o600});
		return file;
	};

	const expectRefused = (
		result: {code: number | null; stdout: string},
		hop: string,
		exitCode = 1,
	) => {
		expect(result.code).toBe(exitCode);
		const lines = parseLines(result.stdout);
		const failed = lines.find((line) => line.type === 'hop' && line.state === 'failed');
		expect(failed?.hop).toBe(hop);
		expect(failed?.error?.kind).toBe('host-key');
		// Both fingerprints, so the user can compare.
		expect(failed?.error?.message.match(/SHA256:/g)?.length ?? 0).toBeGreaterThanOrEqual(2);
		// Never retried, never a hop of this kind past it.
		expect(lines.filter((line) => line.hop === hop && line.state === 'ready')).toEqual([]);
		expect(
			Math.max(0, ...lines.filter((l) => l.hop === hop).map((l) => l.attempt ?? 0)),
		).toBeLessThanOrEqual(1);
		return lines;
	};

	it('connect refuses a changed relay key', async () => {
		const knownHosts = await changedKnownHosts(`[127.0.0.1]:${chain.lab.relay.port}`);
		const result = await runGpujup(
			connectArgs(chain.lab, {jupyterPort: chain.jupyterPort, knownHosts}),
			chain.lab.env(),
		);
		const lines = expectRefused(result, 'relay');
		expect(lines.some((line) => line.hop === 'host' && line.state === 'ready')).toBe(false);
	}, 240_000);

	it('connect refuses a changed GPU host key (second hop) after the relay hop succeeded', async () => {
		const knownHosts = await changedKnownHosts(`[localhost]:${chain.lab.relayPort}`);
		const result = await runGpujup(
			connectArgs(chain.lab, {jupyterPort: chain.jupyterPort, knownHosts}),
			chain.lab.env(),
		);
		const lines = expectRefused(result, 'host');
		expect(lines.some((line) => line.hop === 'relay' && line.state === 'ready')).toBe(true);
		// The known_hosts file was not "fixed" behind the user's back.
		expect(await readFile(knownHosts, 'utf8')).toContain(otherKey);
	}, 240_000);

	it('host refuses a changed relay key for its reverse tunnel', async () => {
		const knownHosts = await changedKnownHosts(`[127.0.0.1]:${chain.lab.relay.port}`);
		const jupyterPort = await freePort();
		const args = hostArgs(chain.lab, {jupyterPort, notebookDir: chain.scratch, knownHosts});
		try {
			const result = await runGpujup(args, chain.lab.gpuEnv());
			// gpujup host ends with its own status, so systemd does not restart into the refusal.
			expectRefused(result, 'reverse', hostCredentialsExitCode);
		} finally {
			// A Jupyter it may have started outlives it by design.
			await runGpujup([...args, '--stop-jupyter'], chain.lab.gpuEnv()).catch(() => undefined);
		}
	}, 240_000);

	it('an upper-case relay name finds its hashed entry: a changed key is refused, even with --accept-new', async () => {
		// What `ssh -p PORT localhost` recorded (hashed, as Debian's HashKnownHosts does), here with
		// a man in the middle's key; the user types the name in upper case.
		const name = `[localhost]:${chain.lab.relay.port}`;
		const knownHosts = path.join(chain.scratch, 'known_hosts-hashed-localhost');
		const gpuLine = (await readFile(chain.lab.knownHosts, 'utf8'))
			.split('\n')
			.find((line) => line.startsWith(`[localhost]:${chain.lab.relayPort} `));
		await writeFile(knownHosts, `${name} ${otherKey}\n${gpuLine}\n`, {mode: 0o600});
		await execFileP('ssh-keygen', ['-H', '-f', knownHosts]);
		const before = await readFile(knownHosts, 'utf8');
		expect(before).not.toContain('localhost');
		// The oracle: the real ssh, given the name in upper case, says the key changed.
		const ssh = await execFileP(
			'ssh',
			[
				'-F',
				'/dev/null',
				'-o',
				'BatchMode=yes',
				'-o',
				`UserKnownHostsFile=${knownHosts}`,
				'-o',
				'GlobalKnownHostsFile=/dev/null',
				'-o',
				'StrictHostKeyChecking=accept-new',
				'-p',
				String(chain.lab.relay.port),
				'LOCALHOST',
				'true',
			],
			{timeout: 30_000},
		).catch((error: {stderr: string}) => error);
		expect(ssh.stderr).toContain('REMOTE HOST IDENTIFICATION HAS CHANGED');

		const args = connectArgs(chain.lab, {
			jupyterPort: chain.jupyterPort,
			knownHosts,
			extra: ['--accept-new'],
		});
		args[args.indexOf('--relay') + 1] = `root@LOCALHOST:${chain.lab.relay.port}`;
		const result = await runGpujup(args, chain.lab.env());
		expectRefused(result, 'relay');
		// Nothing was recorded next to the entry it missed.
		expect(await readFile(knownHosts, 'utf8')).toBe(before);
	}, 240_000);

	it('never runs `Match exec` from ~/.ssh/config (status, doctor), though it reads the config', async () => {
		const sshDir = path.join(chain.lab.home, '.ssh');
		await mkdir(sshDir, {recursive: true, mode: 0o700});
		const markers = [1, 2, 3, 4].map((n) => path.join(chain.scratch, `match-exec-ran-${n}`));
		const included = path.join(sshDir, 'extra.conf');
		await writeFile(
			included,
			[
				`Match exec "touch ${markers[2]}"`,
				'  User root',
				`Match host gpurelay exec "touch ${markers[3]}"`,
				'  Port 1',
				'',
			].join('\n'),
			{mode: 0o600},
		);
		await writeFile(
			path.join(sshDir, 'config'),
			[
				`Match exec "touch ${markers[0]}"`,
				'  User nobody',
				'Host gpurelay',
				'  HostName 127.0.0.1',
				`  Port ${chain.lab.relay.port}`,
				'  User root',
				`  IdentityFile ${chain.lab.clientKey}`,
				`Match originalhost gpurelay exec "touch ${markers[1]}"`,
				'  Port 2',
				`Include ${included}`,
				'',
			].join('\n'),
			{mode: 0o600},
		);
		const common = [
			'--relay',
			'gpurelay',
			'--relay-port',
			String(chain.lab.relayPort),
			'--jupyter-port',
			String(chain.jupyterPort),
			'--known-hosts',
			chain.lab.knownHosts,
			'--keepalive',
			'1',
		];
		const status = await runGpujup(['status', '--json', ...common], chain.lab.env());
		const doctor = await runGpujup(['doctor', ...common], chain.lab.env());
		for (const marker of markers) expect(await exists(marker), marker).toBe(false);
		// The alias was resolved from the config (HostName, Port, User, IdentityFile): every step got
		// through, so the file was read, only its `exec` was not run.
		expect(doctor.stdout).toMatch(/auth/);
		expect(doctor.code, doctor.stdout).toBe(0);
		const object = JSON.parse(status.stdout) as {hops: Array<{hop: string; state: string}>};
		expect(object.hops.find((hop) => hop.hop === 'relay')?.state, status.stdout).toBe('ready');
		expect(status.code).toBe(0);
	}, 240_000);

	/** Writes the laptop's ~/.ssh/config: the relay as `gpurelay`, then `extra` lines. */
	const writeSshConfig = async (relayLines: string[], extra: string[] = []): Promise<string> => {
		const sshDir = path.join(chain.lab.home, '.ssh');
		await mkdir(sshDir, {recursive: true, mode: 0o700});
		const file = path.join(sshDir, 'config');
		await writeFile(
			file,
			[
				'Host gpurelay',
				'  HostName 127.0.0.1',
				`  Port ${chain.lab.relay.port}`,
				'  User root',
				`  IdentityFile ${chain.lab.clientKey}`,
				'  IdentitiesOnly yes',
				'  IdentityAgent none',
				'  BatchMode yes',
				...relayLines,
				...extra,
				'',
			].join('\n'),
			{mode: 0o600},
		);
		return file;
	};

	/** `gpujup status --json` for `gpujup --relay gpurelay`, without --known-hosts unless given. */
	const statusVia = async (extra: string[] = []) => {
		const result = await runGpujup(
			[
				'status',
				'--json',
				'--relay',
				'gpurelay',
				'--relay-port',
				String(chain.lab.relayPort),
				'--jupyter-port',
				String(chain.jupyterPort),
				'--keepalive',
				'1',
				...extra,
			],
			chain.lab.env(),
		);
		const object = JSON.parse(result.stdout) as {
			hops: Array<{hop: string; state: string; error: {kind: string; message: string} | null}>;
		};
		return {result, hops: object.hops};
	};

	const expectBothReady = async () => {
		const {result, hops} = await statusVia();
		const states = hops.map((hop) => [hop.hop, hop.state]);
		expect(states, result.stdout).toEqual([
			['relay', 'ready'],
			['host', 'ready'],
		]);
	};

	/** The real ssh with the same ~/.ssh/config (`-F`: ssh takes ~ from the password database). */
	const sshVia = async (config: string, args: string[]) =>
		execFileP('ssh', ['-F', config, ...args, 'true'], {timeout: 30_000}).then(
			() => ({code: 0, stderr: ''}),
			(error: {code: number; stderr: string}) => ({code: error.code, stderr: error.stderr}),
		);

	/** ssh's arguments for the GPU host through the relay, as `ssh -J gpurelay -p PORT localhost`. */
	const viaRelay = () => [
		'-J',
		'gpurelay',
		'-p',
		String(chain.lab.relayPort),
		'-i',
		chain.lab.clientKey,
		'root@localhost',
	];

	const relayKnownLine = (name: string) => `${name} ${chain.lab.relay.hostKeyPub}`;
	const gpuKnownLine = () => `[localhost]:${chain.lab.relayPort} ${chain.lab.gpu.hostKeyPub}`;

	it('the relay key is looked up under its HostName: an entry for the alias typed does not vouch for it', async () => {
		const knownHosts = path.join(chain.scratch, 'known_hosts-alias-only');
		await writeFile(
			knownHosts,
			`${relayKnownLine(`[gpurelay]:${chain.lab.relay.port}`)}\n${gpuKnownLine()}\n`,
			{mode: 0o600},
		);
		const config = await writeSshConfig(['  GlobalKnownHostsFile /dev/null']);
		// The oracle: ssh looks up [127.0.0.1]:port only, finds nothing, and refuses.
		const ssh = await sshVia(config, [
			'-o',
			`UserKnownHostsFile=${knownHosts}`,
			'-o',
			'StrictHostKeyChecking=yes',
			'gpurelay',
		]);
		expect(ssh.stderr).toMatch(/No [A-Z\d]+ host key is known for \[127\.0\.0\.1\]/);
		const {hops} = await statusVia(['--known-hosts', knownHosts]);
		const relay = hops.find((hop) => hop.hop === 'relay');
		expect(relay?.state).not.toBe('ready');
		expect(relay?.error?.kind).toBe('host-key');
		expect(relay?.error?.message).toMatch(/host key for \[127\.0\.0\.1\]:\d+ is unknown/);
	}, 240_000);

	it('reads UserKnownHostsFile, GlobalKnownHostsFile and HostKeyAlias from ~/.ssh/config, as ssh does', async () => {
		const user = path.join(chain.scratch, 'kh-user');
		const global = path.join(chain.scratch, 'kh-global');
		// The relay under its HostKeyAlias in the user file, the GPU host in the global one.
		await writeFile(user, `${relayKnownLine('myrelay')}\n`, {mode: 0o600});
		await writeFile(global, `${gpuKnownLine()}\n`, {mode: 0o600});
		const config = await writeSshConfig(
			[
				`  UserKnownHostsFile ${user}`,
				`  GlobalKnownHostsFile ${global}`,
				'  HostKeyAlias MyRelay',
			],
			['Host localhost', `  UserKnownHostsFile ${user}`, `  GlobalKnownHostsFile ${global}`],
		);
		const ssh = await sshVia(config, ['-o', 'StrictHostKeyChecking=yes', 'gpurelay']);
		expect(ssh, ssh.stderr).toEqual({code: 0, stderr: ''});
		const gpuSsh = await sshVia(config, ['-o', 'StrictHostKeyChecking=yes', ...viaRelay()]);
		expect(gpuSsh, gpuSsh.stderr).toEqual({code: 0, stderr: ''});
		await expectBothReady();
		// Nothing was added anywhere: both keys were known.
		expect(await readFile(user, 'utf8')).toBe(`${relayKnownLine('myrelay')}\n`);
	}, 240_000);

	it('StrictHostKeyChecking accept-new and HashKnownHosts yes: new keys recorded hashed, and ssh then accepts them', async () => {
		const fresh = path.join(chain.scratch, 'kh-fresh', 'known_hosts');
		const config = await writeSshConfig(
			[],
			[
				'Host *',
				`  UserKnownHostsFile ${fresh}`,
				'  GlobalKnownHostsFile /dev/null',
				'  StrictHostKeyChecking accept-new',
				'  HashKnownHosts yes',
			],
		);
		await expectBothReady();
		const text = await readFile(fresh, 'utf8');
		const lines = text.trim().split('\n');
		expect(lines).toHaveLength(2);
		for (const line of lines) expect(line).toMatch(/^\|1\|\S+\|\S+ ssh-ed25519 /);
		expect(text).not.toMatch(/localhost|127\.0\.0\.1/);
		for (const name of [
			`[127.0.0.1]:${chain.lab.relay.port}`,
			`[localhost]:${chain.lab.relayPort}`,
		]) {
			const found = await execFileP('ssh-keygen', ['-F', name, '-f', fresh]);
			expect(found.stdout, name).toMatch(/found: line \d/);
		}

		// The real ssh, which must not ask or add anything, accepts both recorded keys.
		const strict = ['-o', 'StrictHostKeyChecking=yes'];
		expect(await sshVia(config, [...strict, 'gpurelay'])).toEqual({code: 0, stderr: ''});
		expect(await sshVia(config, [...strict, ...viaRelay()])).toEqual({code: 0, stderr: ''});
		expect(await readFile(fresh, 'utf8')).toBe(text);
	}, 240_000);

	it('doctor: a new key recorded by --accept-new is not "matches", then auth fails', async () => {
		const knownHosts = path.join(chain.scratch, 'known_hosts-empty-accept-new');
		await writeFile(knownHosts, '', {mode: 0o600});
		const stranger = path.join(chain.scratch, 'stranger');
		await execFileP('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', stranger]);
		const result = await runGpujup(
			[
				'doctor',
				'--relay',
				`root@127.0.0.1:${chain.lab.relay.port}`,
				'--relay-port',
				String(chain.lab.relayPort),
				'-i',
				stranger,
				'--known-hosts',
				knownHosts,
				'--accept-new',
			],
			chain.lab.env(),
		);
		expect(result.code, result.stdout).toBe(1);
		const keyLine = result.stdout.split('\n').find((line) => /^. host key/.test(line)) ?? '';
		const fingerprint = (
			await execFileP('ssh-keygen', ['-l', '-E', 'sha256', '-f', knownHosts])
		).stdout.split(' ')[1];
		expect(keyLine).toMatch(/^✓ host key\s+new key ED25519 SHA256:/);
		expect(keyLine).toContain(`${fingerprint} recorded in ${knownHosts}`);
		expect(keyLine).not.toContain('matches');
		expect(result.stdout).toMatch(/^✗ auth/m);
	}, 240_000);
});

/** doctor's ✓ for the host key means a key was checked: never for a relay that failed before. */
describe('doctor with a relay whose key exchange fails', () => {
	let lab: Lab;

	beforeAll(async () => {
		// A real OpenSSH relay that offers only a key exchange ssh2 lacks: the session fails before
		// any host key is shown, for a reason other than the key.
		lab = await startLab({
			reverse: 'none',
			relayOptions: ['KexAlgorithms sntrup761x25519-sha512@openssh.com'],
		});
	});

	afterAll(async () => {
		await lab?.dispose();
	});

	it('prints no ✓ host key line with an empty known_hosts', async () => {
		const knownHosts = path.join(lab.dir, 'known_hosts-empty');
		await writeFile(knownHosts, '', {mode: 0o600});
		const result = await runGpujup(
			[
				'doctor',
				'--relay',
				`root@127.0.0.1:${lab.relay.port}`,
				'--relay-port',
				String(lab.relayPort),
				'-i',
				lab.clientKey,
				'--known-hosts',
				knownHosts,
			],
			lab.env(),
		);
		expect(result.code, result.stdout).toBe(1);
		expect(result.stdout).toMatch(/^✓ TCP/m);
		expect(result.stdout).not.toMatch(/^✓ host key/m);
		expect(result.stdout).not.toMatch(/^✓ auth/m);
		expect(result.stdout).toMatch(/^✗ SSH\s+.*key exchange|^✗ SSH\s+.*algorithm/im);
	}, 240_000);
});
