import {describe, expect, test} from 'vitest';
import {sanitizeLine, sanitizeLines} from '../../source/core/sanitize.js';

describe('sanitizeLine', () => {
	test('log lines lose colours, cursor moves and control characters', () => {
		expect(sanitizeLine('\u001B[32m[I 14:02]\u001B[0m ok\r')).toBe('[I 14:02] ok');
		expect(sanitizeLine('a\tb')).toBe('a    b');
		expect(sanitizeLine('\u001B]8;;http://x\u0007link\u001B]8;;\u0007 \u001B[2K')).toBe('link ');
	});

	test('OSC 52 (BEL- or ST-terminated), DCS and C1 forms never survive', () => {
		const hostile = [
			'a\u001B]52;c;ZXZpbA==\u0007b',
			'a\u001B]52;c;ZXZpbA==\u001B\\b',
			'a\u001BPq#0;2;0;0;0\u001B\\b',
			'a\u009D52;c;ZXZpbA==\u009Cb',
			'a\u009B2Jb',
			'a\u001B7\u001B8b',
		];
		for (const text of hostile) {
			const clean = sanitizeLine(text);
			// eslint-disable-next-line no-control-regex
			expect(clean).not.toMatch(/[\u0000-\u001F\u007F-\u009F]/);
			expect(clean.startsWith('a')).toBe(true);
			expect(clean.endsWith('b')).toBe(true);
		}
	});

	test('8-bit CSI and OSC leave nothing of their payload', () => {
		expect(sanitizeLine('x\u009B2Jy\u009D52;c;ZXZpbA==\u009Cz')).toBe('xyz');
		expect(sanitizeLine('x\u009D52;c;ZXZpbA==\u0007y\u0090q#0\u001B\\z')).toBe('xyz');
	});

	test('sanitizeLines keeps its own line breaks and cleans each line', () => {
		expect(sanitizeLines('one\u001B]52;c;ZXZpbA==\u0007\ntwo\r')).toBe('one\ntwo');
	});

	test('bidi overrides are dropped; ordinary Unicode is kept', () => {
		expect(sanitizeLine('x\u202Eevil\u202Cy')).toBe('xevily');
		expect(sanitizeLine('NVIDIA H100 80GB — ok ✓ ü')).toBe('NVIDIA H100 80GB — ok ✓ ü');
	});
});
