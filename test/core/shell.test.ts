import {execFileSync} from 'node:child_process';
import {describe, expect, it} from 'vitest';
import {shCommand, shellQuote, splitWords} from '../../source/core/shell.js';

/** The login shells a GPU host user may have (Debian packages, installed by .ci/run). */
const shells = ['/bin/sh', '/bin/bash', '/usr/bin/fish', '/usr/bin/tcsh'] as const;

const awkward = [
	'plain',
	'',
	'a b',
	"it's",
	'$HOME',
	'`x`',
	'"q"',
	'back\\slash',
	"\\'",
	'!x',
	'bang!',
	'~/x',
	'*',
	'{a,b}',
	'%1',
	'=ls',
	'#c',
	'a;b|c&d',
	'tab\there',
	'ünï',
];

describe('shellQuote and shCommand', () => {
	it.each(shells)('every word reads back unchanged as an argument through %s', (shell) => {
		for (const word of awkward) {
			const line = shCommand('printf %s "$1"', [word]);
			const out = execFileSync(shell, ['-c', line], {env: {...process.env, HOME: '/h'}});
			expect(out.toString(), `${shell}: ${JSON.stringify(word)} as ${line}`).toBe(word);
		}
	});

	it.each(shells)('a POSIX script with quotes, escapes and $! runs the same under %s', (shell) => {
		const script = `p="\${NOPE:-$HOME/x}"; printf '%s|%s\\036\\n' "$p" "$0"; sleep 0 & [ -n "$!" ] && echo '!ok'`;
		const out = execFileSync(shell, ['-c', shCommand(script, [], 'name')], {
			env: {...process.env, HOME: '/h'},
		});
		expect(out.toString()).toBe('/h/x|sh\u001E\n!ok\n');
		const named = execFileSync(shell, ['-c', shCommand(script, ['arg'], 'name')], {
			env: {...process.env, HOME: '/h'},
		});
		expect(named.toString()).toBe('/h/x|name\u001E\n!ok\n');
	});

	it('keeps safe words bare and refuses a multi-line script', () => {
		expect(shellQuote('--port=8888')).toBe('--port=8888');
		expect(shellQuote('/usr/bin/nvidia-smi')).toBe('/usr/bin/nvidia-smi');
		expect(shellQuote("it's")).toBe(`'it'\\''s'`);
		expect(() => shCommand('echo a\necho b')).toThrow(/one line/);
	});
});

describe('splitWords', () => {
	// Inputs without expansions: what sh itself makes of them is what splitWords must give.
	const lines = [
		'--partition gpu --gres=gpu:1 --time 4:00:00',
		"  --comment 'two words'   -A proj ",
		'--comment "say \\"hi\\" \\\\ now" --x=a\\ b',
		"--a='' --b=\"\" c''d",
		'tab\there\tand',
		"it\\'s 'mixed'\"quotes\"",
		'',
	];

	it.each(lines)('splits %j as sh does', (line) => {
		const out = execFileSync('/bin/sh', ['-c', `for a in ${line}; do printf '%s\\0' "$a"; done`]);
		const words = out.toString().split('\0').slice(0, -1);
		expect(splitWords(line)).toEqual(words);
	});

	it('names an unclosed quote and a trailing backslash', () => {
		expect(() => splitWords("--comment 'open")).toThrow(/single quote is not closed/);
		expect(() => splitWords('--comment "open')).toThrow(/double quote is not closed/);
		expect(() => splitWords('--x \\')).toThrow(/trailing backslash/);
	});
});
