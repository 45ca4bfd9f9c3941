/**
 * The one key table. Input handling, the footer and the `?` help overlay all read it, so a key
 * can never do something the help does not say. Pure: Ink's `Key` fits `KeyInfo` structurally.
 */
import type {Role} from './app-state.js';

export type KeyAction =
	| 'reconnect'
	| 'restart-jupyter'
	| 'copy-url'
	| 'open-browser'
	| 'focus-next'
	| 'focus-previous'
	| 'scroll-up'
	| 'scroll-down'
	| 'page-up'
	| 'page-down'
	| 'scroll-top'
	| 'follow'
	| 'filter'
	| 'kernel-interrupt'
	| 'kernel-restart'
	| 'kernel-shutdown'
	| 'help'
	| 'quit';

export type KeyGroup = 'connection' | 'jupyter' | 'notebooks' | 'view';

/** Named keys, as Ink's `useInput` reports them. */
export type NamedKey =
	'upArrow' | 'downArrow' | 'pageUp' | 'pageDown' | 'home' | 'end' | 'tab' | 'return' | 'escape';

/** The subset of Ink's `Key` the table reads. */
export type KeyInfo = Partial<Record<NamedKey | 'shift' | 'ctrl' | 'meta', boolean>>;

/** One way to press a binding: a character, or a named key; with or without modifiers. */
export type KeyChord = {
	readonly input?: string;
	readonly key?: NamedKey;
	/** Must match exactly when given (Tab vs Shift+Tab); ignored otherwise. */
	readonly shift?: boolean;
	readonly ctrl?: boolean;
};

export type KeyBinding = {
	readonly action: KeyAction;
	readonly chords: readonly KeyChord[];
	/** How the keys are written in the footer and help: `r`, `tab`, `↑↓`. */
	readonly keys: string;
	/** Footer label; null keeps the binding out of the footer (help still lists it). */
	readonly label: string | null;
	/** Shorter footer label for narrow terminals. */
	readonly short: string | null;
	/** The help overlay's sentence. */
	readonly description: string;
	/**
	 * The help line for this binding and the next one together (↑ and ↓), so the help fits 80×24;
	 * the next binding's own line is then left out.
	 */
	readonly pair?: string;
	readonly group: KeyGroup;
	readonly roles: readonly Role[];
	/** Footer: lower numbers are dropped last when the width is short. */
	readonly priority: number;
};

const allRoles: readonly Role[] = ['connect', 'host', 'demo'];

export const keymap: readonly KeyBinding[] = [
	{
		action: 'reconnect',
		chords: [{input: 'r', ctrl: false}],
		keys: 'r',
		label: 'reconnect',
		short: 'reconnect',
		description: 'reconnect now: skip the backoff wait and retry every hop that is down',
		group: 'connection',
		roles: allRoles,
		priority: 2,
	},
	{
		action: 'restart-jupyter',
		chords: [{input: 'j', ctrl: false}],
		keys: 'j',
		label: 'restart jupyter',
		short: 'restart',
		description: 'restart Jupyter (asks first: its kernels are stopped)',
		group: 'jupyter',
		roles: allRoles,
		priority: 3,
	},
	{
		action: 'copy-url',
		chords: [{input: 'c', ctrl: false}],
		keys: 'c',
		label: 'copy url',
		short: 'copy',
		description: 'copy the Jupyter URL with its token to the clipboard (OSC 52)',
		group: 'jupyter',
		roles: allRoles,
		priority: 2,
	},
	{
		action: 'open-browser',
		chords: [{input: 'o', ctrl: false}],
		keys: 'o',
		label: 'open',
		short: 'open',
		description: 'open Jupyter in the browser (the token stays out of process arguments)',
		group: 'jupyter',
		roles: allRoles,
		priority: 3,
	},
	{
		action: 'focus-next',
		chords: [{key: 'tab', shift: false}],
		keys: 'tab',
		label: 'focus',
		short: null,
		description: 'focus the next pane',
		pair: 'focus the next pane / the previous one',
		group: 'view',
		roles: allRoles,
		priority: 5,
	},
	{
		action: 'focus-previous',
		chords: [{key: 'tab', shift: true}],
		keys: 'shift+tab',
		label: null,
		short: null,
		description: 'focus the previous pane',
		group: 'view',
		roles: allRoles,
		priority: 9,
	},
	{
		action: 'scroll-up',
		chords: [{key: 'upArrow'}],
		keys: '↑',
		label: null,
		short: null,
		description: 'scroll the log up one line (in Notebooks: select the kernel above)',
		pair: 'scroll the log a line (in Notebooks: select the kernel above / below)',
		group: 'view',
		roles: allRoles,
		priority: 9,
	},
	{
		action: 'scroll-down',
		chords: [{key: 'downArrow'}],
		keys: '↓',
		label: null,
		short: null,
		description: 'scroll the log down one line (in Notebooks: select the kernel below)',
		group: 'view',
		roles: allRoles,
		priority: 9,
	},
	{
		action: 'page-up',
		chords: [{key: 'pageUp'}],
		keys: 'pgup',
		label: null,
		short: null,
		description: 'scroll the log up one page',
		pair: 'scroll the log a page',
		group: 'view',
		roles: allRoles,
		priority: 9,
	},
	{
		action: 'page-down',
		chords: [{key: 'pageDown'}],
		keys: 'pgdn',
		label: null,
		short: null,
		description: 'scroll the log down one page',
		group: 'view',
		roles: allRoles,
		priority: 9,
	},
	{
		action: 'scroll-top',
		chords: [{input: 'g', ctrl: false}, {key: 'home'}],
		keys: 'g home',
		label: null,
		short: null,
		description: 'jump to the oldest log line',
		pair: 'jump to the oldest log line / follow the log again (newest at the bottom)',
		group: 'view',
		roles: allRoles,
		priority: 9,
	},
	{
		action: 'follow',
		chords: [{input: 'G', ctrl: false}, {key: 'end'}],
		keys: 'G end',
		label: null,
		short: null,
		description: 'follow the log again (newest line at the bottom)',
		group: 'view',
		roles: allRoles,
		priority: 9,
	},
	{
		action: 'filter',
		chords: [{input: '/', ctrl: false}],
		keys: '/',
		label: 'filter',
		short: null,
		description: 'filter the log (Enter keeps the filter, Esc clears it)',
		group: 'view',
		roles: allRoles,
		priority: 4,
	},
	{
		action: 'kernel-interrupt',
		chords: [{input: 'i', ctrl: false}],
		keys: 'i',
		label: 'interrupt',
		short: 'interrupt',
		description: "interrupt the selected notebook's kernel (its running cell stops)",
		group: 'notebooks',
		roles: allRoles,
		priority: 6,
	},
	{
		action: 'kernel-restart',
		chords: [{input: 'K', ctrl: false}],
		keys: 'K',
		label: 'restart kernel',
		short: 'restart',
		description: "restart the selected notebook's kernel (asks first: its variables are lost)",
		group: 'notebooks',
		roles: allRoles,
		priority: 6,
	},
	{
		action: 'kernel-shutdown',
		chords: [{input: 'x', ctrl: false}],
		keys: 'x',
		label: 'shut down',
		short: 'shut down',
		description:
			"shut the selected notebook's kernel down (asks first, naming the GPU memory it frees)",
		group: 'notebooks',
		roles: allRoles,
		priority: 6,
	},
	{
		action: 'help',
		chords: [{input: '?', ctrl: false}],
		keys: '?',
		label: 'help',
		short: 'help',
		description: 'show or hide this help',
		group: 'view',
		roles: allRoles,
		priority: 0,
	},
	{
		action: 'quit',
		chords: [
			{input: 'q', ctrl: false},
			{input: 'c', ctrl: true},
		],
		keys: 'q ctrl+c',
		label: 'quit',
		short: 'quit',
		description:
			'quit (on the GPU host, asks whether Jupyter stops too; it keeps running by default)',
		group: 'connection',
		roles: allRoles,
		priority: 0,
	},
];

export const keyGroups: ReadonlyArray<{readonly group: KeyGroup; readonly title: string}> = [
	{group: 'connection', title: 'Connection'},
	{group: 'jupyter', title: 'Jupyter'},
	{group: 'notebooks', title: 'Notebooks'},
	{group: 'view', title: 'View'},
];

function matches(chord: KeyChord, input: string, key: KeyInfo): boolean {
	if (chord.ctrl !== undefined && Boolean(key.ctrl) !== chord.ctrl) return false;
	if (chord.shift !== undefined && Boolean(key.shift) !== chord.shift) return false;
	if (chord.key !== undefined) return Boolean(key[chord.key]);
	// Meta+letter is another key (Esc then a letter arrives as meta), not the letter.
	if (key.meta && !key.escape) return false;
	return chord.input !== undefined && chord.input === input;
}

/** The bindings that apply to a role, in table order. */
export function bindingsFor(role: Role): KeyBinding[] {
	return keymap.filter((b) => b.roles.includes(role));
}

/** What an Ink `useInput` pair means in the dashboard's normal mode, or null. */
export function actionFor(input: string, key: KeyInfo, role: Role): KeyAction | null {
	for (const binding of keymap) {
		if (!binding.roles.includes(role)) continue;
		if (binding.chords.some((chord) => matches(chord, input, key))) return binding.action;
	}

	return null;
}

/** The help overlay's content: every binding of the role, grouped. */
export function helpSections(
	role: Role,
): Array<{readonly title: string; readonly bindings: KeyBinding[]}> {
	const bindings = bindingsFor(role);
	return keyGroups
		.map(({group, title}) => ({title, bindings: bindings.filter((b) => b.group === group)}))
		.filter((section) => section.bindings.length > 0);
}

/** One section's help lines: `keys` and the sentence, a pair of bindings on one line. */
export function helpRows(bindings: readonly KeyBinding[]): Array<{keys: string; text: string}> {
	const rows: Array<{keys: string; text: string}> = [];
	for (let i = 0; i < bindings.length; i++) {
		const binding = bindings[i]!;
		const next = bindings[i + 1];
		if (binding.pair && next) {
			rows.push({keys: `${binding.keys} ${next.keys}`, text: binding.pair});
			i++;
		} else {
			rows.push({keys: binding.keys, text: binding.description});
		}
	}

	return rows;
}

export type FooterItem = {readonly keys: string; readonly label: string};

function footerText(items: readonly FooterItem[], gap: string): string {
	return items.map((item) => `${item.keys} ${item.label}`).join(gap);
}

/**
 * The footer's items for a width: full labels with wide gaps when they fit, then short labels,
 * then dropping the least needed bindings; `? help` and `q quit` stay to the end.
 */
export function footerItems(role: Role, width: number): {items: FooterItem[]; gap: string} {
	// The kernel keys show in their own footer, while the Notebooks pane has the focus.
	const bindings = bindingsFor(role).filter((b) => b.label !== null && b.group !== 'notebooks');
	const full = bindings.map((b) => ({keys: b.keys.split(' ')[0]!, label: b.label!}));
	if (footerText(full, '  ').length <= width) return {items: full, gap: '  '};
	let kept = bindings.filter((b) => b.short !== null);
	const shortItems = () => kept.map((b) => ({keys: b.keys.split(' ')[0]!, label: b.short!}));
	while (footerText(shortItems(), ' ').length > width) {
		const dropped = kept.reduce<KeyBinding | undefined>(
			(worst, b) => (b.priority > 0 && (!worst || b.priority >= worst.priority) ? b : worst),
			undefined,
		);
		if (!dropped) break;
		kept = kept.filter((b) => b !== dropped);
	}

	return {items: shortItems(), gap: ' '};
}

/** The footer while the Notebooks pane has the focus: `↑↓ select  i interrupt  K restart kernel  x shut down …`. */
export function notebookFooterItems(role: Role): FooterItem[] {
	const named = (action: KeyAction) => bindingsFor(role).find((b) => b.action === action);
	const items: FooterItem[] = [{keys: '↑↓', label: 'select'}];
	for (const action of [
		'kernel-interrupt',
		'kernel-restart',
		'kernel-shutdown',
		'focus-next',
		'help',
	] as const) {
		const binding = named(action);
		if (binding?.label) items.push({keys: binding.keys.split(' ')[0]!, label: binding.label});
	}

	return items;
}

/**
 * The keys of the modes that take the keyboard from the dashboard: a question on the footer's
 * line, the help overlay, the log filter and the prompts. Like {@link keymap}, one table per mode
 * serves both the input handling (use-keys.ts) and the footer that says what the keys do.
 */
export type ModeBinding<A extends string> = {
	readonly action: A;
	readonly chords: readonly KeyChord[];
	/** As the footer writes them: `enter`, `esc`. */
	readonly keys: string;
	/** Footer label; null keeps the binding out of the footer. */
	readonly label: string | null;
};

export type ModeTable<A extends string> = {
	readonly bindings: ReadonlyArray<ModeBinding<A>>;
	/** What any other key does (a y/N question: anything but y answers No); absent: nothing. */
	readonly otherKeys?: A;
};

const ctrlC: KeyChord = {input: 'c', ctrl: true};
const enter: KeyChord = {key: 'return'};
const escape: KeyChord = {key: 'escape'};
const yes: readonly KeyChord[] = [{input: 'y'}, {input: 'Y'}];

/** `Restart Jupyter? … [y/N]` and the kernel questions: y does it, anything else cancels. */
export const confirmKeys: ModeTable<'yes' | 'cancel' | 'quit'> = {
	bindings: [
		{action: 'quit', chords: [ctrlC], keys: 'ctrl+c', label: null},
		{action: 'yes', chords: yes, keys: 'y', label: null},
		{action: 'cancel', chords: [escape], keys: 'esc', label: 'cancels'},
	],
	otherKeys: 'cancel',
};

/** `Stop Jupyter too? [y/N]` on quitting the GPU host: Esc stays, any other key but y quits. */
export const confirmQuitKeys: ModeTable<'stay' | 'stop-jupyter' | 'leave-jupyter'> = {
	bindings: [
		{action: 'stay', chords: [escape], keys: 'esc', label: 'stays'},
		{action: 'stop-jupyter', chords: yes, keys: 'y', label: null},
	],
	otherKeys: 'leave-jupyter',
};

/** The `?` overlay. */
export const helpKeys: ModeTable<'close' | 'quit'> = {
	bindings: [
		{action: 'close', chords: [{input: '?'}, escape, enter], keys: '? esc', label: 'close help'},
		{action: 'quit', chords: [ctrlC, {input: 'q'}], keys: 'q', label: 'quit'},
	],
};

/**
 * Text fields: typing and erasing are the field's own; the table holds the keys that end it.
 * Enter also ends a field from inside a pasted line (`secret\r` arrives as one event).
 */
export type TextFieldAction = 'submit' | 'cancel' | 'quit';

/** The log filter (`/`): Enter keeps it, Esc clears it. */
export const filterKeys: ModeTable<TextFieldAction> = {
	bindings: [
		{action: 'quit', chords: [ctrlC], keys: 'ctrl+c', label: null},
		{action: 'submit', chords: [enter], keys: 'enter', label: 'keep filter'},
		{action: 'cancel', chords: [escape], keys: 'esc', label: 'clear filter'},
	],
};

/** An unknown host key: Enter answers (yes, no or the fingerprint typed), Esc refuses. */
export const hostKeyPromptKeys: ModeTable<TextFieldAction> = {
	bindings: [
		{action: 'quit', chords: [ctrlC], keys: 'ctrl+c', label: null},
		{action: 'submit', chords: [enter], keys: 'enter', label: 'answer'},
		{action: 'cancel', chords: [escape], keys: 'esc', label: 'refuse'},
	],
};

/** A passphrase or password: Enter submits, Esc cancels. */
export const secretPromptKeys: ModeTable<TextFieldAction> = {
	bindings: [
		{action: 'quit', chords: [ctrlC], keys: 'ctrl+c', label: null},
		{action: 'submit', chords: [enter], keys: 'enter', label: 'submit'},
		{action: 'cancel', chords: [escape], keys: 'esc', label: 'cancel'},
	],
};

/** What a key means in a mode: its binding's action, else the mode's `otherKeys`, else null. */
export function modeAction<A extends string>(
	table: ModeTable<A>,
	input: string,
	key: KeyInfo,
): A | null {
	const binding = table.bindings.find((b) => b.chords.some((chord) => matches(chord, input, key)));
	return binding?.action ?? table.otherKeys ?? null;
}

/** A mode's footer: its labelled bindings, in table order. */
export function modeFooterItems<A extends string>(table: ModeTable<A>): FooterItem[] {
	return table.bindings.flatMap((b) => (b.label === null ? [] : [{keys: b.keys, label: b.label}]));
}

/** A question's hint after it on the footer's line: `esc cancels`. */
export function modeHint<A extends string>(table: ModeTable<A>): string {
	return footerText(modeFooterItems(table), '  ');
}
