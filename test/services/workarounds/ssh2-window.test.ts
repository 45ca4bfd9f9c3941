import {describe, expect, it} from 'vitest';
import {widenChannelWindow} from '../../../source/services/workarounds/ssh2-window.js';

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
