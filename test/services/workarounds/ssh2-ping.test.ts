import {readFile, writeFile} from 'node:fs/promises';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import type {HopStatus} from '../../../source/core/types.js';
import {SshHop} from '../../../source/services/ssh-hop.js';
import {
	keepaliveConfig,
	probe,
	probeClient,
} from '../../../source/services/workarounds/ssh2-ping.js';
import {startLab, type Lab} from '../../helpers/openssh-lab.js';
import {tempDir} from '../../helpers/ports.js';
import {waitFor} from '../../helpers/wait-for.js';

describe('ssh2-ping probe', () => {
	it("finds _protocol.ping() and _callbacks on this install's ssh2 (red after an upgrade that moves them)", () => {
		expect(probe()).toMatchObject({name: 'ssh2-ping', active: true});
	});

	it('is off on a client shaped like a future ssh2 without them, and then hands keepalives to ssh2', () => {
		const future = {_protocol: {sendKeepalive() {}}, _callbacks: []};
		const verdict = probeClient(future);
		expect(verdict.active).toBe(false);
		expect(verdict.detail).toContain('_protocol.ping()');
		expect(verdict.detail).toContain("ssh2's own keepaliveInterval");
		expect(probeClient({_protocol: {ping() {}}}).detail).toContain('_callbacks');
		// Off: ssh2 pings (public API) and never gives up on its own; on: ours replace ssh2's.
		expect(keepaliveConfig(false, 5000, 3)).toEqual({
			keepaliveInterval: 5000,
			keepaliveCountMax: Number.MAX_SAFE_INTEGER,
		});
		expect(keepaliveConfig(false, 5000, 1).keepaliveInterval).toBe(2500);
		expect(keepaliveConfig(true, 5000, 3)).toEqual({keepaliveInterval: 0});
	});
});

describe('ssh2-ping fallback over real OpenSSH', () => {
	let lab: Lab;

	beforeAll(async () => {
		// DEBUG1: sshd logs each global request, so the test can count the keepalives it got.
		lab = await startLab({reverse: 'none', relayOptions: ['LogLevel DEBUG1']});
	});

	afterAll(async () => {
		await lab?.dispose();
	});

	it('keeps an idle link up past keepalive × count with ssh2 internals absent (rttMs null)', async () => {
		const dir = await tempDir('ping-fallback');
		const knownHosts = path.join(dir.path, 'known_hosts');
		await writeFile(knownHosts, await readFile(lab.knownHosts), {mode: 0o600});
		const patches: Array<Partial<HopStatus>> = [];
		const hop = new SshHop({
			name: 'relay',
			label: `127.0.0.1:${lab.relay.port}`,
			host: '127.0.0.1',
			port: lab.relay.port,
			username: lab.user,
			knownHostsFile: knownHosts,
			hostKeyNames: [`[127.0.0.1]:${lab.relay.port}`],
			acceptNew: false,
			auth: {agentSocket: null, identities: [lab.clientKey], defaultIdentities: []},
			keepaliveMs: 500,
			keepaliveCount: 2,
			connectTimeoutMs: 5000,
			// The verdict on a future ssh2 that moved its ping: the fallback runs.
			pingWorkaround: probeClient({_protocol: {}, _callbacks: []}),
			onStatus: (patch) => patches.push(patch),
		});
		const keepalives = async () =>
			((await readFile(lab.relay.logFile, 'utf8')).match(/rtype keepalive@openssh\.com/g) ?? [])
				.length;
		try {
			const before = await keepalives();
			hop.start();
			expect(await hop.waitReady(20_000)).not.toBeNull();
			// Eight keepalives answered: four times keepalive × count (0.5 s × 2) of an idle link.
			await waitFor(async () => (await keepalives()) >= before + 8, {
				timeoutMs: 30_000,
				intervalMs: 200,
				message: 'ssh2 sent keepalives on the idle link',
			});
			expect(hop.state).toBe('ready');
			expect(patches.some((p) => p.state === 'lost' || p.state === 'waiting')).toBe(false);
			expect(patches.every((p) => p.rttMs === undefined || p.rttMs === null)).toBe(true);
		} finally {
			await hop.dispose();
			await dir.dispose();
		}
	});
});
