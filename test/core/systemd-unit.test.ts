import {describe, expect, test} from 'vitest';
import {hostCredentialsExitCode} from '../../source/core/exit-codes.js';
import {
	environmentAssignment,
	servicePath,
	systemdUnit,
	systemdWord,
	unfitPathDir,
} from '../../source/core/systemd-unit.js';

describe('systemd user unit', () => {
	test('runs the same command line under systemd, minus the TUI and print flags, plus --no-tui', () => {
		const unit = systemdUnit(
			[
				'host',
				'--relay',
				'me@relay.example.org',
				'--print-systemd-unit',
				'--env',
				'conda:tf',
				'--no-tui',
				'--notebook-dir',
				'/home/me/my notebooks',
			],
			{
				execPath: '/usr/bin/node',
				script: '/usr/lib/node_modules/gpujup/dist/cli.js',
				workingDirectory: '/home/me',
			},
		);
		expect(unit).toBe(
			[
				'# gpujup host as a systemd user service. Install:',
				'#   mkdir -p ~/.config/systemd/user',
				'#   gpujup host … --print-systemd-unit > ~/.config/systemd/user/gpujup-host.service',
				'#   systemctl --user daemon-reload && systemctl --user enable --now gpujup-host',
				'#   loginctl enable-linger "$USER"    # keep it running while you are logged out',
				'# Logs: journalctl --user -u gpujup-host -f',
				'[Unit]',
				'Description=gpujup host: reverse SSH tunnel to the relay and a supervised Jupyter',
				// A user manager cannot see network-online.target; gpujup waits for the relay itself.
				// Restarts are never given up (the default allows five in ten seconds).
				'StartLimitIntervalSec=0',
				'',
				'[Service]',
				'Type=exec',
				'WorkingDirectory=/home/me',
				'ExecStart=/usr/bin/node /usr/lib/node_modules/gpujup/dist/cli.js host --relay me@relay.example.org --env conda:tf --notebook-dir "/home/me/my notebooks" --no-tui',
				'Environment=NODE_ENV=production',
				'Restart=always',
				'RestartSec=5',
				'# 78: the relay refused the key or its host key is unknown or changed; 2: bad flags or config.',
				'# Retrying cannot fix those: fix it, then systemctl --user restart gpujup-host.',
				'RestartPreventExitStatus=2 78',
				'KillMode=process',
				'',
				'[Install]',
				'WantedBy=default.target',
				'',
			].join('\n'),
		);
		expect(unit).toContain(`RestartPreventExitStatus=2 ${hostCredentialsExitCode}\n`);
		expect(unit).not.toContain('network-online');
	});

	test('adds the host command when flags came first, and PATH when given', () => {
		const unit = systemdUnit(['--relay=r', '--print-systemd-unit=true', '--tui'], {
			execPath: '/n',
			script: '/g.js',
			workingDirectory: '/w/100%',
			path: '/home/me/.local/bin:/usr/bin',
		});
		expect(unit).toContain('\nExecStart=/n /g.js host --relay=r --no-tui\n');
		expect(unit).toContain('\nWorkingDirectory=/w/100%%\n');
		expect(unit).toContain(
			'\nEnvironment=NODE_ENV=production\nEnvironment=PATH=/home/me/.local/bin:/usr/bin\nRestart=always\n',
		);
	});

	test('escapes what systemd would expand or split', () => {
		expect(systemdWord('plain-word')).toBe('plain-word');
		expect(systemdWord('50%')).toBe('50%%');
		expect(systemdWord('$HOME')).toBe('$$HOME');
		expect(systemdWord('a "b" c\\d')).toBe('"a \\"b\\" c\\\\d"');
		expect(systemdWord('')).toBe('""');
		expect(environmentAssignment('PATH', '/a b:%x')).toBe('"PATH=/a b:%%x"');
	});
});

describe('the unit PATH', () => {
	const temporary = ['/tmp', '/run/user/1000'];

	test('keeps only the dirs gpujup needs, in the interactive order, then the system dirs', () => {
		const interactive = [
			'/home/me/.pyenv/shims',
			'/home/me/.local/bin',
			'/tmp/wrapper-x1y2/bin',
			'/home/me/.nvm/versions/node/v20.1.0/bin',
			'/home/me/.local/bin/',
			'/usr/local/sbin',
			'/usr/bin',
			'/home/me/project/node_modules/.bin',
			'/usr/bin',
			'relative/bin',
			'',
		].join(':');
		expect(
			servicePath({
				current: interactive,
				needed: [
					'/home/me/.nvm/versions/node/v20.1.0/bin',
					'/home/me/.local/bin',
					'/usr/bin',
					'/home/me/miniconda3/condabin',
					// Never kept, even when a tool was found there.
					'/home/me/.pyenv/shims',
					'/run/user/1000/fnm_multishells/123_456/bin',
				],
				temporary,
			}),
		).toBe(
			[
				'/home/me/.local/bin',
				'/home/me/.nvm/versions/node/v20.1.0/bin',
				'/usr/bin',
				'/home/me/miniconda3/condabin',
				'/usr/local/bin',
				'/bin',
			].join(':'),
		);
	});

	test('tells shims, temporary, wrapper and relative dirs apart from real ones', () => {
		for (const dir of [
			'/home/me/.pyenv/shims',
			'/home/me/.asdf/shims/',
			'/tmp/x',
			'/run/user/1000/fnm_multishells/1/bin',
			'/srv/app/node_modules/.bin',
			'bin',
			'',
		])
			expect(unfitPathDir(dir, temporary), dir).toBe(true);
		for (const dir of ['/usr/bin', '/home/me/.local/bin', '/opt/conda/bin', '/tmpfiles/bin'])
			expect(unfitPathDir(dir, temporary), dir).toBe(false);
	});
});
