import {mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {dirname, join} from 'node:path';
import {afterEach, beforeEach, expect} from 'vitest';
import {ConfigError, parseCli} from '../../source/config/resolve.js';
import type {Config} from '../../source/config/types.js';

/** A fresh HOME (and its XDG dirs) for each test, and parseCli run against it. */
export type ConfigHome = {
	readonly home: string;
	readonly env: NodeJS.ProcessEnv;
	/** `$XDG_CONFIG_HOME/gpujup/config.toml`. */
	configPath(): string;
	/** The config parseCli resolves for `argv` (a `run` result, or it throws). */
	run(argv: string[], extraEnv?: NodeJS.ProcessEnv): Config;
	/** The ConfigError parseCli throws for `argv` (it must throw one). */
	configError(argv: string[], extraEnv?: NodeJS.ProcessEnv): ConfigError;
};

/** Writes `text` to `path`, its folders made; the path. */
export function write(path: string, text: string): string {
	mkdirSync(dirname(path), {recursive: true});
	writeFileSync(path, text);
	return path;
}

/** Registers beforeEach/afterEach that make and remove a temp HOME named `prefix…`. */
export function configHomeHooks(prefix: string): ConfigHome {
	let home = '';
	let env: NodeJS.ProcessEnv = {};
	beforeEach(() => {
		home = mkdtempSync(join(tmpdir(), prefix));
		env = {
			HOME: home,
			USER: 'alice',
			XDG_CONFIG_HOME: join(home, 'xdg-config'),
			XDG_STATE_HOME: join(home, 'xdg-state'),
		};
	});
	afterEach(() => {
		rmSync(home, {recursive: true, force: true});
	});
	const options = () => ({stdoutIsTty: true, home, cwd: home, sshSystemConfig: null});
	return {
		get home() {
			return home;
		},
		get env() {
			return env;
		},
		configPath: () => join(home, 'xdg-config', 'gpujup', 'config.toml'),
		run(argv, extraEnv = {}) {
			const result = parseCli(argv, {...env, ...extraEnv}, options());
			if (result.kind !== 'run') throw new Error(`expected a run result, got ${result.kind}`);
			return result.config;
		},
		configError(argv, extraEnv = {}) {
			try {
				parseCli(argv, {...env, ...extraEnv}, options());
			} catch (error) {
				expect(error).toBeInstanceOf(ConfigError);
				return error as ConfigError;
			}

			throw new Error(`expected a ConfigError for ${argv.join(' ')}`);
		},
	};
}
