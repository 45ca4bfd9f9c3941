/**
 * `gpujup host --print-systemd-unit`: a systemd user unit that runs this very command line. Pure.
 */
import {hostCredentialsExitCode, usageExitCode} from './exit-codes.js';

export type SystemdUnitOptions = {
	/** The node binary (`process.execPath`). */
	readonly execPath: string;
	/** gpujup's entry script (`process.argv[1]`). */
	readonly script: string;
	readonly workingDirectory: string;
	/** PATH for the service (see {@link servicePath}); omitted when undefined. */
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

/** Where every system keeps the basic tools; always in the unit's PATH. */
const systemDirs = ['/usr/local/bin', '/usr/bin', '/bin'] as const;

const trimSlashes = (dir: string): string => (dir === '/' ? dir : dir.replace(/\/+$/, ''));

/**
 * Whether `dir` must stay out of a unit's PATH: relative or empty, a version manager's shims
 * (pyenv, rbenv, asdf: they need the shell's setup to pick a version), a package runner's
 * `node_modules/.bin`, or under one of the `temporary` dirs (a wrapper made for one shell session).
 */
export function unfitPathDir(dir: string, temporary: readonly string[]): boolean {
	const clean = trimSlashes(dir);
	if (!clean.startsWith('/')) return true;
	if (/\/shims(?:\/|$)/.test(clean) || /\/node_modules\/\.bin(?:\/|$)/.test(clean)) return true;
	return temporary.some((root) => {
		const base = trimSlashes(root);
		return base !== '/' && base !== '' && (clean === base || clean.startsWith(`${base}/`));
	});
}

/**
 * The unit's PATH: only the dirs gpujup needs (`needed`: node's, gpujup's, those of the tools it
 * runs), in the order the interactive PATH (`current`) has them so the same programs win, then
 * the ones it lacks; the system dirs always; no duplicates, nothing {@link unfitPathDir} rejects.
 */
export function servicePath(options: {
	readonly current: string;
	readonly needed: readonly string[];
	readonly temporary: readonly string[];
}): string {
	const fit = (dir: string) => !unfitPathDir(dir, options.temporary);
	const needed = new Set([...options.needed.filter(fit).map(trimSlashes), ...systemDirs]);
	const chosen: string[] = [];
	const add = (dir: string) => {
		if (!chosen.includes(dir)) chosen.push(dir);
	};

	for (const dir of options.current.split(':').filter(fit).map(trimSlashes))
		if (needed.has(dir)) add(dir);
	for (const dir of needed) add(dir);
	return chosen.join(':');
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
		// No network-online.target: a user manager cannot see it, and gpujup waits for the relay
		// itself. No start limit: the default gives up after five restarts in ten seconds.
		'StartLimitIntervalSec=0',
		'',
		'[Service]',
		// `exec`: a missing node or script fails the start instead of passing for a running service.
		'Type=exec',
		`WorkingDirectory=${escapeSpecifiers(options.workingDirectory)}`,
		`ExecStart=${exec}`,
		'Environment=NODE_ENV=production',
		...(options.path === undefined
			? []
			: [`Environment=${environmentAssignment('PATH', options.path)}`]),
		'Restart=always',
		'RestartSec=5',
		`# ${hostCredentialsExitCode}: the relay refused the key or its host key is unknown or changed; ${usageExitCode}: bad flags or config.`,
		'# Retrying cannot fix those: fix it, then systemctl --user restart gpujup-host.',
		`RestartPreventExitStatus=${usageExitCode} ${hostCredentialsExitCode}`,
		// Only gpujup is stopped on restart: Jupyter runs in its own session and is adopted.
		'KillMode=process',
		'',
		'[Install]',
		'WantedBy=default.target',
		'',
	].join('\n');
}
