/**
 * ink-widest-line: the memo the dashboard bundle gives Ink for `widest-line` answers as
 * widest-line does, for ANSI, wide, emoji and multi-line text, and asked again gives the same.
 * Run from source (here), Ink is node_modules' own: the probe says so.
 */
import widestLineAsShipped from 'widest-line';
import {describe, expect, test} from 'vitest';
import widestLine, {
	inkWidestLineStatus,
	probe,
} from '../../../source/services/workarounds/ink-widest-line.js';

const texts = [
	'',
	'plain ascii',
	'\u001B[32mgreen\u001B[39m and plain',
	'util ███████████████████   95% █▇█',
	'┏ Path ━━━━━━━━━━━━━━━━━━━━━┓',
	'古い 日本語 テキスト',
	'emoji 🚀 and 👩‍💻',
	'two\nlines, the second longer',
	'laptop ──● 127.0.0.1:35969 ──● GPU host (via :36855) ──▶ http://127.0.0.1:19507',
];

describe('ink-widest-line', () => {
	test('answers as widest-line does, the first time and the next', () => {
		for (const text of texts) {
			expect(widestLine(text)).toBe(widestLineAsShipped(text));
			expect(widestLine(text)).toBe(widestLineAsShipped(text));
		}
	});

	test('many distinct lines (the memo starts over rather than grow) still measure right', () => {
		for (let i = 0; i < 10_000; i++)
			expect(widestLine(`row ${i} · ${'█'.repeat(i % 40)}`)).toBe(7 + String(i).length + (i % 40));
	});

	test('from source Ink is not the bundle: off, saying why', () => {
		expect(probe()).toMatchObject({name: 'ink-widest-line', active: false});
		expect(probe().detail).toMatch(/not the built dashboard bundle/);
		expect(inkWidestLineStatus()).toEqual(probe());
	});
});
