/**
 * Pairing against real OpenSSH: `gpujup host --pair` on the GPU host, `gpujup pair` on the laptop,
 * then a first connect with an empty known_hosts that trusts nothing on first use: both keys are
 * checked against their pins and recorded hashed. A GPU sshd with another key is refused.
 */
import {execFile} from 'node:child_process';
import {readFile, rm, stat, writeFile} from 'node:fs/promises';
import path from 'node:path';
import {promisify} from 'node:util';
import {parse as parseToml} from 'smol-toml';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {parsePairing} from '../../source/core/pairing.js';
import {startLab, type Lab} from '../helpers/openssh-lab.js';
import {freePort, tempDir, type TempDir} from '../helpers/ports.js';
import {hostKeyQuestion} from '../../source/components/prompt-view.js';
import {startTmux} from '../helpers/tmux.js';
import {waitFor} from '../helpers/wait-for.js';
import {cli, hostLabHooks, labHostArgs, runGpujup, spawnGpujup} from './gpujup-process.js';

const execFileP = promisify(execFile);

/** The SHA256 fingerprint `ssh-keygen -lf` prints for a public key line. */
async function keygenFingerprint(dir: string, pubLine: string): Promise<string> {
	const file = path.join(dir, `key-${Math.random().toString(36).slice(2)}.pub`);
	await writeFile(file, `${pubLine}\n`);
	const {stdout} = await execFileP('ssh-keygen', ['-lf', file]);
	return stdout.split(' ')[1]!;
}

/** `ssh-keygen -F NAME -f FILE`: the lines found for NAME (hashed ones match too). */
async function findKnownHost(name: string, file: string): Promise<string[]> {
	const result = await execFileP('ssh-keygen', ['-F', name, '-f', file]).catch(
		(error: {stdout?: string}) => ({stdout: error.stdout ?? ''}),
	);
	return result.stdout.split('\n').filter((line) => line !== '' && !line.startsWith('#'));
}

describe('pairing', () => {
	const fixture = hostLabHooks('gpujup-pair-nb-');

	const hostArgs = () => labHostArgs(fixture.lab, fixture.jupyterPort, fixture.dir.path);
	const laptopKnownHosts = () => path.join(fixture.lab.home, '.ssh', 'known_hosts');
	const connectArgs = (profile: string, extra: string[] = []) => [
		'connect',
		'--no-tui',
		'--profile',
		profile,
		'--identity',
		fixture.lab.clientKey,
		'--local-port',
		'0',
		'--keepalive',
		'1',
		...extra,
	];

	it('host --pair, pair, then a first connect with no question that records hashed lines; another GPU key is refused', async () => {
		const relayPin = await keygenFingerprint(fixture.lab.dir, fixture.lab.relay.hostKeyPub);
		const gpuPin = await keygenFingerprint(fixture.lab.dir, fixture.lab.gpu.hostKeyPub);

		// Nothing on the relay's port yet: --pair holds it for the time it takes.
		const paired = await runGpujup([...hostArgs(), '--pair'], fixture.lab.gpuEnv());
		expect(paired.code, paired.stderr).toBe(0);
		const pairing = paired.stdout.trim();
		expect(paired.stdout.split('\n').filter(Boolean)).toHaveLength(1);
		expect(pairing).toBe(
			`gpujup://root@127.0.0.1:${fixture.lab.relay.port}?relay-port=${fixture.lab.relayPort}&host-user=root&jupyter-port=${fixture.jupyterPort}&relay-key=${relayPin}&host-key=${gpuPin}`,
		);
		expect(paired.stderr).toContain(`gpujup pair '${pairing}'`);

		// A running gpujup host says the same at start, and --pair beside it (its tunnel holds the
		// port) still answers.
		const host = spawnGpujup(hostArgs(), fixture.lab.gpuEnv());
		fixture.children.push(host);
		const logged = await host.waitForLine(
			(l) => l.type === 'log' && String(l['line']).includes('pair a laptop'),
			{timeoutMs: 90_000},
		);
		expect(logged['line']).toBe(`[gpujup] pair a laptop: gpujup pair '${pairing}'`);
		const again = await runGpujup([...hostArgs(), '--pair'], fixture.lab.gpuEnv());
		expect(again.code, again.stderr).toBe(0);
		expect(again.stdout.trim()).toBe(pairing);

		// The laptop: a bad string is refused with what is wrong; a good one becomes a profile.
		const cut = await runGpujup(
			['pair', pairing.slice(0, pairing.indexOf('&'))],
			fixture.lab.env(),
		);
		expect(cut.code).toBe(2);
		expect(cut.stderr).toMatch(/missing host-user, jupyter-port, relay-key, host-key.*quote it/i);
		// A config whose `profiles` is a TOML date, not a table: refused, the file left as it was.
		const dated = path.join(fixture.lab.home, 'dated.toml');
		await writeFile(dated, 'profiles = 1979-05-27\n', {mode: 0o600});
		const onDate = await runGpujup(['pair', pairing, '--config', dated], fixture.lab.env());
		expect(onDate.code).toBe(2);
		expect(onDate.stderr).toMatch(
			/"profiles" is not a table of \[profiles\.NAME\]; nothing was written/,
		);
		expect(await readFile(dated, 'utf8')).toBe('profiles = 1979-05-27\n');
		const wrote = await runGpujup(['pair', pairing], fixture.lab.env());
		expect(wrote.code, wrote.stderr).toBe(0);
		expect(wrote.stdout).toContain('gpujup --profile 127.0.0.1');
		const configFile = path.join(fixture.lab.home, '.config', 'gpujup', 'config.toml');
		const config = await readFile(configFile, 'utf8');
		expect(config).toContain('[profiles."127.0.0.1"]');
		expect(config).toContain(`relay-key = "${relayPin}"`);
		expect(config).toContain(`host-key = "${gpuPin}"`);
		// Never replaced silently.
		const clobber = await runGpujup(['pair', pairing], fixture.lab.env());
		expect(clobber.code).toBe(2);
		expect(clobber.stderr).toMatch(/already exists.*--name NAME/);
		expect(await readFile(configFile, 'utf8')).toBe(config);
		const named = await runGpujup(['pair', pairing, '--name', 'p507'], fixture.lab.env());
		expect(named.code, named.stderr).toBe(0);

		// First connect: known_hosts does not exist, nothing can be asked under --no-tui.
		await rm(laptopKnownHosts(), {force: true});
		const connect = spawnGpujup(connectArgs('p507'), fixture.lab.env());
		fixture.children.push(connect);
		await connect.waitForLine((l) => l.type === 'hop' && l.hop === 'host' && l.state === 'ready', {
			timeoutMs: 90_000,
		});
		await connect.waitForLine((l) => l.type === 'jupyter' && l.state === 'running', {
			timeoutMs: 120_000,
		});
		expect(await connect.stop()).toBe(0);
		const known = await readFile(laptopKnownHosts(), 'utf8');
		const relayLines = await findKnownHost(
			`[127.0.0.1]:${fixture.lab.relay.port}`,
			laptopKnownHosts(),
		);
		const gpuLines = await findKnownHost(
			`[localhost]:${fixture.lab.relayPort}`,
			laptopKnownHosts(),
		);
		expect(relayLines).toEqual([expect.stringMatching(/^\|1\|\S+ ssh-ed25519 /)]);
		expect(gpuLines).toEqual([expect.stringMatching(/^\|1\|\S+ ssh-ed25519 /)]);
		expect(relayLines[0]).toContain(fixture.lab.relay.hostKeyPub.split(' ')[1]!);
		expect(gpuLines[0]).toContain(fixture.lab.gpu.hostKeyPub.split(' ')[1]!);
		expect(known).not.toContain('127.0.0.1');
		expect(known).not.toContain('localhost');

		// The GPU host's sshd comes back with another key: refused against the pin, even with an
		// empty known_hosts that would otherwise only ask; nothing recorded for it.
		const hostKey = path.join(fixture.lab.dir, 'gpu_host_ed25519');
		await rm(hostKey);
		await rm(`${hostKey}.pub`);
		await execFileP('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey]);
		await fixture.lab.gpu.restart();
		const empty = path.join(fixture.lab.dir, 'laptop-empty-known-hosts');
		await writeFile(empty, '', {mode: 0o600});
		const refused = spawnGpujup(connectArgs('p507', ['--known-hosts', empty]), fixture.lab.env());
		fixture.children.push(refused);
		const error = await refused.waitForLine(
			(l) => l.type === 'hop' && l.hop === 'host' && l.state === 'failed',
			{timeoutMs: 90_000},
		);
		expect(error['error']).toMatchObject({kind: 'host-key'});
		const message = (error['error'] as {message: string}).message;
		expect(message).toMatch(/does not match its pin/i);
		expect(message).toContain(gpuPin);
		expect(message).toMatch(/gpujup host --pair.*gpujup pair/);
		expect(await refused.exited()).toBe(1);
		expect(await findKnownHost(`[localhost]:${fixture.lab.relayPort}`, empty)).toEqual([]);
		// The relay matched its pin: recorded, hashed.
		expect(await findKnownHost(`[127.0.0.1]:${fixture.lab.relay.port}`, empty)).toHaveLength(1);
		// doctor names the same failure, and the fix is to pair again, not to edit known_hosts.
		const doctor = await runGpujup(
			['doctor', '--profile', 'p507', '--identity', fixture.lab.clientKey, '--known-hosts', empty],
			fixture.lab.env(),
		);
		expect(doctor.code).toBe(1);
		expect(doctor.stdout).toMatch(/does not match its pin/i);
		expect(doctor.stdout).toMatch(/before you pair again/);

		// And a fresh pairing picks up the new key.
		const repaired = parsePairing(
			(await runGpujup([...hostArgs(), '--pair'], fixture.lab.gpuEnv())).stdout,
		);
		expect(repaired.hostKey).not.toBe(gpuPin);
		expect(repaired.relayKey).toBe(relayPin);
	});

	it('host --pair with the relay unreachable says so and exits 1', async () => {
		const args = hostArgs();
		args[args.indexOf('--relay') + 1] = `root@127.0.0.1:${await freePort()}`;
		const result = await runGpujup([...args, '--pair'], fixture.lab.gpuEnv());
		expect(result.code).toBe(1);
		expect(result.stdout).toBe('');
		expect(result.stderr).toMatch(/host --pair: no pairing string: .*connection refused/);
	});
});

/**
 * A relay with two host keys, known to the GPU host and to the laptop by its ECDSA one only (what
 * an older OpenSSH recorded): the pairing pins the key a fresh client is shown (Ed25519, from the
 * relay's hostkeys announcement), and the laptop's connect records it beside the ECDSA line
 * instead of calling it a changed key. The tunnel here is the seed's `ssh -R`.
 */
describe('pairing with a relay that has several host keys', () => {
	let lab: Lab;
	let keys: TempDir;
	let ecdsaPub = '';

	beforeAll(async () => {
		keys = await tempDir('gpujup-pair-keys-');
		const ecdsa = path.join(keys.path, 'relay_ecdsa');
		await execFileP('ssh-keygen', ['-q', '-t', 'ecdsa', '-N', '', '-f', ecdsa]);
		ecdsaPub = (await readFile(`${ecdsa}.pub`, 'utf8')).split(' ').slice(0, 2).join(' ');
		lab = await startLab({relayOptions: [`HostKey ${ecdsa}`]});
	});

	afterAll(async () => {
		await lab?.dispose();
		await keys?.dispose();
	});

	it('pins the Ed25519 key and connects where known_hosts knows only the ECDSA one', async () => {
		const ecdsaOnly = path.join(keys.path, 'known_hosts_ecdsa');
		const relayName = `[127.0.0.1]:${lab.relay.port}`;
		const gpuLine = (await readFile(lab.knownHosts, 'utf8'))
			.split('\n')
			.find((line) => line.startsWith(`[localhost]:${lab.relayPort} `))!;
		await writeFile(ecdsaOnly, `${relayName} ${ecdsaPub}\n${gpuLine}\n`, {mode: 0o600});

		const args = labHostArgs(lab, await freePort(), keys.path);
		args[args.indexOf('--known-hosts') + 1] = ecdsaOnly;
		const paired = await runGpujup([...args, '--pair'], lab.gpuEnv());
		expect(paired.code, paired.stderr).toBe(0);
		const pairing = parsePairing(paired.stdout);
		expect(pairing.relayKey).toBe(await keygenFingerprint(keys.path, lab.relay.hostKeyPub));
		expect(pairing.relayKey).not.toBe(await keygenFingerprint(keys.path, ecdsaPub));
		expect(pairing.hostKey).toBe(await keygenFingerprint(keys.path, lab.gpu.hostKeyPub));

		expect((await runGpujup(['pair', paired.stdout, '--name', 'lab'], lab.env())).code).toBe(0);
		const laptopKnown = path.join(keys.path, 'laptop_known_hosts');
		await writeFile(laptopKnown, `${relayName} ${ecdsaPub}\n`, {mode: 0o600});
		const connect = spawnGpujup(
			[
				'connect',
				'--no-tui',
				'--profile',
				'lab',
				'--identity',
				lab.clientKey,
				'--known-hosts',
				laptopKnown,
				'--local-port',
				'0',
			],
			lab.env(),
		);
		try {
			await connect.waitForLine(
				(l) => l.type === 'hop' && l.hop === 'host' && l.state === 'ready',
				{timeoutMs: 90_000},
			);
		} finally {
			expect(await connect.stop()).toBe(0);
		}

		const relayLines = await findKnownHost(relayName, laptopKnown);
		expect(relayLines).toHaveLength(2);
		expect(relayLines[0]).toContain(ecdsaPub);
		expect(relayLines[1]).toMatch(/^\|1\|\S+ ssh-ed25519 /);
	});

	it('the dashboard with pins and an empty known_hosts comes up without a question', async () => {
		const paired = await runGpujup(
			[...labHostArgs(lab, await freePort(), keys.path), '--pair'],
			lab.gpuEnv(),
		);
		expect(paired.code, paired.stderr).toBe(0);
		expect((await runGpujup(['pair', paired.stdout, '--name', 'tui'], lab.env())).code).toBe(0);
		const empty = path.join(keys.path, 'tui_known_hosts');
		const tmux = await startTmux(
			[
				process.execPath,
				cli,
				'--profile',
				'tui',
				'--identity',
				lab.clientKey,
				'--known-hosts',
				empty,
				'--local-port',
				'0',
			],
			{env: lab.env(), width: 160, height: 48},
		);
		try {
			// No key is sent: a question would hold the hops, and the screen would show it.
			const screen = await tmux.waitForText('all hops up', 90_000);
			expect(screen).not.toContain(hostKeyQuestion);
			await tmux.sendKeys('q');
			await waitFor(async () => ((await tmux.exitCode()) === null ? undefined : true));
		} finally {
			await tmux.dispose();
		}

		expect(await findKnownHost(`[127.0.0.1]:${lab.relay.port}`, empty)).toHaveLength(1);
		expect(await findKnownHost(`[localhost]:${lab.relayPort}`, empty)).toHaveLength(1);
	});
});

describe('gpujup pair and an existing config.toml', () => {
	const pairing = `gpujup://me@relay.example.org?relay-port=19506&host-user=alice&jupyter-port=19508&relay-key=SHA256:${'a'.repeat(43)}&host-key=SHA256:${'b'.repeat(43)}`;

	it('keeps what is there, refuses a broken file or a taken name, and writes 0600', async () => {
		const dir = await tempDir('gpujup-pair-config-');
		try {
			const env = {...process.env, HOME: dir.path, XDG_CONFIG_HOME: path.join(dir.path, 'cfg')};
			const file = path.join(dir.path, 'cfg', 'gpujup', 'config.toml');
			const fresh = await runGpujup(['pair', pairing], env);
			expect(fresh.code, fresh.stderr).toBe(0);
			expect((await stat(file)).mode & 0o777).toBe(0o600);
			expect(fresh.stdout).toContain('gpujup --profile relay.example.org');

			// A hand-written file keeps its comments; the new table goes after it, and reads back.
			const mine = '# mine\nkeepalive = 5 # seconds\n\n[profiles.lab]\nrelay = "x"';
			await writeFile(file, mine);
			expect((await runGpujup(['pair', pairing, '--name', 'p507'], env)).code).toBe(0);
			const text = await readFile(file, 'utf8');
			expect(text.startsWith(`${mine}\n\n# paired by`)).toBe(true);
			expect(parseToml(text)).toMatchObject({
				keepalive: 5,
				profiles: {lab: {relay: 'x'}, p507: {relay: 'me@relay.example.org', 'relay-port': 19506}},
			});

			const taken = await runGpujup(['pair', pairing, '--name', 'lab'], env);
			expect(taken.code).toBe(2);
			expect(taken.stderr).toMatch(/\[profiles\.lab\] already exists in .*config\.toml \(line 4\)/);
			await writeFile(file, 'relay = \n');
			const broken = await runGpujup(['pair', pairing, '--name', 'new'], env);
			expect(broken.code).toBe(2);
			expect(broken.stderr).toMatch(
				/config\.toml:1: invalid TOML, fix it first.*nothing was written/,
			);
			expect(await readFile(file, 'utf8')).toBe('relay = \n');
		} finally {
			await dir.dispose();
		}
	});
});
