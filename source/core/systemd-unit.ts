/**
 * `gpujup host --print-systemd-unit`: a systemd user unit that runs this very command line. Pure.
 */

export type SystemdUnitOptions = {
	/** The node binary (`process.execPath`). */
	readonly execPath: string;
	/** gpujup's entry script (`process.argv[1]`). */
	readonly script: string;
	readonly workingDirectory: string;
	/** PATH for the service (a user manager's default PATH lacks ~/.local/bin, conda…); omitted when undefined. */
	readonly path?: string;
};

/** Flags that make no sense inside the unit (they are replaced by `--no-tui`). */
const dropped = /^--(?:print-systemd-unit|printSystemdUnit|no-tui|tui|noTui)(?:=.*)?$/;

/** systemd's `%` specifiers are expanded everywhere; `%%` is a literal percent. */
const escapeSpecifiers = (text: string): string => text.replaceAll('%', '%%');

/**
 * One ExecStart word: `%` and `$` doubled (specifiers, variables), quoted when it has whitespace,
 * quotes or backslashes.
 */
export function systemdWord(word: string): string {
	const escaped = escapeSpecifiers(word).replaceAll('$', '$$$$');
	if (escaped !== '' && !/[\s"'\\;]/.test(escaped)) return escaped;
	return `"${escaped.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
}

/** `Environment=` value: quoted, `%` doubled (variables are not expanded there). */
export function environmentAssignment(name: string, value: string): string {
	const text = escapeSpecifiers(`${name}=${value}`);
	if (!/[\s"'\\]/.test(text)) return text;
	return `"${text.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
}

/**
 * The unit text. `argv` is gpujup's own arguments (`process.argv.slice(2)`); `--print-systemd-unit`
 * and any TUI flag are dropped and `--no-tui` added (the journal gets JSON lines).
 * `KillMode=process`: a restart of gpujup leaves Jupyter (its own session) running to be adopted.
 */
export function systemdUnit(argv: readonly string[], options: SystemdUnitOptions): string {
	const args = argv.filter((arg) => !dropped.test(arg));
	if (!args.includes('host')) args.unshift('host');
	const exec = [options.execPath, options.script, ...args, '--no-tui'].map(systemdWord).join(' ');
	return [
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
		`WorkingDirectory=${escapeSpecifiers(options.workingDirectory)}`,
		`ExecStart=${exec}`,
		'Environment=NODE_ENV=production',
		...(options.path === undefined
			? []
			: [`Environment=${environmentAssignment('PATH', options.path)}`]),
		'Restart=always',
		'RestartSec=2',
		// Only gpujup is stopped on restart: Jupyter runs in its own session and is adopted.
		'KillMode=process',
		'',
		'[Install]',
		'WantedBy=default.target',
		'',
	].join('\n');
}
