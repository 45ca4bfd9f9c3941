import {describe, expect, it} from 'vitest';
import {
	ClockWatch,
	networkFingerprint,
	onClockJump,
	sharedClockWatch,
} from '../../source/services/clock-watch.js';
import {waitFor} from '../helpers/wait-for.js';

describe('ClockWatch', () => {
	it('reports a wall-clock jump that the monotonic clock did not see (suspend/resume)', async () => {
		let offset = 0;
		const watch = new ClockWatch({
			intervalMs: 20,
			thresholdMs: 5000,
			wallNow: () => Date.now() + offset,
		});
		const jumps: number[] = [];
		watch.on('jump', (drift) => jumps.push(drift));
		watch.start();
		try {
			offset = 30_000;
			await waitFor(() => jumps.length > 0, {message: 'jump reported'});
			expect(jumps[0]).toBeGreaterThan(25_000);
			expect(jumps[0]).toBeLessThan(35_000);
			expect(jumps).toHaveLength(1);
		} finally {
			watch.dispose();
		}
	});

	it('ignores lag that moves both clocks alike, and small drift', () => {
		let wall = 1_000_000;
		let mono = 500;
		const watch = new ClockWatch({wallNow: () => wall, monotonicNow: () => mono});
		const jumps: number[] = [];
		watch.on('jump', (drift) => jumps.push(drift));
		watch.start();
		watch.dispose();
		wall += 12_000;
		mono += 12_000; // a 12 s event-loop stall: both clocks moved
		watch.check();
		wall += 3000;
		mono += 1000; // 2 s of drift: NTP slew, not a suspend
		watch.check();
		expect(jumps).toEqual([]);
		wall -= 60_000; // clock set back
		watch.check();
		expect(jumps).toEqual([-60_000]);
	});

	it('reports a change of network addresses once', () => {
		let network = 'eth0/192.0.2.10';
		const watch = new ClockWatch({network: () => network});
		let changes = 0;
		watch.on('network', () => changes++);
		watch.start();
		watch.dispose();
		watch.check();
		expect(changes).toBe(0);
		network = 'wlan0/198.51.100.7';
		watch.check();
		watch.check();
		expect(changes).toBe(1);
	});

	it('fingerprints the real interfaces without loopback', () => {
		expect(networkFingerprint()).not.toMatch(/(^|,)lo\//);
	});

	it('shares one timer between subscribers and stops it with the last', () => {
		const watch = sharedClockWatch();
		expect(watch.running).toBe(false);
		const seen: string[] = [];
		const off1 = onClockJump((drift) => seen.push(`a${drift}`));
		const off2 = onClockJump((drift) => seen.push(`b${drift}`));
		expect(watch.running).toBe(true);
		watch.emit('jump', 9000);
		watch.emit('network');
		expect(seen).toEqual(['a9000', 'b9000', 'a0', 'b0']);
		off1();
		off1();
		expect(watch.running).toBe(true);
		off2();
		expect(watch.running).toBe(false);
		watch.emit('jump', 7000);
		expect(seen).toHaveLength(4);
	});
});
