import {describe, expect, it} from 'vitest';
import {
	describeUid,
	parseListenerCheck,
	parseTcpListeners,
	passwdName,
	portOwnership,
} from '../../source/core/proc-net.js';

// Rows as Linux writes them (header, a listener of uid 0, one of uid 65534, an established one).
const tcp = [
	'  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
	'   0: 0100007F:4C34 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 41001 1 0000000000000000 100 0 0 10 0',
	'   1: 0100007F:4C3E 00000000:0000 0A 00000000:00000000 00:00000000 00000000 65534        0 41002 1 0000000000000000 100 0 0 10 0',
	'   2: 0100007F:4C34 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000     0        0 41003 1 0000000000000000 20 4 30 10 -1',
].join('\n');
const tcp6 =
	'   0: 00000000000000000000000001000000:4C3E 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 41004 1 0000000000000000 100 0 0 10 0';

describe('proc-net', () => {
	it('reads only LISTEN rows, with port, uid and inode', () => {
		expect(parseTcpListeners(`${tcp}\n${tcp6}`)).toEqual([
			{port: 19508, uid: 0, inode: '41001'},
			{port: 19518, uid: 65_534, inode: '41002'},
			{port: 19518, uid: 0, inode: '41004'},
		]);
	});

	it('calls a port ours only when every listener on it is the user’s', () => {
		const listeners = parseTcpListeners(`${tcp}\n${tcp6}`);
		expect(portOwnership(listeners, 19508, 0)).toEqual({kind: 'ours'});
		expect(portOwnership(listeners, 19518, 0)).toEqual({kind: 'foreign', uid: 65_534});
		expect(portOwnership(listeners, 19509, 0)).toEqual({kind: 'free'});
		expect(portOwnership(listeners, 19508, 1000)).toEqual({kind: 'foreign', uid: 0});
	});

	it('parses the check command’s output; no table at all is unknown, not free', () => {
		expect(parseListenerCheck(`uid 0\n${tcp.split('\n')[1]}\n`)).toEqual({
			uid: 0,
			listeners: [{port: 19508, uid: 0, inode: '41001'}],
		});
		expect(parseListenerCheck('uid 1000\n')).toBeNull();
		expect(parseListenerCheck('')).toBeNull();
	});

	it('names a uid from passwd lines, and refuses odd names', () => {
		expect(passwdName('nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n', 65_534)).toBe(
			'nobody',
		);
		expect(passwdName('\u001B]52;c;x\u0007:x:65534:65534::/:/bin/sh', 65_534)).toBeNull();
		expect(describeUid(65_534, 'nobody')).toBe('uid 65534 (nobody)');
		expect(describeUid(1001, null)).toBe('uid 1001');
	});
});
