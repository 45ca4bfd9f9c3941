import type {Connection} from 'ssh2';
import {describe, expect, it} from 'vitest';
import {
	dropConnection,
	probe,
	probeProtocol,
	rejectProhibited,
} from '../../../source/services/workarounds/ssh2-demo-server.js';

describe('ssh2-demo-server', () => {
	it("finds _protocol.channelOpenFail() on this install's ssh2 (red after an upgrade that moves it)", () => {
		expect(probe()).toMatchObject({name: 'ssh2-demo-server', active: true});
	});

	it('falls back to the public calls on a connection shaped like a future ssh2', () => {
		expect(probeProtocol({}).active).toBe(false);
		expect(probeProtocol(undefined).detail).toContain('connect failed');
		const calls: string[] = [];
		const future = {
			end() {
				calls.push('end');
			},
		} as unknown as Connection;
		rejectProhibited(future, () => calls.push('reject'));
		dropConnection(future);
		expect(calls).toEqual(['reject', 'end']);
	});

	it('refuses with OpenSSH reason 1 once, then restores ssh2 as it was', () => {
		const sent: Array<[number, number, string]> = [];
		const protocol = {
			channelOpenFail(recipient: number, reason: number, description: string) {
				sent.push([recipient, reason, description]);
			},
		};
		const original = protocol.channelOpenFail;
		const connection = {_protocol: protocol} as unknown as Connection;
		rejectProhibited(connection, () => protocol.channelOpenFail(3, 2, 'connect failed'));
		expect(sent).toEqual([[3, 1, 'administratively prohibited: open failed']]);
		expect(protocol.channelOpenFail).toBe(original);
	});
});
