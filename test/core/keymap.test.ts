import {describe, expect, test} from 'vitest';
import {
	actionFor,
	bindingsFor,
	confirmKeys,
	confirmQuitKeys,
	filterKeys,
	footerItems,
	helpKeys,
	helpSections,
	hostKeyPromptKeys,
	keymap,
	modeAction,
	modeFooterItems,
	modeHint,
	secretPromptKeys,
	type KeyInfo,
} from '../../source/core/keymap.js';

const none: KeyInfo = {};

describe('actionFor', () => {
	test.each([
		['r', none, 'reconnect'],
		['j', none, 'restart-jupyter'],
		['c', none, 'copy-url'],
		['o', none, 'open-browser'],
		['/', none, 'filter'],
		['?', none, 'help'],
		['q', none, 'quit'],
		['c', {ctrl: true}, 'quit'],
		['g', none, 'scroll-top'],
		['G', {shift: true}, 'follow'],
		['', {tab: true}, 'focus-next'],
		['', {tab: true, shift: true}, 'focus-previous'],
		['', {upArrow: true}, 'scroll-up'],
		['', {downArrow: true}, 'scroll-down'],
		['', {pageUp: true}, 'page-up'],
		['', {pageDown: true}, 'page-down'],
		['', {home: true}, 'scroll-top'],
		['', {end: true}, 'follow'],
	] as const)('%j %j -> %s', (input, key, action) => {
		for (const role of ['connect', 'host', 'demo'] as const) {
			expect(actionFor(input, key, role)).toBe(action);
		}
	});

	test('keys outside the table, and letters with Ctrl or Meta, mean nothing', () => {
		expect(actionFor('z', none, 'connect')).toBeNull();
		expect(actionFor('x', none, 'connect')).toBe('kernel-shutdown');
		expect(actionFor('K', none, 'host')).toBe('kernel-restart');
		expect(actionFor('i', none, 'demo')).toBe('kernel-interrupt');
		expect(actionFor('r', {ctrl: true}, 'connect')).toBeNull();
		expect(actionFor('q', {meta: true}, 'connect')).toBeNull();
		expect(actionFor('', {return: true}, 'connect')).toBeNull();
		expect(actionFor('', {escape: true, meta: true}, 'connect')).toBeNull();
	});
});

describe('the table', () => {
	test('every binding has keys, a description and a role, and no two share a chord', () => {
		const seen = new Set<string>();
		for (const binding of keymap) {
			expect(binding.keys).not.toBe('');
			expect(binding.description.length).toBeGreaterThan(5);
			expect(binding.roles.length).toBeGreaterThan(0);
			for (const chord of binding.chords) {
				const id = JSON.stringify([chord.input, chord.key, chord.shift, chord.ctrl]);
				expect(seen.has(id), id).toBe(false);
				seen.add(id);
			}
		}
	});

	test('help groups every binding of the role under connection, Jupyter and view', () => {
		const sections = helpSections('host');
		expect(sections.map((s) => s.title)).toEqual(['Connection', 'Jupyter', 'Notebooks', 'View']);
		expect(sections.flatMap((s) => s.bindings.map((b) => b.action)).sort()).toEqual(
			bindingsFor('host')
				.map((b) => b.action)
				.sort(),
		);
		expect(sections[1]!.bindings.map((b) => b.keys)).toEqual(['j', 'c', 'o']);
	});
});

describe('footerItems', () => {
	const text = (role: 'connect', width: number) => {
		const {items, gap} = footerItems(role, width);
		return items.map((i) => `${i.keys} ${i.label}`).join(gap);
	};

	test('wide: the full labels of UI.md', () => {
		expect(text('connect', 159)).toBe(
			'r reconnect  j restart jupyter  c copy url  o open  tab focus  / filter  ? help  q quit',
		);
	});

	test('80 columns: the short labels of UI.md', () => {
		expect(text('connect', 79)).toBe('r reconnect j restart c copy o open ? help q quit');
	});

	test('narrower: the least needed go first, help and quit stay', () => {
		expect(text('connect', 32)).toBe('r reconnect c copy ? help q quit');
		expect(text('connect', 31)).toBe('r reconnect ? help q quit');
		expect(text('connect', 5)).toBe('? help q quit');
	});
});

describe('the mode tables', () => {
	test('a y/N question: y does it, Ctrl+C quits, Esc and any other key cancel', () => {
		expect(modeAction(confirmKeys, 'y', none)).toBe('yes');
		expect(modeAction(confirmKeys, 'Y', none)).toBe('yes');
		expect(modeAction(confirmKeys, 'c', {ctrl: true})).toBe('quit');
		expect(modeAction(confirmKeys, '', {escape: true})).toBe('cancel');
		expect(modeAction(confirmKeys, 'n', none)).toBe('cancel');
		expect(modeHint(confirmKeys)).toBe('esc cancels');
	});

	test('quitting the GPU host: Esc stays, y stops Jupyter, anything else leaves it running', () => {
		expect(modeAction(confirmQuitKeys, '', {escape: true})).toBe('stay');
		expect(modeAction(confirmQuitKeys, 'y', none)).toBe('stop-jupyter');
		expect(modeAction(confirmQuitKeys, 'n', none)).toBe('leave-jupyter');
		expect(modeAction(confirmQuitKeys, 'c', {ctrl: true})).toBe('leave-jupyter');
		expect(modeHint(confirmQuitKeys)).toBe('esc stays');
	});

	test('help: ? Esc Enter close it, q and Ctrl+C quit, other keys do nothing', () => {
		for (const [input, key] of [
			['?', none],
			['', {escape: true}],
			['', {return: true}],
		] as const)
			expect(modeAction(helpKeys, input, key)).toBe('close');
		expect(modeAction(helpKeys, 'q', none)).toBe('quit');
		expect(modeAction(helpKeys, 'c', {ctrl: true})).toBe('quit');
		expect(modeAction(helpKeys, 'r', none)).toBeNull();
		expect(modeFooterItems(helpKeys)).toEqual([
			{keys: '? esc', label: 'close help'},
			{keys: 'q', label: 'quit'},
		]);
	});

	test('text fields: Enter, Esc and Ctrl+C from the table; the footers say the same', () => {
		for (const table of [filterKeys, hostKeyPromptKeys, secretPromptKeys]) {
			expect(modeAction(table, '', {return: true})).toBe('submit');
			expect(modeAction(table, '', {escape: true})).toBe('cancel');
			expect(modeAction(table, 'c', {ctrl: true})).toBe('quit');
			expect(modeAction(table, 'a', none)).toBeNull();
		}

		expect(modeFooterItems(filterKeys)).toEqual([
			{keys: 'enter', label: 'keep filter'},
			{keys: 'esc', label: 'clear filter'},
		]);
		expect(modeFooterItems(hostKeyPromptKeys)).toEqual([
			{keys: 'enter', label: 'answer'},
			{keys: 'esc', label: 'refuse'},
		]);
		expect(modeFooterItems(secretPromptKeys)).toEqual([
			{keys: 'enter', label: 'submit'},
			{keys: 'esc', label: 'cancel'},
		]);
	});
});
