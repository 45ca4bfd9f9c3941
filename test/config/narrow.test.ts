/**
 * Each command narrows its Config once (config/narrow.ts): a command that dials the relay gets a
 * RelayConfig, one with `--slurm` a SlurmConfig; where the relay is missing, a ConfigError says so.
 */
import {describe, expect, test} from 'vitest';
import {ConfigError} from '../../source/config/errors.js';
import {needRelay, withRelay, withSlurm} from '../../source/config/narrow.js';
import {configHomeHooks, write} from '../helpers/config-home.js';

const sandbox = configHomeHooks('gpujup-narrow-');
const {configPath, run} = sandbox;

describe('narrowing a command’s config', () => {
	test('a relay given: the same config with its relay; --slurm: with its Slurm settings', () => {
		const config = run(['--relay', 'me@relay.example.org:2222']);
		const relayed = needRelay(config);
		expect(relayed).toEqual(config);
		expect(relayed.relay).toEqual({host: 'relay.example.org', port: 2222, user: 'me', alias: null});
		expect(withSlurm(relayed)).toBeNull();
		const slurm = withSlurm(needRelay(run(['--relay', 'me@login.example.org', '--slurm'])));
		expect(slurm?.slurm).toMatchObject({onQuit: 'ask', nodeSshPort: 22, sbatchArgs: []});
	});

	test('no relay: null for `status` to explain, a ConfigError for a command that dials it', () => {
		const config = run(['status']);
		expect(config.relay).toBeNull();
		expect(withRelay(config)).toBeNull();
		expect(() => needRelay(config)).toThrow(ConfigError);
		expect(() => needRelay(config)).toThrow('--relay: required for "status"');
	});

	test('a fleet host whose table names no relay is refused by name, not a crash', () => {
		write(configPath(), '[fleet.a]\nrelay-port = 19516\n[fleet.b]\nrelay-port = 19526\n');
		const config = run(['status']);
		expect(config.fleetHosts).toEqual(['a', 'b']);
		const first = config.fleet?.[0];
		if (!first) throw new Error('expected a fleet');
		expect(first.relay).toBeNull();
		expect(() => needRelay(first)).toThrow('--relay: required for "status" (host a)');
	});
});
