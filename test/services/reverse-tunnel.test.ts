import {afterEach, describe, expect, test} from 'vitest';
import {initialHop, initialState, reduce} from '../../source/core/app-state.js';
import {createStore} from '../../source/core/store.js';
import type {HopStatus} from '../../source/core/types.js';
import {ReverseTunnel, stalePortMessage} from '../../source/services/reverse-tunnel.js';
import {startFaultProxy} from '../helpers/fault-proxy.js';
import {startLab, type Lab} from '../helpers/openssh-lab.js';
import {waitFor} from '../helpers/wait-for.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
	for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function lab(relayOptions: string[] = []): Promise<Lab> {
	const l = await startLab({reverse: 'none', relayOptions});
	cleanups.push(async () => l.dispose());
	return l;
}

/** A tunnel to the lab's relay (or to `port`, a fault proxy in front of it), with its own store. */
function tunnel(l: Lab, options: {port?: number; probeIntervalMs?: number} = {}) {
	const store = createStore(
		reduce,
		initialState({role: 'host', title: 'gpu', hops: [initialHop('reverse', 'relay')]}),
	);
	const history: HopStatus[] = [];
	store.subscribe(() => history.push(store.getSnapshot().hops[0]!));
	const t = new ReverseTunnel({
		label: `127.0.0.1 (listening :${l.relayPort})`,
		relay: {host: '127.0.0.1', port: options.port ?? l.relay.port, username: l.user},
		relayPort: l.relayPort,
		sshPort: l.gpu.sshPort,
		knownHostsFile: l.knownHosts,
		hostKeyNames: [`[127.0.0.1]:${l.relay.port}`],
		acceptNew: false,
		auth: {agentSocket: null, identities: [l.clientKey], defaultIdentities: []},
		keepaliveMs: 1000,
		keepaliveCount: 2,
		connectTimeoutMs: 10_000,
		probeIntervalMs: options.probeIntervalMs ?? 1000,
		probeTimeoutMs: 3000,
		backoff: {initialMs: 200, stepMs: 500, multiplier: 2, maxMs: 2000, jitter: 0},
		onStatus: (patch) => store.dispatch({type: 'hop', hop: 'reverse', patch}),
	});
	cleanups.push(async () => t.dispose());
	const hop = () => store.getSnapshot().hops[0]!;
	const until = async (predicate: (h: HopStatus) => boolean, message: string, timeoutMs = 60_000) =>
		waitFor(() => (predicate(hop()) ? hop() : null), {timeoutMs, intervalMs: 50, message});
	return {t, store, history, hop, until};
}

/**
 * A first tunnel through a fault proxy in front of the relay, ready, then the link blackholed until
 * the keepalive declares it lost and the tunnel is disposed: the relay may still hold the port.
 * The proxy, still silent.
 */
async function silentFirstTunnel(l: Lab) {
	const proxy = await startFaultProxy({targetPort: l.relay.port});
	cleanups.push(async () => proxy.dispose());
	const first = tunnel(l, {port: proxy.port});
	first.t.start();
	await first.until((h) => h.state === 'ready', 'first tunnel ready');
	proxy.setMode('blackhole');
	await first.until(
		(h) => h.state !== 'ready' && h.error?.kind === 'timeout',
		'keepalive declares the link lost',
	);
	await first.t.dispose();
	return proxy;
}

async function sshEcho(l: Lab): Promise<string> {
	const result = await l.ssh([...l.sshArgs(), 'echo ok'], {timeoutMs: 30_000});
	return `${result.code}:${result.stdout.trim()}:${result.stderr.trim()}`;
}

describe('reverse tunnel against OpenSSH', () => {
	test('OpenSSH reaches the GPU host through it, and again after the relay drops every session', async () => {
		const l = await lab();
		const {t, until} = tunnel(l);
		t.start();
		await until((h) => h.state === 'ready', 'tunnel ready');
		expect(await sshEcho(l)).toBe('0:ok:');

		await l.dropRelaySessions();
		const back = await until((h) => h.state === 'ready' && h.reconnects === 1, 'ready again');
		expect(back.lastLoss).not.toBeNull();
		expect(await sshEcho(l)).toBe('0:ok:');
	});

	test('the end-to-end probe drops the session when the GPU host sshd stops answering, and recovers', async () => {
		const l = await lab();
		const {t, until} = tunnel(l);
		t.start();
		await until((h) => h.state === 'ready', 'tunnel ready');
		await l.gpu.stop();
		const lost = await until(
			(h) => h.state !== 'ready' && h.error?.message.includes('end-to-end probe') === true,
			'probe failure reported',
		);
		expect(lost.error?.message).toContain(`127.0.0.1:${l.gpu.sshPort}`);
		await l.gpu.start();
		await until((h) => h.state === 'ready', 'ready once sshd is back');
		expect(await sshEcho(l)).toBe('0:ok:');
	});

	test('silent drop, relay without ClientAliveInterval: the stale port is reported and retried until the relay lets go', async () => {
		const l = await lab();
		// The first gpujup reaches the relay through a link that then goes silent.
		const proxy = await silentFirstTunnel(l);

		// A new session (new route, or gpujup restarted) finds the port still held.
		const second = tunnel(l);
		second.t.start();
		const stale = await second.until((h) => h.error?.kind === 'port-in-use', 'stale port reported');
		expect(stale.error?.message).toBe(stalePortMessage(l.relayPort));
		expect(stale.error?.message).toBe(
			`port ${l.relayPort} still held on the relay by an old session — retrying; fix on the relay: set ClientAliveInterval 15 / ClientAliveCountMax 3 in sshd_config so dead sessions are dropped`,
		);
		await second.until((h) => h.error?.kind === 'port-in-use' && h.attempt >= 3, 'keeps retrying');
		expect(second.hop().state).not.toBe('ready');

		// The link passes again: the relay finally sees the old session end and frees the port.
		proxy.setMode('pass');
		await second.until((h) => h.state === 'ready', 'ready once the relay let go');
		expect(await sshEcho(l)).toBe('0:ok:');
	});

	test('silent drop, relay with ClientAliveInterval 1 / CountMax 2: the relay drops the dead session and the tunnel recovers', async () => {
		const l = await lab(['ClientAliveInterval 1', 'ClientAliveCountMax 2']);
		const proxy = await silentFirstTunnel(l);

		// The old link stays silent: only the relay's own ClientAlive check can free the port.
		const second = tunnel(l);
		second.t.start();
		await second.until((h) => h.state === 'ready', 'ready while the old link is still silent');
		expect(proxy.mode).toBe('blackhole');
		expect(await sshEcho(l)).toBe('0:ok:');
	});

	test('a relay that forbids remote forwarding is reported as such, not as a stale port', async () => {
		const l = await lab(['AllowTcpForwarding local']);
		const {t, until} = tunnel(l);
		t.start();
		const refused = await until((h) => h.error !== null, 'refusal reported');
		expect(refused.error?.kind).toBe('forbidden');
		expect(refused.error?.message).toContain(
			`the relay refused to listen on localhost:${l.relayPort}`,
		);
		expect(refused.error?.message).toContain('AllowTcpForwarding');
		expect(refused.state).not.toBe('ready');
	});
});
