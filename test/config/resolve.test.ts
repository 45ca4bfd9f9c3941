import {existsSync, readFileSync, rmSync} from 'node:fs';
import {join} from 'node:path';
import {configHomeHooks, write} from '../helpers/config-home.js';
import {describe, expect, test} from 'vitest';
import {needRelay} from '../../source/config/narrow.js';
import type {ConfigError} from '../../source/config/resolve.js';
import {parseCli} from '../../source/config/resolve.js';
import type {Config} from '../../source/config/types.js';
import {gpuHostKeyNames, hostKeyOptions, relayKeyNames} from '../../source/wiring/ssh-options.js';

const sandbox = configHomeHooks('gpujup-config-');
const {configPath, run} = sandbox;

function configError(argv: string[], extraEnv: NodeJS.ProcessEnv = {}): ConfigError {
	const error = sandbox.configError(argv, extraEnv);
	expect(error.exitCode).toBe(2);
	return error;
}

/** ssh's defaults: no ssh config says anything about host keys. */
function defaultHostKeys(): Config['relayHostKeys'] {
	return {
		userFiles: [
			join(sandbox.home, '.ssh', 'known_hosts'),
			join(sandbox.home, '.ssh', 'known_hosts2'),
		],
		globalFiles: ['/etc/ssh/ssh_known_hosts', '/etc/ssh/ssh_known_hosts2'],
		alias: null,
		strict: 'ask',
		hash: false,
	};
}

describe('defaults', () => {
	test('every default from SPEC', () => {
		const config = run(['--relay', 'relay.example.org']);
		expect(config).toEqual({
			command: 'connect',
			profile: null,
			configFile: null,
			relay: {host: 'relay.example.org', port: 22, user: 'alice', alias: null},
			relayPort: 19506,
			chain: [],
			hostAlias: null,
			hostUser: 'alice',
			jupyterPort: 19508,
			localPort: 19507,
			identities: [],
			relayHostKeys: defaultHostKeys(),
			gpuHostKeys: defaultHostKeys(),
			keepaliveS: 5,
			keepaliveCount: 3,
			forwards: [],
			jupyterLog: null,
			nvidiaSmi: 'nvidia-smi',
			sshPort: 22,
			jupyterCmd: null,
			env: {kind: 'none'},
			notebookDir: sandbox.home,
			noTui: false,
			notifyAfterS: 60,
			notifyUrl: null,
			tunnelBackAfterS: 60,
			slurm: null,
			warnings: [],
			json: false,
			stopJupyter: false,
			printSystemdUnit: false,
			pair: false,
			pairString: null,
			pairName: null,
			configPath: join(sandbox.home, 'xdg-config', 'gpujup', 'config.toml'),
			home: sandbox.home,
			stateDir: join(sandbox.home, 'xdg-state', 'gpujup'),
		} satisfies Config);
	});

	test('tunnel-back-after: config file or variable, no flag', () => {
		expect(run(['host', '--relay', 'r']).tunnelBackAfterS).toBe(60);
		expect(run(['host', '--relay', 'r'], {GPUJUP_TUNNEL_BACK_AFTER: '4'}).tunnelBackAfterS).toBe(4);
		write(configPath(), 'tunnel-back-after = 300\n');
		expect(run(['host', '--relay', 'r']).tunnelBackAfterS).toBe(300);
		expect(configError(['host', '--relay', 'r', '--tunnel-back-after', '4']).message).toMatch(
			/--tunnel-back-after/,
		);
	});

	test('--notify-after and notify-url: flag, variable or file; a flag URL warns, a bad one is not echoed', () => {
		expect(run(['host', '--relay', 'r', '--notify-after', '2.5']).notifyAfterS).toBe(2.5);
		expect(run(['host', '--relay', 'r'], {GPUJUP_NOTIFY_AFTER: '30'}).notifyAfterS).toBe(30);
		expect(() => run(['host', '--relay', 'r', '--notify-after', '0'])).toThrow(
			/--notify-after: expected a positive number/,
		);
		const fromEnv = run(['host', '--relay', 'r'], {
			GPUJUP_NOTIFY_URL: 'https://ntfy.sh/secret-topic',
		});
		expect(fromEnv.notifyUrl).toBe('https://ntfy.sh/secret-topic');
		expect(fromEnv.warnings).toEqual([]);
		const fromFlag = run(['host', '--relay', 'r', '--notify-url', 'http://127.0.0.1:9/x']);
		expect(fromFlag.notifyUrl).toBe('http://127.0.0.1:9/x');
		expect(fromFlag.warnings.join()).toMatch(/shows in `ps`.*GPUJUP_NOTIFY_URL/);
		expect(() =>
			run(['host', '--relay', 'r'], {GPUJUP_NOTIFY_URL: 'ftp://user:hunter2@example.org'}),
		).toThrow(/^GPUJUP_NOTIFY_URL: expected an http:\/\/ or https:\/\/ URL[^]*$/);
		try {
			run(['host', '--relay', 'r'], {GPUJUP_NOTIFY_URL: 'ftp://user:hunter2@example.org'});
		} catch (error) {
			expect(String(error)).not.toContain('hunter2');
		}
	});

	test('kernels is a command', () => {
		expect(run(['kernels', '--json']).command).toBe('kernels');
	});

	test('noTui when asked or when stdout is not a TTY', () => {
		expect(run(['--relay', 'r', '--no-tui']).noTui).toBe(true);
		expect(run(['--relay', 'r'], {GPUJUP_NO_TUI: '1'}).noTui).toBe(true);
		const piped = parseCli(['demo'], sandbox.env, {
			stdoutIsTty: false,
			home: sandbox.home,
			cwd: sandbox.home,
		});
		expect(piped.kind === 'run' && piped.config.noTui).toBe(true);
	});

	test('stateDir falls back to ~/.local/state', () => {
		expect(run(['status'], {XDG_STATE_HOME: undefined}).stateDir).toBe(
			join(sandbox.home, '.local', 'state', 'gpujup'),
		);
	});

	test('every flag is read', () => {
		const config = run([
			'host',
			'--relay',
			'bob@relay.example.org:2200',
			'--relay-port=20000',
			'--host-user',
			'carol',
			'--jupyter-port',
			'8888',
			'--local-port',
			'0',
			'-i',
			'~/.ssh/id_a',
			'--identity',
			'keys/id_b',
			'--known-hosts',
			'/etc/kh',
			'--accept-new',
			'--keepalive',
			'0.5',
			'--keepalive-count',
			'2',
			'--host-key-alias',
			'p507',
			'--forward',
			'6006:16006',
			'--forward',
			'8080',
			'--jupyter-log',
			'~/jupyter.log',
			'--nvidia-smi',
			'/usr/lib/wsl/lib/nvidia-smi',
			'--ssh-port',
			'2022',
			'--jupyter-cmd',
			'jupyter notebook',
			'--env',
			'conda:tf',
			'--notebook-dir',
			'nb',
			'--stop-jupyter',
			'--print-systemd-unit',
			'--json',
		]);
		expect(config).toMatchObject({
			command: 'host',
			relay: {host: 'relay.example.org', port: 2200, user: 'bob', alias: null},
			relayPort: 20000,
			hostUser: 'carol',
			jupyterPort: 8888,
			localPort: 0,
			identities: [join(sandbox.home, '.ssh', 'id_a'), join(sandbox.home, 'keys', 'id_b')],
			relayHostKeys: {...defaultHostKeys(), userFiles: ['/etc/kh'], strict: 'accept-new'},
			gpuHostKeys: {
				...defaultHostKeys(),
				userFiles: ['/etc/kh'],
				strict: 'accept-new',
				alias: 'p507',
			},
			keepaliveS: 0.5,
			keepaliveCount: 2,
			forwards: [
				{local: 6006, remote: 16006},
				{local: 8080, remote: 8080},
			],
			// A path on the GPU host: not expanded here.
			jupyterLog: '~/jupyter.log',
			nvidiaSmi: '/usr/lib/wsl/lib/nvidia-smi',
			sshPort: 2022,
			jupyterCmd: 'jupyter notebook',
			env: {kind: 'conda', name: 'tf'},
			notebookDir: join(sandbox.home, 'nb'),
			stopJupyter: true,
			printSystemdUnit: true,
			json: true,
		});
		expect(run(['host', '--relay', 'r', '--env', 'venv:~/venvs/tf']).env).toEqual({
			kind: 'venv',
			path: join(sandbox.home, 'venvs', 'tf'),
		});
	});

	test('relay forms, IPv6 included', () => {
		expect(run(['--relay', '[::1]:2222']).relay).toEqual({
			host: '::1',
			port: 2222,
			user: 'alice',
			alias: null,
		});
		expect(run(['--relay', 'bob@[::1]']).relay).toEqual({
			host: '::1',
			port: 22,
			user: 'bob',
			alias: null,
		});
		expect(run(['--relay', 'fe80::1']).relay?.host).toBe('fe80::1');
		expect(run(['--relay', '127.0.0.1:2201']).relay?.port).toBe(2201);
	});

	test('url, status and demo run without a relay; connect, host and doctor need one', () => {
		for (const command of ['url', 'status', 'demo']) expect(run([command]).relay).toBeNull();
		expect(configError([]).message).toBe(
			'--relay: required for "connect"; give --relay [user@]host[:port] (or GPUJUP_RELAY), or an ~/.ssh/config alias: gpujup ALIAS',
		);
		expect(configError(['host']).message).toContain('--relay: required for "host"');
		expect(configError(['doctor']).message).toContain('--relay: required for "doctor"');
	});
});

describe('precedence: flag > sandbox.env > config profile > config top level > ssh config > default', () => {
	test('relay-port through every layer', () => {
		write(
			configPath(),
			[
				'relay = "relay.example.org"',
				'relay-port = 20001',
				'',
				'[profiles.gpu]',
				'relay-port = 20002',
				'',
			].join('\n'),
		);
		expect(run([]).relayPort).toBe(20001);
		expect(run([]).configFile).toBe(configPath());
		expect(run(['--profile', 'gpu']).relayPort).toBe(20002);
		expect(run(['--profile', 'gpu']).profile).toBe('gpu');
		expect(run([], {GPUJUP_PROFILE: 'gpu'}).relayPort).toBe(20002);
		expect(run(['--profile', 'gpu'], {GPUJUP_RELAY_PORT: '20003'}).relayPort).toBe(20003);
		expect(
			run(['--profile', 'gpu', '--relay-port', '20004'], {GPUJUP_RELAY_PORT: '20003'}).relayPort,
		).toBe(20004);
	});

	test('profile chosen by the file, overridden by GPUJUP_PROFILE and --profile', () => {
		write(
			configPath(),
			[
				'profile = "a"',
				'keepalive = 7',
				'[profiles.a]',
				'relay = "ra"',
				'[profiles.b]',
				'relay = "rb"',
				'keepalive = 0.5',
			].join('\n'),
		);
		expect(run([]).relay?.host).toBe('ra');
		expect(run([]).keepaliveS).toBe(7);
		expect(run([], {GPUJUP_PROFILE: 'b'}).relay?.host).toBe('rb');
		expect(run(['--profile', 'b'], {GPUJUP_PROFILE: 'a'}).keepaliveS).toBe(0.5);
	});

	test('booleans and lists: flag over sandbox.env over file', () => {
		write(configPath(), 'relay = "r"\naccept_new = true\nforward = ["1000:2000", 3000]\n');
		const strict = (config: Config) => config.relayHostKeys.strict;
		expect(strict(run([]))).toBe('accept-new');
		expect(strict(run([], {GPUJUP_ACCEPT_NEW: '0'}))).toBe('ask');
		expect(strict(run(['--accept-new'], {GPUJUP_ACCEPT_NEW: 'no'}))).toBe('accept-new');
		expect(strict(run(['--no-accept-new']))).toBe('ask');
		expect(run([]).forwards).toEqual([
			{local: 1000, remote: 2000},
			{local: 3000, remote: 3000},
		]);
		expect(run([], {GPUJUP_FORWARD: '6006:6006,8888:8888'}).forwards).toEqual([
			{local: 6006, remote: 6006},
			{local: 8888, remote: 8888},
		]);
		expect(run(['--forward', '1:2'], {GPUJUP_FORWARD: '6006:6006'}).forwards).toEqual([
			{local: 1, remote: 2},
		]);
	});

	test('--config and GPUJUP_CONFIG pick the file; relative paths in it are relative to it', () => {
		const custom = write(join(sandbox.home, 'etc', 'gj.toml'), 'relay = "r"\nknown-hosts = "kh"\n');
		write(configPath(), 'relay = "default"\n');
		expect(run(['--config', custom]).relayHostKeys.userFiles).toEqual([
			join(sandbox.home, 'etc', 'kh'),
		]);
		expect(run([], {GPUJUP_CONFIG: custom}).relay?.host).toBe('r');
		expect(run([], {GPUJUP_CONFIG: custom}).configFile).toBe(custom);
		expect(run([]).relay?.host).toBe('default');
	});

	test('ssh config alias gives HostName, User, Port, IdentityFile; explicit parts win', () => {
		write(
			join(sandbox.home, '.ssh', 'config'),
			[
				'Host relay',
				'  HostName relay.example.org',
				'  User bob',
				'  Port 2222',
				'  IdentityFile ~/.ssh/id_relay',
				'Host *',
				'  User nobody',
				'  IdentityFile %d/.ssh/id_%r',
			].join('\n'),
		);
		const config = run(['--relay', 'relay', '-i', '/keys/first']);
		expect(config.relay).toEqual({
			host: 'relay.example.org',
			port: 2222,
			user: 'bob',
			alias: 'relay',
		});
		expect(config.hostUser).toBe('bob');
		expect(config.identities).toEqual([
			'/keys/first',
			join(sandbox.home, '.ssh', 'id_relay'),
			join(sandbox.home, '.ssh', 'id_bob'),
		]);
		expect(run(['--relay', 'carol@relay:2200']).relay).toEqual({
			host: 'relay.example.org',
			port: 2200,
			user: 'carol',
			alias: 'relay',
		});
		// The config file is above ssh config: its relay is what gets looked up.
		write(configPath(), 'relay = "relay"\nhost-user = "dave"\n');
		expect(run([]).relay?.host).toBe('relay.example.org');
		expect(run([]).hostUser).toBe('dave');
		// No HostName for this name: only the Host * defaults apply.
		expect(run(['--relay', 'other.example.org']).relay).toEqual({
			host: 'other.example.org',
			port: 22,
			user: 'nobody',
			alias: null,
		});
	});

	test('host keys as ssh -G resolves them: known_hosts files, alias, asking, hashing', () => {
		write(
			join(sandbox.home, '.ssh', 'config'),
			[
				'Host relay',
				'  HostName Relay.Example.org',
				'  UserKnownHostsFile ~/kh/relay_hosts ~/kh/more',
				'  GlobalKnownHostsFile /etc/relay_global',
				'  HostKeyAlias RelayAlias',
				'  StrictHostKeyChecking yes',
				'Host localhost',
				'  HostKeyAlias GPU-Box',
				'  StrictHostKeyChecking off',
				'Host *',
				'  UserKnownHostsFile ~/kh/all_%p',
			].join('\n'),
		);
		const system = write(join(sandbox.home, 'etc', 'ssh_config'), 'Host *\n  HashKnownHosts yes\n');
		const config = parseCli(['--relay', 'relay', '--relay-port', '20000'], sandbox.env, {
			stdoutIsTty: true,
			home: sandbox.home,
			cwd: sandbox.home,
			sshSystemConfig: system,
		});
		if (config.kind !== 'run') throw new Error(config.kind);
		expect(config.config.relayHostKeys).toEqual({
			userFiles: [join(sandbox.home, 'kh', 'relay_hosts'), join(sandbox.home, 'kh', 'more')],
			globalFiles: ['/etc/relay_global'],
			alias: 'relayalias',
			strict: 'yes',
			hash: true,
		});
		// The second hop is `localhost` on the relay port, for ssh: its own block and %p.
		expect(config.config.gpuHostKeys).toEqual({
			userFiles: [join(sandbox.home, 'kh', 'all_20000')],
			globalFiles: ['/etc/ssh/ssh_known_hosts', '/etc/ssh/ssh_known_hosts2'],
			alias: 'gpu-box',
			// ssh's `off` records new keys, and gpujup still never takes a changed one.
			strict: 'accept-new',
			hash: true,
		});
		expect(relayKeyNames(needRelay(config.config))).toEqual(['relayalias']);
		expect(gpuHostKeyNames(config.config)).toEqual(['gpu-box']);
		// gpujup's own settings win: --known-hosts (global files still read), --accept-new, alias.
		const given = run([
			'--relay',
			'relay',
			'--known-hosts',
			'kh',
			'--accept-new',
			'--host-key-alias',
			'P507',
		]);
		expect(given.relayHostKeys).toMatchObject({
			userFiles: [join(sandbox.home, 'kh')],
			globalFiles: ['/etc/relay_global'],
			strict: 'accept-new',
		});
		expect(given.gpuHostKeys.alias).toBe('p507');
		// What each policy makes of an unknown key: yes never asks, accept-new records, ask asks.
		const confirmHostKey = async () => true;
		const ask = (strict: 'yes' | 'accept-new' | 'ask') =>
			hostKeyOptions({...config.config.relayHostKeys, strict}, ['relayalias'], {confirmHostKey});
		expect(ask('yes')).toMatchObject({acceptNew: false, hashKnownHosts: true});
		expect(ask('yes')).not.toHaveProperty('confirmHostKey');
		expect(ask('accept-new')).toMatchObject({acceptNew: true});
		expect(ask('ask')).toMatchObject({acceptNew: false, confirmHostKey});
		expect(ask('ask')).toMatchObject({
			knownHostsFile: join(sandbox.home, 'kh', 'relay_hosts'),
			otherKnownHostsFiles: [join(sandbox.home, 'kh', 'more'), '/etc/relay_global'],
		});
		// An explicit no does not lift ssh's yes; without yes it asks.
		expect(run(['--relay', 'relay', '--no-accept-new']).relayHostKeys.strict).toBe('yes');
		expect(run(['--relay', 'relay', '--no-accept-new']).gpuHostKeys.strict).toBe('ask');
	});

	test('the relay key is looked up under the HostName, never also under the alias typed', () => {
		write(
			join(sandbox.home, '.ssh', 'config'),
			'Host relay\n  HostName relay.example.org\n  Port 2222\n',
		);
		const config = run(['--relay', 'relay']);
		expect(relayKeyNames(needRelay(config))).toEqual(['[relay.example.org]:2222']);
		expect(relayKeyNames(needRelay(run(['--relay', 'Relay.Example.ORG'])))).toEqual([
			'relay.example.org',
		]);
	});

	test('Include is followed (globs, relative to ~/.ssh), conditionally inside Host', () => {
		// As in ssh, an Include after a Host line belongs to that block, indentation or not.
		write(
			join(sandbox.home, '.ssh', 'config'),
			'Include conf.d/*.conf\nHost unrelated\nInclude never/*.conf\n',
		);
		write(join(sandbox.home, '.ssh', 'never', 'a.conf'), 'Host relay\n  User wrong\n');
		write(
			join(sandbox.home, '.ssh', 'conf.d', '10-relay.conf'),
			'Host relay\n  HostName 127.0.0.1\n  Port 2022\n',
		);
		write(
			join(sandbox.home, '.ssh', 'conf.d', '20-user.conf'),
			'Host relay\n  User included\n  Port 1\n',
		);
		expect(run(['--relay', 'relay']).relay).toEqual({
			host: '127.0.0.1',
			port: 2022,
			user: 'included',
			alias: 'relay',
		});
	});

	test('Match exec is never run; Match host and user are evaluated', () => {
		const marker = join(sandbox.home, 'ran');
		write(
			join(sandbox.home, '.ssh', 'config'),
			[
				`Match exec "touch ${marker}"`,
				'  User evil',
				`Match !exec "touch ${marker}"`,
				'  Port 6666',
				`Match host relay.example.org exec "touch ${marker}"`,
				'  IdentityFile /evil',
				'Host relay',
				'  HostName relay.example.org',
				'Match host relay.example.org',
				'  User matched',
				'Match user matched',
				'  Port 2201',
			].join('\n'),
		);
		const config = run(['--relay', 'relay']);
		expect(existsSync(marker)).toBe(false);
		expect(config.relay).toEqual({
			host: 'relay.example.org',
			port: 2201,
			user: 'matched',
			alias: 'relay',
		});
		expect(config.identities).toEqual([]);
	});
});

describe('errors name the flag, variable or file:line and the expected value', () => {
	test('bad flag values', () => {
		const cases: Array<[string[], string]> = [
			[['--relay', 'r', '--relay-port', 'abc'], '--relay-port: expected a port 1-65535, got "abc"'],
			[['--relay', 'r', '--jupyter-port', '0'], '--jupyter-port: expected a port 1-65535, got "0"'],
			[
				['--relay', 'r', '--local-port', '65536'],
				'--local-port: expected a port 0-65535 (0 picks a free one), got "65536"',
			],
			[
				['--relay', 'r', '--keepalive', 'fast'],
				'--keepalive: expected seconds from 0.1 to 3600, got "fast"',
			],
			[
				['--relay', 'r', '--keepalive', '0'],
				'--keepalive: expected seconds from 0.1 to 3600, got "0"',
			],
			[
				['--relay', 'r', '--keepalive-count', '1.5'],
				'--keepalive-count: expected a whole number from 1 to 100, got "1.5"',
			],
			[
				['--relay', 'r', '--forward', 'a:b'],
				'--forward: expected LOCAL:REMOTE ports like 6006:6006, got "a:b"',
			],
			[
				['--relay', 'r', '--env', 'conda:'],
				'--env: expected conda:NAME, venv:PATH or none, got "conda:"',
			],
			[['--relay', 'a b'], '--relay: expected [user@]host[:port], got "a b"'],
			[['--relay', 'host:99999'], '--relay: expected a port 1-65535, got "99999"'],
			[['--relay', 'r', '--host-user'], '--host-user: expected a non-empty string, got ""'],
			[['--relay', 'r', '--relay', 's'], '--relay: given more than once; give it once'],
		];
		for (const [argv, message] of cases) expect(configError(argv).message).toBe(message);
	});

	test('keepalive and keepalive-count out of range: flag, variable and file name the bounds', () => {
		// 0.0001 s made a healthy link flap between ready and lost; 3000000 s overflowed Node's
		// timers (over 2^31 ms), so it never connected.
		const cases: Array<[string[], NodeJS.ProcessEnv, string]> = [
			[
				['--keepalive', '0.0001'],
				{},
				'--keepalive: expected seconds from 0.1 to 3600, got "0.0001"',
			],
			[
				['--keepalive', '3000000'],
				{},
				'--keepalive: expected seconds from 0.1 to 3600, got "3000000"',
			],
			[
				['--keepalive-count', '0'],
				{},
				'--keepalive-count: expected a whole number from 1 to 100, got "0"',
			],
			[
				['--keepalive-count', '101'],
				{},
				'--keepalive-count: expected a whole number from 1 to 100, got "101"',
			],
			[
				[],
				{GPUJUP_KEEPALIVE: '3601'},
				'GPUJUP_KEEPALIVE: expected seconds from 0.1 to 3600, got "3601"',
			],
			[
				[],
				{GPUJUP_KEEPALIVE_COUNT: '1000000'},
				'GPUJUP_KEEPALIVE_COUNT: expected a whole number from 1 to 100, got "1000000"',
			],
		];
		for (const [argv, variables, message] of cases)
			expect(configError(['--relay', 'r', ...argv], variables).message).toBe(message);
		const path = write(configPath(), 'relay = "r"\nkeepalive = 0.05\n');
		expect(configError([]).message).toBe(
			`${path}:2: key "keepalive": expected seconds from 0.1 to 3600, got 0.05`,
		);
		write(configPath(), 'relay = "r"\nkeepalive-count = 500\n');
		expect(configError([]).message).toBe(
			`${path}:2: key "keepalive-count": expected a whole number from 1 to 100, got 500`,
		);
		// The bounds themselves are fine.
		expect(run(['--relay', 'r', '--keepalive', '0.1', '--keepalive-count', '100'])).toMatchObject({
			keepaliveS: 0.1,
			keepaliveCount: 100,
		});
		expect(run(['--relay', 'r', '--keepalive', '3600', '--keepalive-count', '1'])).toMatchObject({
			keepaliveS: 3600,
			keepaliveCount: 1,
		});
	});

	test('bad variables', () => {
		expect(configError(['--relay', 'r'], {GPUJUP_RELAY_PORT: '70000'}).message).toBe(
			'GPUJUP_RELAY_PORT: expected a port 1-65535, got "70000"',
		);
		expect(configError(['--relay', 'r'], {GPUJUP_ACCEPT_NEW: 'maybe'}).message).toBe(
			'GPUJUP_ACCEPT_NEW: expected 1, 0, true, false, yes or no, got "maybe"',
		);
		expect(configError(['--relay', 'r'], {GPUJUP_FORWARD: '6006:6006,x'}).message).toBe(
			'GPUJUP_FORWARD: expected LOCAL:REMOTE ports like 6006:6006, got "x"',
		);
	});

	test('bad values in the config file name file:line and key', () => {
		const path = write(
			configPath(),
			[
				'# gpujup',
				'relay = "r"',
				'',
				'[profiles.gpu]',
				'relay-port = 1',
				'keepalive = "fast"',
				'',
			].join('\n'),
		);
		write(join(sandbox.home, 'top.toml'), 'relay = "r"\nkeepalive = "fast"\n');
		expect(configError(['--profile', 'gpu']).message).toBe(
			`${path}:6: key "keepalive": expected seconds from 0.1 to 3600, got "fast"`,
		);
		// Top level has no keepalive: only the profile's bad one is ever read.
		expect(run([]).keepaliveS).toBe(5);
		expect(configError(['--config', join(sandbox.home, 'top.toml')]).message).toBe(
			`${join(sandbox.home, 'top.toml')}:2: key "keepalive": expected seconds from 0.1 to 3600, got "fast"`,
		);
		write(path, 'relay = "r"\naccept-new = "yes"\nssh_port = 1.5\n');
		expect(configError([]).message).toBe(
			`${path}:2: key "accept-new": expected true or false, got "yes"`,
		);
		write(path, 'relay = "r"\nssh_port = 1.5\n');
		expect(configError([]).message).toBe(
			`${path}:2: key "ssh_port": expected a port 1-65535, got 1.5`,
		);
		write(path, 'relay = 5\n');
		expect(configError(['status']).message).toBe(
			`${path}:1: key "relay": expected [user@]host[:port], got 5`,
		);
	});

	test('unknown keys, TOML syntax, missing profile or file', () => {
		const path = write(configPath(), 'relay = "r"\n\n[profiles.gpu]\nrelay_prot = 1\n');
		expect(configError([]).message).toBe(
			`${path}:4: unknown key "relay_prot"; did you mean "relay-port"?`,
		);
		write(path, 'relay = "r"\ncolour = "blue"\n');
		expect(configError([]).message).toBe(`${path}:2: unknown key "colour"`);
		write(path, 'relay = "r"\nkeepalive = \n');
		expect(configError([]).message).toMatch(
			new RegExp(`^${path}:2: invalid TOML: .+ \\(column \\d+\\)$`),
		);
		write(path, 'relay = "r"\n[profiles.a]\n[profiles.b]\n');
		expect(configError(['--profile', 'c']).message).toBe(
			`--profile: no [profiles.c] in ${path} (it has: a, b)`,
		);
		expect(configError(['--config', join(sandbox.home, 'missing.toml')]).message).toBe(
			`--config: cannot read ${join(sandbox.home, 'missing.toml')}: no such file`,
		);
		rmSync(path);
		expect(configError(['--profile', 'x']).message).toBe(
			`--profile: no config file to read [profiles.x] from; create ${path} or pass --config FILE`,
		);
	});

	test('unknown flags and commands get a hint', () => {
		expect(configError(['--relay-prot', '1']).message).toBe(
			'unknown flag --relay-prot; did you mean --relay-port? (gpujup --help lists the flags)',
		);
		expect(configError(['--zzz']).message).toBe(
			'unknown flag --zzz (gpujup --help lists the flags)',
		);
		expect(configError(['-x']).message).toBe('unknown flag -x (gpujup --help lists the flags)');
		expect(configError(['conect']).message).toBe(
			'unknown command "conect"; did you mean "connect"? (commands: connect, host, status, url, kernels, doctor, demo, pair)',
		);
		expect(configError(['host', 'extra']).message).toBe(
			'unexpected argument "extra" after "host" (gpujup --help lists the usage)',
		);
		// After `--` nothing is a flag, so the stray word is an argument error, not a flag error.
		expect(configError(['status', '--', '--zzz']).message).toContain('unexpected argument "--zzz"');
	});

	test('a broken ssh config is named', () => {
		write(join(sandbox.home, '.ssh', 'config'), 'Host relay\n  Port x\n');
		expect(configError(['--relay', 'relay']).message).toBe(
			`${join(sandbox.home, '.ssh', 'config')}: Port for "relay": expected a port 1-65535, got "x"`,
		);
		// The same words for a hop of an alias's chain.
		expect(configError(['connect', 'relay']).message).toBe(
			`${join(sandbox.home, '.ssh', 'config')}: Port for "relay": expected a port 1-65535, got "x"`,
		);
	});
});

describe('help and version', () => {
	test('help lists every command and flag', () => {
		for (const argv of [['--help'], ['-h'], ['help'], ['host', '--help']]) {
			const result = parseCli(argv, sandbox.env, {home: sandbox.home});
			expect(result.kind).toBe('help');
			if (result.kind !== 'help') continue;
			for (const command of ['connect', 'host', 'status', 'url', 'doctor', 'demo']) {
				expect(result.text).toMatch(new RegExp(`^  ${command} +\\S`, 'm'));
			}

			for (const flag of [
				'--relay',
				'--relay-port',
				'--host-user',
				'--jupyter-port',
				'--local-port',
				'-i, --identity',
				'--known-hosts',
				'--accept-new',
				'--keepalive',
				'--keepalive-count',
				'--host-key-alias',
				'--forward',
				'--jupyter-log',
				'--nvidia-smi',
				'--ssh-port',
				'--jupyter-cmd',
				'--env',
				'--notebook-dir',
				'--no-tui',
				'--config',
				'--profile',
				'--json',
				'--stop-jupyter',
				'--print-systemd-unit',
				'--version',
			]) {
				expect(result.text).toContain(`  ${flag} `);
			}

			expect(Math.max(...result.text.split('\n').map((line) => line.length))).toBeLessThanOrEqual(
				100,
			);
		}
	});

	test('version is the package version', () => {
		const {version} = JSON.parse(
			readFileSync(join(import.meta.dirname, '..', '..', 'package.json'), 'utf8'),
		) as {
			version: string;
		};
		expect(parseCli(['--version'], sandbox.env, {home: sandbox.home})).toEqual({
			kind: 'version',
			text: version,
		});
	});
});

describe('the command line’s forms', () => {
	test('--no-X and --X: the last one given wins; --X=true|false; -iKEY and --identity=KEY add up', () => {
		expect(run(['--relay', 'r', '--no-tui']).noTui).toBe(true);
		expect(run(['--relay', 'r', '--no-tui', '--tui']).noTui).toBe(false);
		expect(run(['--relay', 'r', '--tui', '--no-tui']).noTui).toBe(true);
		expect(run(['--relay', 'r', '--json=true']).json).toBe(true);
		expect(run(['--relay', 'r', '--json', '--json=false']).json).toBe(false);
		expect(configError(['--relay', 'r', '--json=yes']).message).toBe(
			'--json: expected no value (or true/false), got "yes"',
		);
		expect(run(['--relay', 'r', '-i', '/k/a', '-i/k/b', '--identity=/k/c']).identities).toEqual([
			'/k/a',
			'/k/b',
			'/k/c',
		]);
		// After `--` nothing is a flag.
		expect(configError(['--relay', 'r', '--', '--json']).message).toContain('"--json"');
	});
});

describe('--slurm, --sbatch, --on-quit, --node-ssh-port', () => {
	test('off by default; on with its defaults; every source, the file’s list word for word', () => {
		expect(run(['--relay', 'r']).slurm).toBeNull();
		expect(run(['--relay', 'r', '--slurm']).slurm).toEqual({
			sbatchArgs: [],
			onQuit: 'ask',
			nodeSshPort: 22,
			env: null,
			notebookDir: null,
		});
		expect(
			run([
				'--relay',
				'r',
				'--slurm',
				'--sbatch=--partition gpu --gres=gpu:1 --comment "two words"',
				'--on-quit',
				'cancel',
				'--node-ssh-port',
				'2222',
			]).slurm,
		).toEqual({
			sbatchArgs: ['--partition', 'gpu', '--gres=gpu:1', '--comment', 'two words'],
			onQuit: 'cancel',
			nodeSshPort: 2222,
			env: null,
			notebookDir: null,
		});
		expect(
			run(['--relay', 'r'], {GPUJUP_SLURM: '1', GPUJUP_SBATCH: '-p gpu', GPUJUP_ON_QUIT: 'keep'})
				.slurm,
		).toEqual({
			sbatchArgs: ['-p', 'gpu'],
			onQuit: 'keep',
			nodeSshPort: 22,
			env: null,
			notebookDir: null,
		});
		write(
			configPath(),
			[
				'relay = "r"',
				'[profiles.cluster]',
				'slurm = true',
				'sbatch = ["--partition", "gpu", "--comment=a b"]',
				'on-quit = "keep"',
				'',
			].join('\n'),
		);
		const config = run(['--profile', 'cluster']);
		expect(config.profile).toBe('cluster');
		expect(config.slurm).toEqual({
			sbatchArgs: ['--partition', 'gpu', '--comment=a b'],
			onQuit: 'keep',
			nodeSshPort: 22,
			env: null,
			notebookDir: null,
		});
	});

	test('--env and --notebook-dir are paths on the cluster: kept as written, ~ for the cluster home', () => {
		const config = run([
			'--relay',
			'r',
			'--slurm',
			'--env',
			'venv:~/venvs/torch',
			'--notebook-dir',
			'/scratch/me/nb',
		]);
		expect(config.slurm).toMatchObject({
			env: {kind: 'venv', path: '~/venvs/torch'},
			notebookDir: '/scratch/me/nb',
		});
		expect(run(['--relay', 'r', '--slurm', '--env', 'conda:tf']).slurm?.env).toEqual({
			kind: 'conda',
			name: 'tf',
		});
		expect(configError(['--relay', 'r', '--slurm', '--notebook-dir', 'nb']).message).toBe(
			'--notebook-dir: expected a path on the cluster (absolute, or ~/…), got "nb"',
		);
		expect(configError(['--relay', 'r', '--slurm', '--env', 'venv:venvs/a']).message).toBe(
			'--env: expected a path on the cluster (absolute, or ~/…), got "venvs/a"',
		);
	});

	test('bad values name the source and say what is expected', () => {
		expect(configError(['--relay', 'r', '--slurm', '--on-quit', 'later']).message).toBe(
			'--on-quit: expected keep, cancel or ask, got "later"',
		);
		expect(configError(['--relay', 'r', '--slurm', '--node-ssh-port', '0']).message).toBe(
			'--node-ssh-port: expected a port 1-65535, got "0"',
		);
		expect(configError(['--relay', 'r', '--slurm', "--sbatch=--comment 'open"]).message).toBe(
			'--sbatch: the single quote is not closed',
		);
		expect(configError(['--relay', 'r', '--slurm', '--sbatch=-J mine']).message).toMatch(
			/^--sbatch: "-J" cannot be given: gpujup names the job itself/,
		);
		expect(configError(['--relay', 'r', '--slurm', '--sbatch=job.sh']).message).toMatch(
			/^--sbatch: "job.sh" is not an sbatch option/,
		);
		expect(configError(['host', '--relay', 'r', '--slurm']).message).toMatch(
			/^--slurm: is for connect/,
		);
		write(configPath(), 'relay = "r"\nslurm = true\nsbatch = ["-p", 3]\n');
		expect(configError([]).message).toMatch(
			/config\.toml:3: key "sbatch": expected a list of strings/,
		);
	});
});

describe('a chain from ~/.ssh/config: gpujup ALIAS', () => {
	const sshConfig = () =>
		write(
			join(sandbox.home, '.ssh', 'config'),
			[
				'Host bastion',
				'  HostName bastion.example.org',
				'  User bast',
				'Host relay',
				'  HostName relay.example.org',
				'  ProxyJump bastion',
				'  IdentityFile ~/.ssh/id_relay',
				'Host p507',
				'  HostName localhost',
				'  Port 19506',
				'  User gpu',
				'  ProxyJump relay',
				'  HostKeyAlias P507',
				'Host pcmd',
				'  ProxyCommand nc %h %p',
				'Host conect',
				'  HostName c.example.org',
			].join('\n'),
		);

	test('gpujup p507, connect p507 and --host p507 read the same three hops', () => {
		sshConfig();
		const configs = [
			run(['p507']),
			run(['connect', 'p507']),
			run(['--host', 'p507']),
			run(['connect'], {GPUJUP_HOST: 'p507'}),
		];
		for (const config of configs) {
			expect(config.command).toBe('connect');
			expect(config.hostAlias).toBe('p507');
			expect(config.chain).toEqual(configs[0]!.chain);
		}

		const config = configs[0]!;
		expect(config.chain.map((hop) => [hop.name, hop.host, hop.port, hop.user])).toEqual([
			['bastion', 'bastion.example.org', 22, 'bast'],
			['relay', 'relay.example.org', 22, 'alice'],
			['p507', 'localhost', 19506, 'gpu'],
		]);
		expect(config.chain[1]!.identities).toEqual([join(sandbox.home, '.ssh', 'id_relay')]);
		expect(config.chain.map((hop) => hop.keyNames)).toEqual([
			['bastion.example.org'],
			['relay.example.org'],
			['p507'],
		]);
		expect(config.relay).toEqual({
			host: 'bastion.example.org',
			port: 22,
			user: 'bast',
			alias: 'bastion',
		});
		expect([config.hostUser, config.relayPort]).toEqual(['gpu', 19506]);
		// host-user and host-key-alias are the GPU host's: the last hop's.
		const given = run(['p507', '--host-user', 'me', '--host-key-alias', 'gpu-key']);
		expect(given.chain.at(-1)).toMatchObject({user: 'me', keyNames: ['gpu-key']});
		expect(given.chain[0]!.user).toBe('bast');
		// An alias over a relay from the environment; `status` and `doctor` take one too.
		expect(run(['p507'], {GPUJUP_RELAY: 'other'}).chain).toHaveLength(3);
		expect(run(['status', 'p507']).hostAlias).toBe('p507');
		expect(run(['doctor', 'p507']).chain).toHaveLength(3);
		// `--relay` keeps its meaning: no chain of its own.
		expect(run(['--relay', 'relay']).chain).toEqual([]);
	});

	test('each hop is dialled as ssh would: host names lowercased, addresses canonical, % tokens', () => {
		write(
			join(sandbox.home, '.ssh', 'config'),
			[
				'Host lab-*',
				'  HostName %h.Example.ORG',
				'  User u1',
				'  ProxyJump Relay.Example.ORG,jump-%r',
				'  IdentityFile ~/.ssh/id_%h_%r',
				'Host jump-*',
				'  HostName 127.1',
			].join('\n'),
		);
		const config = run(['lab-A']);
		expect(config.chain.map((hop) => [hop.name, hop.host, hop.keyNames])).toEqual([
			['Relay.Example.ORG', 'relay.example.org', ['relay.example.org']],
			['jump-u1', '127.0.0.1', ['127.0.0.1']],
			['lab-A', 'lab-a.example.org', ['lab-a.example.org']],
		]);
		expect(config.chain[2]!.identities).toEqual([
			join(sandbox.home, '.ssh', 'id_lab-a.example.org_u1'),
		]);
		expect(run(['--relay', 'me@Relay.Example.ORG']).relay).toMatchObject({
			host: 'relay.example.org',
			alias: null,
		});
		expect(run(['--relay', '0:0::1']).relay?.host).toBe('::1');
	});

	test('ProxyCommand, --relay with an alias, and stray words are refused with exit 2', () => {
		sshConfig();
		expect(configError(['pcmd']).message).toBe(
			`${join(sandbox.home, '.ssh', 'config')}: "pcmd" uses ProxyCommand (nc %h %p), which runs a program: gpujup does not run it. Write the chain with ProxyJump instead (ProxyJump relay, or a,b for several hops), or give --relay (needed to resolve "pcmd")`,
		);
		expect(configError(['p507', '--relay', 'relay']).message).toBe(
			'--relay and "p507" both name the way to the GPU host; give one: gpujup p507 reads the chain from ~/.ssh/config (ProxyJump), --relay names the relay',
		);
		expect(configError(['p507', '--host', 'relay']).message).toBe(
			'--host relay and "p507" name two hosts; give one (gpujup p507)',
		);
		// Several words are a fleet (gpujup A B): each must be a host ~/.ssh/config or config.toml knows.
		expect(configError(['p507', 'extra']).message).toBe(
			'"extra": no Host extra in ~/.ssh/config and no [fleet.extra] in the config file; gpujup A B … takes the aliases of GPU hosts',
		);
		expect(configError(['doctor', 'p507', 'extra']).message).toBe(
			'unexpected argument "extra" after "p507" (gpujup --help lists the usage)',
		);
		expect(configError(['host', '--host', 'p507']).message).toBe(
			'--host: only connect, status and doctor take a host, not "host"',
		);
		// From the environment or the file it is the laptop's default, which other commands ignore.
		expect(run(['url'], {GPUJUP_HOST: 'p507'}).hostAlias).toBeNull();
		expect(configError(['me@p507']).message).toContain(
			'"me@p507": expected an ~/.ssh/config alias',
		);
		// A near miss of a command is one, unless the ssh config names it.
		expect(configError(['stauts']).message).toContain('did you mean "status"?');
		expect(run(['conect']).chain.map((hop) => hop.host)).toEqual(['c.example.org']);
	});
});
