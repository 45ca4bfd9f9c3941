/**
 * Fleet configuration: `gpujup A B …` and `[fleet.<alias>]` tables in config.toml, resolved into
 * one Config per GPU host (issue 13, SPEC "Chains, pairing, fleet").
 */

import {join} from 'node:path';
import {configHomeHooks, write} from '../helpers/config-home.js';
import {beforeEach, describe, expect, test} from 'vitest';
import type {Config} from '../../source/config/types.js';

const sandbox = configHomeHooks('gpujup-fleet-config-');
const {configPath, run} = sandbox;
const configError = (argv: string[]): string => sandbox.configError(argv).message;

beforeEach(() => {
	write(
		join(sandbox.home, '.ssh', 'config'),
		[
			'Host relay',
			'  HostName relay.example.org',
			'  User alice',
			'Host p507',
			'  HostName localhost',
			'  Port 19506',
			'  ProxyJump relay',
			'Host p508',
			'  HostName localhost',
			'  Port 19516',
			'  ProxyJump relay',
			'Host p509',
			'  HostName localhost',
			'  Port 19526',
			'  ProxyJump relay',
		].join('\n'),
	);
});

/** What each host of the fleet is: name, chain, ports. */
const hosts = (config: Config) =>
	(config.fleet ?? []).map((host) => ({
		name: host.fleetName,
		chain: host.chain.map((hop) => `${hop.name}@${hop.host}:${hop.port}`),
		jupyterPort: host.jupyterPort,
		localPort: host.localPort,
		forwards: host.forwards,
	}));

describe('gpujup A B …: several aliases', () => {
	test('each alias its own chain from ~/.ssh/config, local ports 19507, 19517, 19527', () => {
		const config = run(['p507', 'p508', 'p509']);
		expect(config.command).toBe('connect');
		expect(config.fleetHosts).toEqual(['p507', 'p508', 'p509']);
		expect(hosts(config)).toEqual([
			{
				name: 'p507',
				chain: ['relay@relay.example.org:22', 'p507@localhost:19506'],
				jupyterPort: 19508,
				localPort: 19507,
				forwards: [],
			},
			{
				name: 'p508',
				chain: ['relay@relay.example.org:22', 'p508@localhost:19516'],
				jupyterPort: 19508,
				localPort: 19517,
				forwards: [],
			},
			{
				name: 'p509',
				chain: ['relay@relay.example.org:22', 'p509@localhost:19526'],
				jupyterPort: 19508,
				localPort: 19527,
				forwards: [],
			},
		]);
		// `connect A B` and `status A B` are the same fleet.
		expect(hosts(run(['connect', 'p507', 'p508']))).toEqual(hosts(run(['p507', 'p508'])));
		expect(run(['status', 'p507', 'p508', '--json']).fleetHosts).toEqual(['p507', 'p508']);
	});

	test('a flag is for every host; a base local port and forwards move by 10 per host, 0 stays 0', () => {
		const config = run(['p507', 'p508', '--local-port', '9000', '--forward', '6006:6006']);
		expect(hosts(config).map((h) => [h.localPort, h.forwards])).toEqual([
			[9000, [{local: 6006, remote: 6006}]],
			[9010, [{local: 6016, remote: 6006}]],
		]);
		expect(hosts(run(['p507', 'p508', '--local-port', '0'])).map((h) => h.localPort)).toEqual([
			0, 0,
		]);
		expect(
			hosts(run(['p507', 'p508', '--jupyter-port', '8888'])).map((h) => h.jupyterPort),
		).toEqual([8888, 8888]);
	});

	test('one alias alone is no fleet; the same alias twice, a typo, or doctor with several are refused', () => {
		const single = run(['p507']);
		expect([single.fleet, single.fleetName ?? null, single.hostAlias]).toEqual([
			undefined,
			null,
			'p507',
		]);
		expect(configError(['p507', 'p507'])).toBe(
			'"p507" is named twice; give each host once (gpujup A B …)',
		);
		expect(configError(['p507', 'p5O8'])).toContain('"p5O8": no Host p5O8 in ~/.ssh/config');
		expect(configError(['doctor', 'p507', 'p508'])).toContain('unexpected argument "p508"');
		expect(configError(['p507', 'p508', '--relay', 'relay'])).toContain(
			'--relay and "p507" both name the way to the GPU host',
		);
	});
});

describe('[fleet.<alias>] tables', () => {
	test('with tables and no alias, gpujup connects to every host, each with its own keys', () => {
		write(
			configPath(),
			[
				'jupyter-port = 8888',
				'[fleet.p507]',
				'local-port = 8001',
				'forward = ["6006"]',
				'[fleet.p508]',
				'jupyter-port = 9999',
				'nvidia-smi = "/usr/lib/wsl/lib/nvidia-smi"',
				'',
			].join('\n'),
		);
		const config = run([]);
		expect(config.fleetHosts).toEqual(['p507', 'p508']);
		expect(hosts(config)).toEqual([
			{
				name: 'p507',
				chain: ['relay@relay.example.org:22', 'p507@localhost:19506'],
				jupyterPort: 8888,
				localPort: 8001,
				// Its own forward: as written, not moved.
				forwards: [{local: 6006, remote: 6006}],
			},
			{
				name: 'p508',
				chain: ['relay@relay.example.org:22', 'p508@localhost:19516'],
				jupyterPort: 9999,
				localPort: 19517,
				forwards: [],
			},
		]);
		expect(config.fleet?.map((host) => host.nvidiaSmi)).toEqual([
			'nvidia-smi',
			'/usr/lib/wsl/lib/nvidia-smi',
		]);
		// A flag still wins over the table, for this run.
		expect(hosts(run(['--jupyter-port', '7777'])).map((h) => h.jupyterPort)).toEqual([7777, 7777]);
		// `status` lists the same hosts; an alias picks one host, with its table.
		expect(run(['status']).fleetHosts).toEqual(['p507', 'p508']);
		const one = run(['p507']);
		expect([one.fleet, one.localPort, one.jupyterPort]).toEqual([undefined, 8001, 8888]);
		// `url` with no alias: the names, to ask each host; with one, that host.
		expect(run(['url']).fleetHosts).toEqual(['p507', 'p508']);
		expect(run(['url', 'p508']).fleetName).toBe('p508');
	});

	test('a table with relay-port is a host behind the --relay chain, not an ~/.ssh/config alias', () => {
		write(
			configPath(),
			[
				'relay = "me@relay2.example.org"',
				'[fleet.box1]',
				'relay-port = 19606',
				'[fleet.box2]',
				'relay-port = 19616',
				'host-user = "bob"',
				'',
			].join('\n'),
		);
		const config = run([]);
		expect(
			config.fleet?.map((host) => [host.fleetName, host.hostAlias, host.relayPort, host.hostUser]),
		).toEqual([
			['box1', null, 19606, 'me'],
			['box2', null, 19616, 'bob'],
		]);
		expect(config.fleet?.map((host) => host.relay?.host)).toEqual([
			'relay2.example.org',
			'relay2.example.org',
		]);
	});

	test('keys that are not a host’s, unknown keys and bad values name the file, line and table', () => {
		write(configPath(), '[fleet.p507]\nno-tui = true\n');
		expect(configError([])).toBe(
			`${configPath()}:2: "no-tui" is not a per-host key; [fleet.p507] takes relay, relay-port, host-user, jupyter-port, local-port, identity, known-hosts, accept-new, keepalive, keepalive-count, host-key-alias, forward, jupyter-log, nvidia-smi, notify-after, relay-key, host-key (put "no-tui" at the top level)`,
		);
		write(configPath(), '[fleet.p507]\njupyter-prot = 1\n');
		expect(configError([])).toBe(
			`${configPath()}:2: unknown key "jupyter-prot"; did you mean "jupyter-port"?`,
		);
		write(configPath(), '[fleet.p507]\nlocal-port = 1\n[fleet.p508]\nlocal-port = "x"\n');
		expect(configError([])).toBe(
			`${configPath()}:4: key "local-port": expected a port 0-65535 (0 picks a free one), got "x"`,
		);
		write(configPath(), 'fleet = 3\n');
		expect(configError([])).toBe(
			`${configPath()}:1: key "fleet": expected tables like [fleet.ALIAS], got 3`,
		);
		write(configPath(), '');
		expect(configError(['p507', 'p508', '--local-port', '65530'])).toBe(
			"--local-port: 65530 + 10 for the fleet's host 2 (p508) is past 65535; give [fleet.p508] a local-port of its own",
		);
	});
});
