/**
 * Layers: a setting's raw value from the first source that gives it (flag, variable, the file's
 * profile, its top level).
 */
import {dirname} from 'node:path';
import type {Flags} from './argv.js';
import {type FileLayer, fileOrigin} from './config-file.js';
import {envVarFor, type SettingName, settings} from './flags.js';
import {camelCase, normalizeKey, splitList} from './helpers.js';
import {boolean, type Given} from './values.js';

export function lookup(
	name: SettingName,
	layers: {flags: Flags; env: NodeJS.ProcessEnv; file: FileLayer | null; cwd: string},
): Given | undefined {
	const {flags, env, file, cwd} = layers;
	if (name === 'no-tui') {
		if (typeof flags.tui === 'boolean')
			return {value: !flags.tui, origin: '--no-tui', baseDir: cwd};
	} else {
		const flagValue = flags[camelCase(name)];
		const given = Array.isArray(flagValue) ? flagValue.length > 0 : flagValue !== undefined;
		if (given) return {value: flagValue, origin: `--${name}`, baseDir: cwd};
	}

	const variable = envVarFor(name);
	const envValue = env[variable];
	if (envValue !== undefined && envValue !== '') {
		const value =
			settings[name] === 'paths' || settings[name] === 'forwards' ? splitList(envValue) : envValue;
		return {value, origin: variable, baseDir: cwd};
	}

	if (!file) return undefined;
	const baseDir = dirname(file.path);
	if (file.profile && file.profileName) {
		const key = findKey(file.profile, name);
		if (key !== undefined) {
			return {
				value: file.profile[key],
				origin: fileOrigin(file, ['profiles', file.profileName], key),
				baseDir,
			};
		}
	}

	const key = findKey(file.top, name);
	if (key !== undefined) return {value: file.top[key], origin: fileOrigin(file, [], key), baseDir};
	return undefined;
}

export function findKey(table: Record<string, unknown>, name: string): string | undefined {
	return Object.keys(table).find((key) => normalizeKey(key) === name);
}

export function flagOrEnvBoolean(flag: unknown, env: NodeJS.ProcessEnv, name: string): boolean {
	if (typeof flag === 'boolean') return flag;
	const variable = envVarFor(name);
	const value = env[variable];
	if (value === undefined || value === '') return false;
	return boolean({value, origin: variable, baseDir: ''});
}
