import {createRequire} from 'node:module';
import type net from 'node:net';
import ssh2 from 'ssh2';
import {describe, expect, it} from 'vitest';
import {generateEd25519} from '../../../source/services/ssh-keys.js';
import {
	extraChannelWindow,
	probe,
	probeChannelModule,
	widenChannelWindow,
	type ChannelModule,
} from '../../../source/services/workarounds/ssh2-window.js';
import {waitFor} from '../../helpers/wait-for.js';

describe('widenChannelWindow', () => {
	// The same arithmetic as ssh2's client.js CHANNEL_DATA and Channel.js windowAdjust.
	const max = 2 * 1024 * 1024;
	const fakeChannel = () => {
		const adjusts: number[] = [];
		const channel = {
			incoming: {id: 0, window: max, packetSize: 32 * 1024, state: 'open'},
			outgoing: {id: 7},
			_client: {_protocol: {channelWindowAdjust: (_id: number, n: number) => adjusts.push(n)}},
		};
		/** Returns false where ssh2 would drop the packet. */
		const data = (length: number, backpressured: boolean) => {
			if (channel.incoming.window === 0) return false;
			channel.incoming.window -= length;
			if (!backpressured && channel.incoming.window <= max / 2) {
				const amount = max - channel.incoming.window;
				channel.incoming.window += amount;
				adjusts.push(amount);
			}
			return true;
		};
		return {channel, adjusts, data};
	};

	it('grants the extra window once and keeps ssh2 refilling by integers', () => {
		const {channel, adjusts, data} = fakeChannel();
		widenChannelWindow(channel, 1024 * 1024);
		widenChannelWindow(channel, 1024 * 1024); // a second call changes nothing
		expect(adjusts).toEqual([1024 * 1024]);
		expect(channel.incoming.window).toBe(max);
		for (let i = 0; i < 48; i++) expect(data(32 * 1024, false)).toBe(true);
		expect(adjusts.slice(1).every((n) => Number.isInteger(n) && n > 0)).toBe(true);
	});

	it('never makes ssh2 drop data the peer may still send while the reader is backpressured', () => {
		const {channel, data} = fakeChannel();
		widenChannelWindow(channel, 1024 * 1024);
		// ssh2's own count reaches exactly 0 after 2 MiB; the real window still has 1 MiB.
		for (let i = 0; i < 64; i++) expect(data(32 * 1024, true)).toBe(true);
		expect(channel.incoming.window === 0).toBe(false);
		for (let i = 0; i < 32; i++) expect(data(32 * 1024, true)).toBe(true);
		expect(channel.incoming.window).toBe(-1024 * 1024); // the real window is spent, exactly
	});
});

describe('ssh2-window probe', () => {
	const installed = createRequire(import.meta.url)('ssh2/lib/Channel.js') as ChannelModule;
	const protocol = {channelWindowAdjust() {}};

	it("finds ssh2's channel window as expected on this install (red after an upgrade that changes it)", () => {
		expect(probe()).toMatchObject({name: 'ssh2-window', active: true});
		expect(probeChannelModule(installed, protocol).active).toBe(true);
	});

	it('is off, keeping the default window, where a future ssh2 changed what it relies on', () => {
		const noMax = probeChannelModule({...installed, MAX_WINDOW: undefined}, protocol);
		expect(noMax).toMatchObject({active: false});
		expect(noMax.detail).toContain("ssh2's default 2 MiB window");
		expect(probeChannelModule(installed, {}).detail).toContain('channelWindowAdjust');
		// A refill that no longer keeps its count in incoming.window.
		const elsewhere = probeChannelModule(
			{
				...installed,
				windowAdjust(channel: {
					_client: {_protocol: {channelWindowAdjust(id: number, n: number): void}};
				}) {
					channel._client._protocol.channelWindowAdjust(7, 1);
				},
			},
			protocol,
		);
		expect(elsewhere.active).toBe(false);
		expect(elsewhere.detail).toContain('windowAdjust');

		// Off: a channel is left exactly as ssh2 made it.
		const adjusts: number[] = [];
		const channel = {
			incoming: {id: 0, window: 2 * 1024 * 1024, packetSize: 32 * 1024, state: 'open'},
			outgoing: {id: 7},
			_client: {_protocol: {channelWindowAdjust: (_id: number, n: number) => adjusts.push(n)}},
		};
		widenChannelWindow(channel, 1024 * 1024, false);
		expect(adjusts).toEqual([]);
		expect(Object.getOwnPropertyDescriptor(channel.incoming, 'window')).toHaveProperty('value');
	});

	it('widens a real ssh2 channel: the server sees the larger window', async () => {
		const hostKey = generateEd25519();
		const serverChannels: Array<{outgoing?: {window?: number}}> = [];
		const server = new ssh2.Server({hostKeys: [hostKey.private]}, (conn) => {
			conn.on('error', () => {});
			conn.on('authentication', (ctx) => ctx.accept());
			conn.on('tcpip', (accept) => {
				serverChannels.push(accept() as unknown as {outgoing?: {window?: number}});
			});
		});
		await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
		const port = (server.address() as net.AddressInfo).port;
		const client = new ssh2.Client();
		client.on('error', () => {});
		try {
			await new Promise<void>((resolve, reject) => {
				client.once('ready', resolve).once('error', reject);
				client.connect({host: '127.0.0.1', port, username: 'ml', hostVerifier: () => true});
			});
			const open = async () =>
				new Promise<ssh2.ClientChannel>((resolve, reject) => {
					client.forwardOut('127.0.0.1', 0, '127.0.0.1', 9, (error, channel) => {
						if (error) reject(error);
						else resolve(channel);
					});
				});
			const plain = await open();
			const widened = await open();
			widenChannelWindow(widened);
			await waitFor(
				() => serverChannels[1]?.outgoing?.window === 2 * 1024 * 1024 + extraChannelWindow,
				{
					message: 'the server was granted the extra window',
				},
			);
			expect(serverChannels[0]?.outgoing?.window).toBe(2 * 1024 * 1024);
			plain.destroy();
			widened.destroy();
		} finally {
			client.end();
			await new Promise<void>((resolve) => server.close(() => resolve()));
		}
	});
});
