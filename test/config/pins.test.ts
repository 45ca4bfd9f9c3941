/** `relay-key` / `host-key` pins and the `pair` / `host --pair` arguments, as parseCli reads them. */
import {mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterEach, beforeEach, describe, expect, test} from 'vitest';
import {needRelay} from '../../source/config/narrow.js';
import {ConfigError, parseCli} from '../../source/config/resolve.js';
import type {Config} from '../../source/config/types.js';
import {hostKeyOptions, relayKeyNames} from '../../source/wiring/ssh-options.js';

let home = '';
let env: NodeJS.ProcessEnv = {};
const relayPin = `SHA256:${'r'.repeat(43)}`;
const hostPin = `SHA256:${'h+/'.repeat(14)}x`;

beforeEach(() => {
	home = mkdtempSync(join(tmpdir(), 'gpujup-pins-'));
	env = {HOME: home, USER: 'alice', XDG_CONFIG_HOME: join(home, 'xdg-config')};
});

afterEach(() => {
	rmSync(home, {recursive: true, force: true});
});

const configFile = () => join(home, 'xdg-config', 'gpujup', 'config.toml');

function writeConfig(text: string): void {
	mkdirSync(join(home, 'xdg-config', 'gpujup'), {recursive: true});
	writeFileSync(configFile(), text);
}

function run(argv: string[], extraEnv: NodeJS.ProcessEnv = {}): Config {
	const result = parseCli(argv, {...env, ...extraEnv}, {home, cwd: home, sshSystemConfig: null});
	if (result.kind !== 'run') throw new Error(result.kind);
	return result.config;
}

function failure(argv: string[], extraEnv: NodeJS.ProcessEnv = {}): string {
	try {
		run(argv, extraEnv);
	} catch (error) {
		expect(error).toBeInstanceOf(ConfigError);
		return (error as Error).message;
	}

	throw new Error(`accepted: ${argv.join(' ')}`);
}

describe('pins', () => {
	test('a profile pins each hop, and the pin reaches the hop with where it was set', () => {
		writeConfig(
			`[profiles.p507]\nrelay = "me@relay.example.org"\nrelay-key = "${relayPin}"\nhost-key = "${hostPin}"\n`,
		);
		const config = run(['--profile', 'p507']);
		expect(config.relayHostKeys.pin).toEqual({
			fingerprint: relayPin,
			origin: `${configFile()}:3: key "relay-key"`,
		});
		expect(config.gpuHostKeys.pin?.fingerprint).toBe(hostPin);
		expect(
			hostKeyOptions(config.relayHostKeys, relayKeyNames(needRelay(config)), {}),
		).toMatchObject({
			pin: {fingerprint: relayPin},
		});
		// Without pins, no pin option at all.
		const plain = run(['--relay', 'relay']);
		expect(plain.gpuHostKeys.pin).toBeUndefined();
		expect(hostKeyOptions(plain.gpuHostKeys, ['x'], {})).not.toHaveProperty('pin');
	});

	test('a variable pins too; a bad pin names where it came from', () => {
		expect(run(['--relay', 'r'], {GPUJUP_HOST_KEY: hostPin}).gpuHostKeys.pin?.origin).toBe(
			'GPUJUP_HOST_KEY',
		);
		expect(failure(['--relay', 'r'], {GPUJUP_RELAY_KEY: 'SHA256:short'})).toBe(
			'GPUJUP_RELAY_KEY: expected a SHA256 fingerprint as ssh-keygen -lf prints it (SHA256: and 43 characters), got "SHA256:short"',
		);
		writeConfig(`relay = "r"\nhost-key = 42\n`);
		expect(failure([])).toMatch(/config\.toml:2: key "host-key": expected a SHA256 fingerprint/);
	});
});

describe('pair arguments', () => {
	test('pair takes the string and a name (--name or --profile), and reads no profile', () => {
		// The profile does not exist yet: pair must not try to select it.
		writeConfig('[profiles.other]\nrelay = "x"\n');
		const config = run(['pair', 'gpujup://r?x', '--profile', 'p507']);
		expect(config).toMatchObject({
			command: 'pair',
			pairString: 'gpujup://r?x',
			pairName: 'p507',
			configPath: configFile(),
			profile: null,
		});
		expect(run(['pair', 'gpujup://r?x', '--name', 'n']).pairName).toBe('n');
		expect(run(['pair', 'gpujup://r?x']).pairName).toBeNull();
		expect(run(['pair', 'gpujup://r?x', '--config', 'c.toml']).configPath).toBe(
			join(home, 'c.toml'),
		);
	});

	test('pair and --pair refuse what means nothing', () => {
		expect(failure(['pair'])).toMatch(/pair: give the string `gpujup host --pair` printed/);
		expect(failure(['pair', 'a', 'b'])).toMatch(/unexpected argument "b" after "pair"/);
		expect(failure(['pair', 'a', '--name', 'x', '--profile', 'y'])).toMatch(
			/give one profile name/,
		);
		expect(failure(['pair', 'a', '--name', ' '])).toMatch(/--name: expected a profile name/);
		expect(failure(['--pair'])).toMatch(/only `gpujup host --pair`/);
		expect(failure(['connect', '--relay', 'r', '--name', 'x'])).toMatch(
			/--name: only for `gpujup pair/,
		);
		expect(run(['host', '--relay', 'r', '--pair']).pair).toBe(true);
	});
});
