/**
 * Values: each setting's raw value (a {@link Given}) checked and converted, or a ConfigError
 * naming where it came from.
 */
import {resolve} from 'node:path';
import {isSha256Fingerprint} from '../core/pairing.js';
import type {HostKeyPin} from '../core/pins.js';
import {splitWords} from '../core/shell.js';
import {sbatchArgsProblem} from '../core/slurm.js';
import {ConfigError} from './errors.js';
import type {SettingName} from './flags.js';
import {expandHome} from './helpers.js';
import type {EnvSpec, ForwardSpec, OnQuit, SlurmSettings} from './types.js';

export const defaults = {
	relayPort: 19506,
	jupyterPort: 19508,
	localPort: 19507,
	keepaliveS: 5,
	keepaliveCount: 3,
	notifyAfterS: 60,
	tunnelBackAfterS: 60,
	sshPort: 22,
	nvidiaSmi: 'nvidia-smi',
	relaySshPort: 22,
} as const;

/** A raw value and where it came from, for messages (`--relay-port`, `GPUJUP_X`, `file:7: key "k"`). */
export type Given = {value: unknown; origin: string; baseDir: string};

export function fail(given: Given, expected: string): never {
	throw new ConfigError(`${given.origin}: expected ${expected}, got ${show(given.value)}`);
}

export function show(value: unknown): string {
	if (typeof value === 'string') return JSON.stringify(value);
	if (value === undefined) return 'nothing';
	if (typeof value === 'bigint') return value.toString();
	if (value instanceof Date) return value.toISOString();
	return JSON.stringify(value) ?? String(value);
}

export function text(given: Given): string {
	if (typeof given.value !== 'string' || given.value.trim() === '')
		fail(given, 'a non-empty string');
	return given.value;
}

/** A TOML number as is; a string only when it is plainly written digits (no hex, no `1e3`). */
function numberFrom(value: unknown, pattern: RegExp): number {
	if (typeof value === 'number') return value;
	if (typeof value === 'bigint') return Number(value);
	if (typeof value === 'string' && pattern.test(value.trim())) return Number(value.trim());
	return Number.NaN;
}

const digits = /^\d+$/;
const decimal = /^(?:\d+(?:\.\d*)?|\.\d+)$/;

export function port(given: Given, min: 0 | 1): number {
	const number = numberFrom(given.value, digits);
	if (!Number.isInteger(number) || number < min || number > 65_535) {
		fail(given, min === 0 ? 'a port 0-65535 (0 picks a free one)' : 'a port 1-65535');
	}

	return number;
}

/** An http(s) URL; the message never repeats it (it may carry a secret). */
export function httpUrl(given: Given): string {
	let url: URL | null = null;
	try {
		url = typeof given.value === 'string' ? new URL(given.value) : null;
	} catch {
		url = null;
	}

	if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:'))
		throw new ConfigError(
			`${given.origin}: expected an http:// or https:// URL (the value is not shown: it may hold a secret)`,
		);
	return url.href;
}

export function positiveNumber(given: Given): number {
	const number = numberFrom(given.value, decimal);
	if (!Number.isFinite(number) || number <= 0) fail(given, 'a positive number');
	return number;
}

/**
 * Keepalive bounds. Below 0.1 s a healthy link flaps between ready and lost (timers and RTT are
 * of that order); above an hour × 100 nothing would ever be declared lost, and Node's timers
 * overflow past 2^31 ms (about 24.8 days) and fire at once.
 */
export const keepaliveLimits = {
	seconds: {min: 0.1, max: 3600},
	count: {min: 1, max: 100},
} as const;

export function keepaliveSeconds(given: Given): number {
	const {min, max} = keepaliveLimits.seconds;
	const number = numberFrom(given.value, decimal);
	if (!Number.isFinite(number) || number < min || number > max)
		fail(given, `seconds from ${min} to ${max}`);
	return number;
}

export function keepaliveCount(given: Given): number {
	const {min, max} = keepaliveLimits.count;
	const number = numberFrom(given.value, digits);
	if (!Number.isSafeInteger(number) || number < min || number > max)
		fail(given, `a whole number from ${min} to ${max}`);
	return number;
}

export function boolean(given: Given): boolean {
	const {value} = given;
	if (typeof value === 'boolean') return value;
	// Only variables arrive as strings here; TOML has real booleans.
	if (typeof value === 'string' && given.origin.startsWith('GPUJUP_')) {
		const word = value.trim().toLowerCase();
		if (['1', 'true', 'yes', 'on'].includes(word)) return true;
		if (['0', 'false', 'no', 'off'].includes(word)) return false;
		fail(given, '1, 0, true, false, yes or no');
	}

	return fail(given, 'true or false');
}

export function listOf(given: Given): Given[] {
	const items = Array.isArray(given.value) ? given.value : [given.value];
	return items.map((value) => ({...given, value}));
}

export function forward(given: Given): ForwardSpec {
	const {value} = given;
	const expected = 'LOCAL:REMOTE ports like 6006:6006';
	if (typeof value === 'number') {
		return {local: port(given, 1), remote: port(given, 1)};
	}

	if (typeof value !== 'string') fail(given, expected);
	const match = /^\s*(\d+)\s*(?::\s*(\d+)\s*)?$/.exec(value);
	if (!match) fail(given, expected);
	const local = Number(match[1]);
	const remote = Number(match[2] ?? match[1]);
	if (local > 65_535 || remote < 1 || remote > 65_535)
		fail(given, `${expected} (local 0-65535, remote 1-65535)`);
	return {local, remote};
}

/**
 * `--slurm` and its settings (checked even without it, so a typo in a profile shows at once). A
 * string is split as a shell would (`--sbatch='--partition gpu --comment "a b"'`); the config
 * file's list is taken word for word.
 */
export function slurmSettings(
	command: string,
	get: (name: SettingName) => Given | undefined,
): SlurmSettings | null {
	const sbatchGiven = get('sbatch');
	const sbatchArgs = sbatchGiven ? sbatchWords(sbatchGiven) : [];
	const onQuitGiven = get('on-quit');
	const onQuit = onQuitGiven ? onQuitValue(onQuitGiven) : 'ask';
	const nodeSshGiven = get('node-ssh-port');
	const nodeSshPort = nodeSshGiven ? port(nodeSshGiven, 1) : defaults.sshPort;
	const slurmGiven = get('slurm');
	if (!slurmGiven || !boolean(slurmGiven)) return null;
	if (command === 'host')
		throw new ConfigError(
			`${slurmGiven.origin}: is for connect (the laptop); gpujup host runs on a GPU host, and a Slurm job is started by connect --slurm`,
		);
	const envGiven = get('env');
	const notebookDirGiven = get('notebook-dir');
	return {
		sbatchArgs,
		onQuit,
		nodeSshPort,
		env: envGiven ? envSpec(envGiven, '', clusterPath) : null,
		notebookDir: notebookDirGiven ? clusterPath(notebookDirGiven) : null,
	};
}

/**
 * A path on the cluster (`--slurm`'s `--env venv:…` and `--notebook-dir`): absolute, or `~/…` for
 * the home there (expanded on the login node); the laptop's cwd means nothing there.
 */
function clusterPath(given: Given): string {
	const value = text(given).trim();
	if (value.startsWith('/') || value === '~' || value.startsWith('~/')) return value;
	return fail(given, 'a path on the cluster (absolute, or ~/…)');
}

function sbatchWords(given: Given): string[] {
	let words: string[];
	if (Array.isArray(given.value)) {
		words = given.value.map((item) => {
			if (typeof item !== 'string') fail(given, 'a list of strings (sbatch options)');
			return item;
		});
	} else {
		try {
			words = splitWords(text(given));
		} catch (error: unknown) {
			throw new ConfigError(`${given.origin}: ${(error as Error).message}`);
		}
	}
	const problem = sbatchArgsProblem(words);
	if (problem) throw new ConfigError(`${given.origin}: ${problem}`);
	return words;
}

function onQuitValue(given: Given): OnQuit {
	const value = typeof given.value === 'string' ? given.value.trim() : given.value;
	if (value === 'keep' || value === 'cancel' || value === 'ask') return value;
	return fail(given, 'keep, cancel or ask');
}

export function envSpec(
	given: Given,
	home: string,
	pathOf: (given: Given) => string = (path) => localPath(path, home),
): EnvSpec {
	const expected = 'conda:NAME, venv:PATH or none';
	if (typeof given.value !== 'string') fail(given, expected);
	const value = given.value.trim();
	if (value === 'none') return {kind: 'none'};
	const separator = value.indexOf(':');
	const kind = value.slice(0, separator);
	const rest = value.slice(separator + 1);
	if (separator > 0 && rest !== '') {
		if (kind === 'conda') return {kind: 'conda', name: rest};
		if (kind === 'venv') return {kind: 'venv', path: pathOf({...given, value: rest})};
	}

	return fail(given, expected);
}

export function localPath(given: Given, home: string): string {
	const value = text(given);
	return resolve(given.baseDir, expandHome(value, home));
}

export function hostKeyPin(given: Given): HostKeyPin {
	const value = typeof given.value === 'string' ? given.value.trim() : given.value;
	if (typeof value !== 'string' || !isSha256Fingerprint(value))
		fail(given, 'a SHA256 fingerprint as ssh-keygen -lf prints it (SHA256: and 43 characters)');
	return {fingerprint: value, origin: given.origin};
}
