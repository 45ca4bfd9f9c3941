import {describe, expect, test} from 'vitest';
import {
	fit,
	formatAgo,
	formatDuration,
	formatMiB,
	formatMiBPair,
	formatRtt,
	portOf,
	secondsUntil,
	truncate,
} from '../../source/core/format.js';

describe('durations', () => {
	test.each([
		[0, '0s'],
		[15_000, '15s'],
		[59_999, '59s'],
		[41 * 60_000, '41m'],
		[(2 * 60 + 13) * 60_000, '2h13m'],
		[(3 * 24 + 4) * 3_600_000 + 59_000, '3d4h'],
		[-1, '–'],
		[Number.NaN, '–'],
	])('%d ms -> %s', (ms, text) => {
		expect(formatDuration(ms)).toBe(text);
	});

	test('relative times and countdowns', () => {
		expect(formatAgo(1000, 5000)).toBe('4s ago');
		expect(formatAgo(0, 41 * 60_000)).toBe('41m ago');
		expect(formatAgo(5000, 4500)).toBe('just now');
		expect(secondsUntil(10_000, 7_001)).toBe(3);
		expect(secondsUntil(10_000, 12_000)).toBe(0);
	});
});

describe('sizes', () => {
	test('MiB and GiB, unknown as a dash, never 0', () => {
		expect(formatMiB(512)).toBe('512 MiB');
		expect(formatMiB(9114)).toBe('8.9 GiB');
		expect(formatMiB(null)).toBe('–');
		expect(formatMiBPair(10_035, 16_376)).toBe('9.8/16.0 GiB');
		expect(formatMiBPair(null, 16_376)).toBe('–/16.0 GiB');
		expect(formatRtt(38.4)).toBe('38 ms');
		expect(formatRtt(0.42)).toBe('0.4 ms');
		expect(formatRtt(null)).toBe('–');
	});
});

describe('text', () => {
	test('ports, truncation, fitting', () => {
		expect(portOf('127.0.0.1:19507')).toBe('19507');
		expect(portOf('[::1]:6006')).toBe('6006');
		expect(truncate('abcdef', 4)).toBe('abc…');
		expect(truncate('abc', 4)).toBe('abc');
		expect(fit('ab', 4)).toBe('ab  ');
		expect(fit('abcdef', 4)).toBe('abc…');
	});
});
