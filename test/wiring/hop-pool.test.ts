/**
 * The hops a fleet's chains share (wiring/hop-pool.ts): the same chain prefix is one SshHop for
 * every host, each host's store hears its status (a late one the latest at once), and the pool
 * alone disposes it. Real SshHops, never started: what is shared is decided before any connect.
 */
import {describe, expect, it} from 'vitest';
import type {ChainHop} from '../../source/config/types.js';
import {HopPool} from '../../source/wiring/hop-pool.js';
import {SshHop, type SshHopOptions} from '../../source/services/ssh-hop.js';

const policy = {userFiles: [], globalFiles: [], alias: null, strict: 'yes', hash: false} as const;
const hop = (host: string, port: number, user = 'alice'): ChainHop => ({
	name: host,
	host,
	port,
	user,
	identities: [],
	hostKeys: policy,
	keyNames: [],
});

describe('HopPool', () => {
	it('one hop per chain prefix; each listener hears its status, a late one the latest', async () => {
		const pool = new HopPool();
		const made: SshHop[] = [];
		let publish: SshHopOptions['onStatus'] | undefined;
		const make = (onStatus: SshHopOptions['onStatus']) => {
			publish ??= onStatus;
			const created = new SshHop({
				name: 'relay',
				label: 'relay',
				host: '127.0.0.1',
				port: 1,
				username: 'alice',
				auth: {agentSocket: null, identities: [], defaultIdentities: []},
				knownHostsFile: '/dev/null',
				acceptNew: false,
				keepaliveMs: 5000,
				keepaliveCount: 3,
				hostKeyNames: [],
				onStatus,
			});
			made.push(created);
			return created;
		};

		const heard: Array<[string, unknown]> = [];
		const relay = hop('relay.example.org', 22);
		const a = pool.hop([relay], make, (patch) => heard.push(['a', patch.state]));
		publish!({state: 'ready'});
		// A second host behind the same relay gets the same hop and, at once, its latest status.
		const b = pool.hop([relay], make, (patch) => heard.push(['b', patch.state]));
		expect(b).toBe(a);
		expect(heard).toEqual([
			['a', 'ready'],
			['b', 'ready'],
		]);
		// Another user, port or an earlier hop is another connection.
		expect(pool.hop([hop('relay.example.org', 22, 'bob')], make, () => {})).not.toBe(a);
		expect(pool.hop([hop('relay.example.org', 2222)], make, () => {})).not.toBe(a);
		expect(pool.hop([hop('bastion', 22), relay], make, () => {})).not.toBe(a);
		expect([made.length, pool.size, pool.owns(a), pool.owns(made[1]!)]).toEqual([4, 4, true, true]);
		await pool.dispose();
		expect([pool.size, pool.owns(a), a.state]).toEqual([0, false, 'closed']);
	});
});
