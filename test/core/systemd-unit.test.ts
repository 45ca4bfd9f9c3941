import {describe, expect, test} from 'vitest';
import {environmentAssignment, systemdUnit, systemdWord} from '../../source/core/systemd-unit.js';

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
				'Wants=network-online.target',
				'After=network-online.target',
				'',
				'[Service]',
				'Type=simple',
				'WorkingDirectory=/home/me',
				'ExecStart=/usr/bin/node /usr/lib/node_modules/gpujup/dist/cli.js host --relay me@relay.example.org --env conda:tf --notebook-dir "/home/me/my notebooks" --no-tui',
				'Environment=NODE_ENV=production',
				'Restart=always',
				'RestartSec=2',
				'KillMode=process',
				'',
				'[Install]',
				'WantedBy=default.target',
				'',
			].join('\n'),
		);
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
