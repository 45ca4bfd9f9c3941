import {describe, expect, test} from 'vitest';
import {LogLineAssembler, lineCutMarker, maxLogLineChars} from '../../source/core/log-lines.js';

describe('log lines as a terminal shows them', () => {
	test('splits on newlines across pushes, CRLF included', () => {
		const lines = new LogLineAssembler();
		expect(lines.push('one\ntw')).toEqual(['one']);
		expect(lines.push('o\r\nthree\n\n')).toEqual(['two', 'three', '']);
		expect(lines.push('unfinished')).toEqual([]);
	});

	test('\\r progress keeps the last state of the line, also when it comes in pieces', () => {
		const lines = new LogLineAssembler();
		expect(lines.push('train:  10%|#   |\rtrain:  50%|##  |\rtra')).toEqual([]);
		expect(lines.push('in: 100%|####|\n')).toEqual(['train: 100%|####|']);
		// A shorter state leaves the rest of the longer one, as on a terminal.
		expect(lines.push('abcdef\rXY\n')).toEqual(['XYcdef']);
	});

	test('a runaway line is cut at the bound and the cut marked; the next line is whole', () => {
		const lines = new LogLineAssembler();
		const huge = 'x'.repeat(3 * 1024 * 1024);
		expect(lines.push(huge.slice(0, 1_000_000))).toEqual([]);
		const [cut, next] = lines.push(`${huge.slice(1_000_000)}\nnext\n`);
		expect(cut).toBe('x'.repeat(maxLogLineChars) + lineCutMarker(maxLogLineChars));
		expect(cut).toContain('[gpujup: line cut at 8192 characters]');
		expect(next).toBe('next');
	});

	test('2 MiB of \\r progress on one line ends as its last state, not cut', () => {
		const lines = new LogLineAssembler();
		let text = '';
		for (let i = 0; text.length < 2 * 1024 * 1024; i++)
			text += `\rstep ${i} ${'#'.repeat(i % 60).padEnd(60)}|`;
		const last = text.slice(text.lastIndexOf('\r') + 1);
		const out: string[] = [];
		for (let at = 0; at < text.length; at += 65_536)
			out.push(...lines.push(text.slice(at, at + 65_536)));
		out.push(...lines.push('\n'));
		expect(out).toEqual([last]);
	});

	test('the mask sees a token that straddles the cut', () => {
		const token = 'f'.repeat(48);
		const lines = new LogLineAssembler({
			maxChars: 100,
			mask: (line) => line.replaceAll(token, '…'),
		});
		const [line] = lines.push(`${'a'.repeat(90)}${token}${'b'.repeat(500)}\n`);
		expect(line).toBe(`${'a'.repeat(90)}…${'b'.repeat(9)}${lineCutMarker(100)}`);
		expect(line).not.toContain('ffff');
	});

	test('reset drops the unfinished line', () => {
		const lines = new LogLineAssembler();
		lines.push('half a li');
		lines.reset();
		expect(lines.push('whole\n')).toEqual(['whole']);
	});
});
