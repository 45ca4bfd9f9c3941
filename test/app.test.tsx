import {cleanup, render} from 'ink-testing-library';
import {afterEach, describe, expect, test} from 'vitest';
import {App, type Commands} from '../source/app.js';
import {maskTokens} from '../source/core/events.js';
import type {AppAction, AppState, Role} from '../source/core/app-state.js';
import {createStore} from '../source/core/store.js';
import {initialView, viewReducer} from '../source/core/view-state.js';
import {frameWhere, keys, laptopState, now, storeOf} from './components/fixtures.js';
import {renderAt} from './components/render.js';
import {waitFor} from './helpers/wait-for.js';

afterEach(() => {
	cleanup();
});

type Call = [keyof Commands, ...unknown[]];

function fakeCommands(calls: Call[]): Commands {
	return {
		reconnect: () => calls.push(['reconnect']),
		restartJupyter: () => calls.push(['restartJupyter']),
		restartBlocked: () => null,
		copyUrl: () => calls.push(['copyUrl']),
		openBrowser: () => calls.push(['openBrowser']),
		kernelAction: (id, action) => calls.push(['kernelAction', id, action]),
		answerPrompt: (id, answer) => calls.push(['answerPrompt', id, answer]),
		quit: (options) => calls.push(['quit', options]),
	};
}

/** An 80×24 App (the dashboard keeps the last row free) and helpers to drive it by raw keys. */
async function start(
	options: {role?: Role; actions?: AppAction[]; columns?: number; rows?: number} = {},
) {
	const calls: Call[] = [];
	let state: AppState = laptopState({role: options.role ?? 'connect'});
	const store = storeOf(state);
	for (const action of options.actions ?? []) store.dispatch(action);
	state = store.getSnapshot();
	const columns = options.columns ?? 80;
	const view = createStore(viewReducer, initialView);
	const tree = (
		<App
			store={store}
			view={view}
			commands={fakeCommands(calls)}
			now={() => now}
			color={false}
			columns={columns}
			rows={options.rows ?? 24}
		/>
	);
	const instance = columns > 100 ? renderAt(tree, columns) : render(tree);
	// Keys are read once Ink listens on stdin (raw mode, set by the first active useInput).
	await waitFor(() => instance.stdin.listenerCount('readable') > 0, {
		timeoutMs: 3000,
		message: 'stdin listener',
	});
	const frame = (predicate: (frame: string) => boolean, what: string) =>
		frameWhere(instance.lastFrame, predicate, what);
	/** Press a key, then wait until the screen shows its effect. */
	const press = async (key: string, shows: (frame: string) => boolean, what: string) => {
		// Let a mode switch's useInput subscribe before the key arrives.
		await new Promise((resolve) => setImmediate(resolve));
		instance.stdin.write(key);
		return frame(shows, what);
	};

	const called = (name: keyof Commands) =>
		waitFor(() => calls.find((call) => call[0] === name), {
			timeoutMs: 3000,
			message: `${name} called`,
		});
	return {instance, store, view, calls, frame, press, called};
}

const lineOf = (frame: string, index: number) => frame.split('\n').at(index)?.trimEnd();

describe('keys from the table', () => {
	test('r, c and o call their commands and change nothing on screen', async () => {
		const app = await start();
		const before = app.instance.lastFrame();
		for (const key of ['r', 'c', 'o']) {
			await new Promise((resolve) => setImmediate(resolve));
			app.instance.stdin.write(key);
		}

		await waitFor(() => app.calls.length === 3, {timeoutMs: 3000, message: 'three calls'});
		expect(app.calls).toEqual([['reconnect'], ['copyUrl'], ['openBrowser']]);
		expect(app.instance.lastFrame()).toBe(before);
	});

	test('? opens the help with every key and the config file; ? closes it', async () => {
		const app = await start();
		const help = await app.press('?', (f) => f.includes('Help  keys'), 'with help');
		expect(help).toContain('  q ctrl+c       quit (on the GPU host');
		expect(help).toContain('config  /home/alice/.config/gpujup/config.toml');
		expect(lineOf(help, -1)).toBe(' ? esc close help  q quit');
		const closed = await app.press('?', (f) => !f.includes('Help  keys'), 'without help');
		expect(lineOf(closed, -1)).toBe(' r reconnect j restart c copy o open ? help q quit');
		expect(app.view.getSnapshot().overlay).toBeNull();
	});

	test('Tab and Shift+Tab move the focus between panes', async () => {
		const app = await start();
		expect(lineOf(app.instance.lastFrame() ?? '', 1)?.startsWith('›laptop')).toBe(true);
		await app.press(keys.tab, () => app.view.getSnapshot().focus === 1, 'focus on the GPUs');
		const onJupyter = await app.press(
			keys.tab,
			(f) => f.includes('›jupyter running'),
			'focus on Jupyter',
		);
		expect(lineOf(onJupyter, 1)?.startsWith(' laptop')).toBe(true);
		await app.press(keys.tab, (f) => f.includes('›─ log'), 'focus on the log');
		await app.press(keys.tab, (f) => f.includes('›laptop'), 'focus back on the path');
		await app.press(keys.shiftTab, (f) => f.includes('›─ log'), 'Shift+Tab: back to the log');
	});
});

describe('restart Jupyter', () => {
	test('j asks; anything but y leaves Jupyter alone; y restarts', async () => {
		const app = await start();
		const asked = await app.press('j', (f) => f.includes('Restart Jupyter?'), 'the question');
		expect(lineOf(asked, -1)).toBe(
			' Restart Jupyter? 2 kernels will be stopped. [y/N]  esc cancels',
		);
		await app.press('n', (f) => !f.includes('Restart Jupyter?'), 'the question gone');
		await app.press('j', (f) => f.includes('Restart Jupyter?'), 'asked again');
		await app.press(keys.enter, (f) => !f.includes('Restart Jupyter?'), 'Enter: the default, No');
		expect(app.calls).toEqual([]);
		await app.press('j', (f) => f.includes('Restart Jupyter?'), 'asked a third time');
		await app.press('y', (f) => !f.includes('Restart Jupyter?'), 'answered');
		await app.called('restartJupyter');
		expect(app.calls).toEqual([['restartJupyter']]);
	});
});

describe('quit', () => {
	test('laptop: q quits at once, Jupyter keeps running', async () => {
		const app = await start();
		app.instance.stdin.write('q');
		await app.called('quit');
		expect(app.calls).toEqual([['quit', {stopJupyter: false}]]);
	});

	test('laptop: Ctrl+C quits too', async () => {
		const app = await start({role: 'demo'});
		app.instance.stdin.write(keys.ctrlC);
		await app.called('quit');
		expect(app.calls).toEqual([['quit', {stopJupyter: false}]]);
	});

	test('GPU host: q asks; Enter leaves Jupyter running', async () => {
		const app = await start({role: 'host'});
		const asked = await app.press('q', (f) => f.includes('Stop Jupyter too?'), 'the question');
		expect(lineOf(asked, -1)).toBe(' Stop Jupyter too? 2 kernels running. [y/N]  esc stays');
		app.instance.stdin.write(keys.enter);
		await app.called('quit');
		expect(app.calls).toEqual([['quit', {stopJupyter: false}]]);
	});

	test('GPU host: q then y stops Jupyter; Esc first goes back', async () => {
		const app = await start({role: 'host'});
		await app.press('q', (f) => f.includes('Stop Jupyter too?'), 'the question');
		await app.press(keys.escape, (f) => !f.includes('Stop Jupyter too?'), 'back to the dashboard');
		expect(app.calls).toEqual([]);
		await app.press('q', (f) => f.includes('Stop Jupyter too?'), 'asked again');
		app.instance.stdin.write('y');
		await app.called('quit');
		expect(app.calls).toEqual([['quit', {stopJupyter: true}]]);
	});

	test('GPU host: n also quits, leaving Jupyter running', async () => {
		const app = await start({role: 'host'});
		await app.press(keys.ctrlC, (f) => f.includes('Stop Jupyter too?'), 'Ctrl+C asks too');
		app.instance.stdin.write('n');
		await app.called('quit');
		expect(app.calls).toEqual([['quit', {stopJupyter: false}]]);
	});
});

describe('prompts', () => {
	const hostKey: AppAction = {
		type: 'prompt',
		prompt: {
			kind: 'host-key',
			id: 7,
			hop: 'host',
			host: 'p507 (via relay:19506)',
			keyType: 'ssh-ed25519',
			fingerprint: 'SHA256:n4SvXyWJ7mKQy5Pkq3VbE0yZtqvSg1r2cG0aX3k9sYw',
		},
	};

	const question = 'Continue connecting (yes/no/[fingerprint])?';
	const again = "Please type 'yes', 'no' or the fingerprint:";

	test('an unknown host key asks like ssh: y is not an answer, yes trusts it', async () => {
		const app = await start({actions: [hostKey]});
		const frame = await app.frame((f) => f.includes(question), 'the question');
		expect(frame).toContain(
			" The authenticity of host 'p507 (via relay:19506)' can't be established.",
		);
		expect(frame).toContain(
			' ED25519 key fingerprint is SHA256:n4SvXyWJ7mKQy5Pkq3VbE0yZtqvSg1r2cG0aX3k9sYw.',
		);
		expect(lineOf(frame, -1)).toBe(' enter answer  esc refuse');
		// The dashboard's own keys are off while asked: r is typed, not a reconnect.
		await app.press('r', (f) => f.includes(`${question} r▏`), 'r typed');
		await app.press(keys.backspace, (f) => f.includes(`${question} ▏`), 'erased');
		// A single y, as the old [y/N] prompt took it, trusts nothing: ssh asks again.
		await app.press('y', (f) => f.includes(`${question} y▏`), 'y typed');
		const asked = await app.press(keys.enter, (f) => f.includes(again), 'asked again');
		expect(asked).toContain(`${again} ▏`);
		expect(app.calls).toEqual([]);
		await app.press('maybe', (f) => f.includes(`${again} maybe▏`), 'maybe typed');
		await app.press(keys.enter, (f) => f.includes(`${again} ▏`), 'asked again');
		expect(app.calls).toEqual([]);
		await app.press('YES', (f) => f.includes(`${again} YES▏`), 'YES typed');
		app.instance.stdin.write(keys.enter);
		await app.called('answerPrompt');
		// Until the shell clears the prompt, a second answer is not sent.
		app.instance.stdin.write('no');
		app.instance.stdin.write(keys.enter);
		app.instance.stdin.write(keys.ctrlC);
		await app.called('quit');
		expect(app.calls).toEqual([
			['answerPrompt', 7, true],
			['quit', {stopJupyter: false}],
		]);
	});

	test('the pasted fingerprint trusts the key; another fingerprint is asked again', async () => {
		const app = await start({actions: [hostKey]});
		await app.frame((f) => f.includes(question), 'the question');
		const other = 'SHA256:n4SvXyWJ7mKQy5Pkq3VbE0yZtqvSg1r2cG0aX3k9sYx';
		await app.press(other, (f) => f.includes('9sYx▏'), 'pasted (its tail shows)');
		await app.press(keys.enter, (f) => f.includes(again), 'asked again');
		expect(app.calls).toEqual([]);
		const pasted = await app.press(
			'SHA256:n4SvXyWJ7mKQy5Pkq3VbE0yZtqvSg1r2cG0aX3k9sYw',
			(f) => f.includes('9sYw▏'),
			'pasted',
		);
		// A long paste shows its end, cut at the left, never past the edge.
		for (const row of pasted.split('\n')) expect([...row].length).toBeLessThanOrEqual(80);
		app.instance.stdin.write(keys.enter);
		await app.called('answerPrompt');
		expect(app.calls).toEqual([['answerPrompt', 7, true]]);
	});

	test('a pasted "yes" with its Enter, in one write, trusts the key', async () => {
		const app = await start({actions: [hostKey]});
		await app.frame((f) => f.includes(question), 'the question');
		app.instance.stdin.write('yes\r');
		await app.called('answerPrompt');
		expect(app.calls).toEqual([['answerPrompt', 7, true]]);
	});

	test('no, Enter on nothing and Esc refuse an unknown host key', async () => {
		for (const answer of [['no', keys.enter], [keys.enter], [' No ', keys.enter], [keys.escape]]) {
			cleanup();
			const app = await start({actions: [hostKey]});
			await app.frame((f) => f.includes(question), 'the question');
			for (const part of answer) {
				await new Promise((resolve) => setImmediate(resolve));
				app.instance.stdin.write(part);
			}

			await app.called('answerPrompt');
			expect(app.calls).toEqual([['answerPrompt', 7, false]]);
		}
	});

	const secret: AppAction = {
		type: 'prompt',
		prompt: {
			kind: 'secret',
			id: 9,
			hop: 'relay',
			message: "Enter passphrase for key '/home/alice/.ssh/id_ed25519':",
			echo: false,
		},
	};

	test('a passphrase is typed masked, corrected, and submitted with Enter', async () => {
		const app = await start({actions: [secret]});
		await app.frame((f) => f.includes('Enter passphrase'), 'the prompt');
		const typed = await app.press('hunter22', (f) => f.includes('••••••••▏'), 'eight dots');
		expect(typed).not.toContain('hunter');
		await app.press(keys.backspace, (f) => f.includes(': •••••••▏'), 'seven dots');
		app.instance.stdin.write(keys.enter);
		await app.called('answerPrompt');
		expect(app.calls).toEqual([['answerPrompt', 9, 'hunter2']]);
	});

	test('Esc cancels a passphrase with null', async () => {
		const app = await start({actions: [secret]});
		await app.press('abc', (f) => f.includes('•••▏'), 'three dots');
		app.instance.stdin.write(keys.escape);
		await app.called('answerPrompt');
		expect(app.calls).toEqual([['answerPrompt', 9, null]]);
	});
});

describe('the log', () => {
	const lines: AppAction = {
		type: 'log',
		lines: Array.from(
			{length: 40},
			(_, i) => `[I 14:${String(i).padStart(2, '0')}] ${i % 4 === 0 ? 'Kernel' : 'saved'} ${i}`,
		),
	};

	test('/ filters as you type; Enter keeps it; Esc clears it', async () => {
		const app = await start({actions: [lines]});
		await app.press('/', (f) => f.includes('filter: ▏'), 'filter editing');
		const filtered = await app.press('kern', (f) => f.includes('filter: kern▏'), 'typed filter');
		const shown = filtered.split('\n').filter((line) => line.startsWith(' [I'));
		expect(shown.map((line) => line.trimEnd()).slice(-3)).toEqual([
			' [I 14:28] Kernel 28',
			' [I 14:32] Kernel 32',
			' [I 14:36] Kernel 36',
		]);
		expect(shown.every((line) => line.toLowerCase().includes('kern'))).toBe(true);
		// While typing, q is a letter of the filter, not quit.
		await app.press('q', (f) => f.includes('filter: kernq▏'), 'q typed');
		await app.press(keys.backspace, (f) => f.includes('filter: kern▏'), 'q erased');
		const kept = await app.press(
			keys.enter,
			(f) => f.includes('filter: kern ') || /filter: kern─/.test(f),
			'filter kept',
		);
		expect(lineOf(kept, -1)).toBe(' r reconnect j restart c copy o open ? help q quit');
		await app.press(keys.escape, (f) => !f.includes('filter:'), 'filter cleared');
		expect(app.calls).toEqual([]);
	});

	test('arrows and PgUp scroll; G follows again', async () => {
		const app = await start({actions: [lines]});
		const following = app.instance.lastFrame() ?? '';
		expect(lineOf(following, -2)).toBe(' [I 14:39] saved 39');
		const up = await app.press(keys.up, (f) => f.includes('· scrolled'), 'scrolled');
		expect(lineOf(up, -2)).toBe(' [I 14:38] saved 38');
		const page = await app.press(
			keys.pageUp,
			(f) => lineOf(f, -2) !== ' [I 14:38] saved 38',
			'a page up',
		);
		const pageSize = app.view.getSnapshot().logScroll - 1;
		expect(pageSize).toBeGreaterThan(3);
		expect(lineOf(page, -2)).toBe(
			` [I 14:${38 - pageSize}] ${(38 - pageSize) % 4 === 0 ? 'Kernel' : 'saved'} ${38 - pageSize}`,
		);
		await app.press(keys.down, () => app.view.getSnapshot().logScroll === pageSize, 'one down');
		const back = await app.press('G', (f) => f.includes('· following'), 'following');
		expect(back).toBe(following);
	});

	test('after g (the oldest line on top), ↓ moves one line and PgDn a whole page', async () => {
		const app = await start({actions: [lines]});
		// As shown: one space in, the fixture's token masked.
		const logs = app.store.getSnapshot().logs.map((line) => ` ${maskTokens(line)}`);
		const shownLines = (f: string) => f.split('\n').filter((line) => logs.includes(line));
		const top = await app.press('g', (f) => shownLines(f)[0] === logs[0], 'the oldest line');
		const shown = shownLines(top).length;
		expect(shown).toBeGreaterThan(3);
		await app.press(keys.down, (f) => shownLines(f)[0] === logs[1], 'one line down');
		// A page is what is shown, less one line kept for context.
		const page = await app.press(keys.pageDown, (f) => shownLines(f)[0] !== logs[1], 'a page down');
		expect(shownLines(page)[0]).toBe(logs[1 + shown - 1]);
	});
});
