import {describe, expect, it} from 'vitest';
import {
	offLogLines,
	probeWorkarounds,
	sessionWorkarounds,
} from '../../../source/services/workarounds/index.js';

describe('workarounds', () => {
	it('the four reaches into internals are active on this install (red when an upgrade of ssh2 or Ink moves one)', async () => {
		expect((await probeWorkarounds()).map((w) => [w.name, w.active])).toEqual([
			['ssh2-window', true],
			['ssh2-ping', true],
			['ink-output-cache', true],
			// Only the built dashboard bundle measures through the memo (the e2e doctor test).
			['ink-widest-line', false],
			['ssh2-demo-server', true],
		]);
		expect(offLogLines(sessionWorkarounds())).toEqual([]);
	});

	it('logs each one found off, naming it and the fallback in use', () => {
		expect(
			offLogLines([
				{name: 'ssh2-window', active: true, detail: 'wide'},
				{name: 'ssh2-ping', active: false, detail: "ssh2's own keepaliveInterval sends them"},
			]),
		).toEqual([
			"[gpujup] workaround ssh2-ping off (doctor lists them): ssh2's own keepaliveInterval sends them",
		]);
	});
});
