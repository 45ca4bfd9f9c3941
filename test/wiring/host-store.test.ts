import {mkdtempSync, rmSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {afterAll, describe, expect, test} from 'vitest';
import {needRelay} from '../../source/config/narrow.js';
import {parseCli} from '../../source/config/resolve.js';
import {hostStore} from '../../source/wiring/host.js';

const home = mkdtempSync(path.join(os.tmpdir(), 'gpujup-host-store-'));
afterAll(() => {
	rmSync(home, {recursive: true, force: true});
});

function hostConfig(argv: string[]) {
	const result = parseCli(
		['host', ...argv],
		{HOME: home},
		{home, cwd: home, sshSystemConfig: null},
	);
	if (result.kind !== 'run') throw new Error(`expected a run, got ${result.kind}`);
	return needRelay(result.config);
}

describe('the GPU host’s header and hop', () => {
	test('the subtitle names the relay as typed: user, host and a port that is not 22', () => {
		const state = hostStore(
			hostConfig(['--relay', 'me@relay.example.org:2222', '--relay-port', '19516']),
		).getSnapshot();
		expect(state.role).toBe('host');
		expect(state.title).toBe(os.hostname());
		expect(state.subtitle).toBe('→ me@relay.example.org:2222');
		expect(state.hops.map((h) => [h.hop, h.name, h.label])).toEqual([
			['reverse', 'relay.example.org', 'relay.example.org (listening :19516)'],
		]);
		expect(hostStore(hostConfig(['--relay', 'me@relay.example.org'])).getSnapshot().subtitle).toBe(
			'→ me@relay.example.org',
		);
	});
});
