import {accessSync, constants, statSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {needRelay} from '../config/narrow.js';
import type {Config} from '../config/types.js';
import {hostCredentialsExitCode} from '../core/exit-codes.js';
import {servicePath, systemdUnit, unfitPathDir} from '../core/systemd-unit.js';
import {hostStore, pairHost, runHost, stopJupyterForProfile} from '../wiring/host.js';
import {sanitizeLine} from '../core/sanitize.js';
import {runSession} from '../shell/session.js';

/** Dirs a wrapper made for one session lives in: never frozen into a unit. */
function temporaryDirs(): string[] {
	const runtime = process.env['XDG_RUNTIME_DIR'];
	return [os.tmpdir(), '/tmp', '/var/tmp', ...(runtime ? [runtime] : [])];
}

/** The dir holding the first executable `name` on `searchPath` (skipping shims and temp dirs). */
function toolDir(name: string, searchPath: string, temporary: readonly string[]): string | null {
	if (name.includes('/')) return path.isAbsolute(name) ? path.dirname(name) : null;
	for (const dir of searchPath.split(':')) {
		if (unfitPathDir(dir, temporary)) continue;
		const file = path.join(dir, name);
		try {
			accessSync(file, constants.X_OK);
			if (statSync(file).isFile()) return dir;
		} catch {
			// Not here.
		}
	}

	return null;
}

/**
 * The unit's PATH: a systemd user manager's own lacks ~/.local/bin and conda's dirs, and the
 * interactive one holds shims and session wrappers. Node's dir, gpujup's, and those of the tools
 * `gpujup host` runs: Jupyter (after the env's own bin), conda, nvidia-smi.
 */
function unitPath(config: Config): string {
	const current = process.env['PATH'] ?? '';
	const temporary = temporaryDirs();
	const firstWord = (command: string) => command.trim().split(/\s+/)[0] ?? '';
	const tools = [
		'gpujup',
		firstWord(config.jupyterCmd ?? 'jupyter'),
		firstWord(config.nvidiaSmi),
		...(config.env.kind === 'conda' ? ['conda'] : []),
	];
	const needed = [path.dirname(process.execPath)];
	for (const tool of tools) {
		const dir = toolDir(tool, current, temporary);
		if (dir !== null) needed.push(dir);
	}

	return servicePath({current, needed, temporary});
}

/** `gpujup host`, `--print-systemd-unit` and `--stop-jupyter`. */
export async function runHostCommand(config: Config): Promise<number> {
	if (config.printSystemdUnit) {
		process.stdout.write(
			systemdUnit(process.argv.slice(2), {
				execPath: process.execPath,
				script: process.argv[1] ?? 'gpujup',
				workingDirectory: config.notebookDir,
				path: unitPath(config),
			}),
		);
		return 0;
	}

	if (config.pair) {
		try {
			const pairing = await pairHost(needRelay(config));
			process.stdout.write(`${pairing}\n`);
			process.stderr.write(`gpujup: on the laptop, run: gpujup pair '${pairing}'\n`);
			return 0;
		} catch (error) {
			process.stderr.write(
				`gpujup: host --pair: no pairing string: ${sanitizeLine((error as Error).message)}\n`,
			);
			return 1;
		}
	}

	if (config.stopJupyter) {
		const message = await stopJupyterForProfile(config);
		process.stdout.write(message + '\n');
		return 0;
	}

	// Everything from here on dials the relay (parseCli refuses `host` without one).
	const host = needRelay(config);
	const store = hostStore(host);
	return runSession({
		config: host,
		store,
		socket: 'host',
		// systemd must not restart into the same refusal (RestartPreventExitStatus).
		failedExitCode: hostCredentialsExitCode,
		async start(asker, attach) {
			const ask = asker('reverse');
			return runHost(host, {
				store,
				attach,
				...(ask.askSecret ? {askSecret: ask.askSecret} : {}),
				...(ask.confirmHostKey ? {confirmHostKey: ask.confirmHostKey} : {}),
			});
		},
	});
}
