/**
 * `gpujup status` for a fleet whose `[fleet.<alias>]` tables name no relay, run as the built
 * binary: the config error that names the host and the fix, exit 2 (it crashed with "Cannot read
 * properties of null (reading 'alias')", exit 1, before each command narrowed its config).
 */
import {writeFile} from 'node:fs/promises';
import path from 'node:path';
import {afterAll, beforeAll, expect, test} from 'vitest';
import {tempDir, type TempDir} from '../helpers/ports.js';
import {runGpujup} from './gpujup-process.js';

let home: TempDir;

beforeAll(async () => {
	home = await tempDir('fleet-no-relay');
});

afterAll(async () => {
	await home?.dispose();
});

test('status with [fleet.*] tables that name no relay: a config error naming the host, exit 2', async () => {
	const config = path.join(home.path, 'config.toml');
	await writeFile(config, '[fleet.a]\nrelay-port = 19516\n[fleet.b]\nrelay-port = 19526\n', {
		mode: 0o600,
	});
	const env: NodeJS.ProcessEnv = {
		...Object.fromEntries(
			Object.entries(process.env).filter(([key]) => !key.startsWith('GPUJUP_')),
		),
		HOME: home.path,
		XDG_CONFIG_HOME: path.join(home.path, '.config'),
		XDG_STATE_HOME: path.join(home.path, 'state'),
	};
	const result = await runGpujup(['status', '--config', config], env);
	expect(result.stderr).toMatch(/^gpujup: --relay: required for "status" \(host a\); give --relay/);
	expect(result.stderr).not.toMatch(/Cannot read properties|\n\s+at /);
	expect(result.code).toBe(2);
});
