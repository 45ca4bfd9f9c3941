import {useInput, type Key} from 'ink';
import {useCallback, useEffect, useRef, useState} from 'react';
import {selectedKernel, urgentChange, type AppAction, type AppState} from './core/app-state.js';
import type {KernelAction} from './core/kernels.js';
import {hostKeyAnswer} from './core/known-hosts.js';
import {actionFor, type KeyAction} from './core/keymap.js';
import type {Store} from './core/store.js';
import {Dashboard} from './components/dashboard.js';
import {computeLayout, focusablePanes, focusedPane} from './components/layout.js';
import {filterLogs} from './components/log-pane.js';
import {useClock} from './hooks/use-clock.js';
import {useFrameStore} from './hooks/use-frame-store.js';
import {useTerminalSize} from './hooks/use-terminal-size.js';

/** The side effects the dashboard asks for; the shell (cli.tsx) runs them. */
export type Commands = {
	reconnect(): void;
	restartJupyter(): void;
	/** Why a restart cannot happen now (no `gpujup host` to ask), or null: then `j` confirms first. */
	restartBlocked(): string | null;
	copyUrl(): void;
	openBrowser(): void;
	/** Interrupt, restart or shut down kernel `id` (restart and shut down were confirmed). */
	kernelAction(id: string, action: KernelAction): void;
	/** Answer the current prompt: host-key -> boolean; secret -> string, or null when cancelled. */
	answerPrompt(id: number, answer: boolean | string | null): void;
	/** The shell disposes services and exits; stopJupyter only from the host's quit question. */
	quit(options: {stopJupyter: boolean}): void;
};

export type AppProps = {
	readonly store: Store<AppState, AppAction>;
	readonly commands: Commands;
	/** Clock for uptimes and countdowns (default Date.now, sampled once a second). */
	readonly now?: () => number;
	/** Colours on; default: unless NO_COLOR is set. Glyphs and text are the same either way. */
	readonly color?: boolean;
	/** Terminal size overrides (tests); default: Ink's stdout, following resizes. */
	readonly columns?: number;
	readonly rows?: number;
	/**
	 * Background updates (samples, hop status, log lines) are drawn at most once per this many ms,
	 * together; what the user does is drawn at once. Default 0: every change at once (tests).
	 */
	readonly frameMs?: number;
};

/** Printable text from a key press (a paste arrives whole), or '' for control keys. */
function printable(input: string, key: Key): string {
	if (key.ctrl || key.meta || key.return || key.tab || key.escape) return '';
	// eslint-disable-next-line no-control-regex
	return input.replaceAll(/[\u0000-\u001F\u007F]/g, '');
}

/**
 * A text field's view of one key event: the text typed, and whether Enter ended it. A paste, or
 * a fast typist over SSH, sends `secret\r` in one write, which Ink reports as one event whose
 * `key.return` is false: the Enter inside it submits all the same (what follows it is dropped).
 */
function typed(input: string, key: Key): {text: string; enter: boolean} {
	if (key.return) return {text: '', enter: true};
	const end = input.search(/[\r\n]/);
	if (end === -1) return {text: printable(input, key), enter: false};
	return {text: printable(input.slice(0, end), key), enter: true};
}

const isCtrlC = (input: string, key: Key) => key.ctrl && input === 'c';
const isErase = (key: Key) => key.backspace || key.delete;

const jupyterAlive = (state: AppState) =>
	state.jupyter !== null && ['running', 'starting', 'restarting'].includes(state.jupyter.state);

/**
 * The root: renders the store, turns keys into UI actions (dispatched) and commands (called).
 * One `useInput` per mode, each active only in its mode: prompt > overlay > filter > normal.
 */
export function App({
	store,
	commands,
	now = Date.now,
	color,
	columns,
	rows,
	frameMs = 0,
}: AppProps) {
	const state = useFrameStore(store, frameMs, urgentChange);
	const time = useClock(now);
	const size = useTerminalSize();
	const width = columns ?? size.columns;
	// Ink clears the whole screen on every frame once output reaches the last row: keep it free.
	const height = Math.max(1, (rows ?? size.rows) - 1);
	const useColor = color ?? !process.env['NO_COLOR'];
	const [draft, setDraftState] = useState('');
	// Keys can arrive before React re-renders with the new draft: the handler reads this ref.
	const draftRef = useRef('');
	const setDraft = useCallback((update: string | ((previous: string) => string)) => {
		draftRef.current = typeof update === 'function' ? update(draftRef.current) : update;
		setDraftState(draftRef.current);
	}, []);
	const quitting = useRef(false);
	// A prompt stays in the store until the shell clears it: answer each one once.
	const answered = useRef<number | null>(null);
	const promptId = state.prompt?.id ?? null;
	// The host-key prompt's last answer was neither yes, no nor the fingerprint.
	const [promptAgain, setPromptAgain] = useState(false);
	useEffect(() => {
		setDraft('');
		setPromptAgain(false);
	}, [promptId, setDraft]);

	const mode = state.prompt
		? 'prompt'
		: state.overlay
			? 'overlay'
			: state.ui.filterEditing
				? 'filter'
				: 'normal';

	const quit = useCallback(
		(stopJupyter: boolean) => {
			if (quitting.current) return;
			quitting.current = true;
			commands.quit({stopJupyter});
		},
		[commands],
	);

	/** `q` and Ctrl+C: the GPU host asks about Jupyter first; elsewhere quit at once. */
	const askQuit = useCallback(() => {
		const current = store.getSnapshot();
		if (current.role === 'host' && jupyterAlive(current))
			store.dispatch({type: 'overlay', overlay: 'confirm-quit'});
		else quit(false);
	}, [store, quit]);

	/** The kernel a confirmed `K` or `x` acts on: the one selected when the key was pressed. */
	const confirmedKernel = useCallback(
		(action: KernelAction) => {
			const current = store.getSnapshot();
			const kernel = current.kernels.find((k) => k.id === current.ui.kernelId);
			if (kernel) commands.kernelAction(kernel.id, action);
			else
				store.dispatch({
					type: 'notice',
					notice: {text: 'that kernel is gone: nothing done', level: 'warn', at: now()},
				});
		},
		[store, commands, now],
	);

	const run = useCallback(
		(action: KeyAction) => {
			const current = store.getSnapshot();
			const shown = computeLayout(current, width, height).logLines;
			const page = Math.max(1, shown - 1);
			// Scrolled no further than the oldest line at the top, so ↓ and PgDn move at once.
			const max = Math.max(0, filterLogs(current.logs, current.ui.logFilter).length - shown);
			const onNotebooks = focusedPane(current) === 'notebooks';
			switch (action) {
				case 'reconnect': {
					commands.reconnect();
					break;
				}

				case 'restart-jupyter': {
					// Asking to confirm what cannot happen only delays the news: say it at once.
					if (commands.restartBlocked()) commands.restartJupyter();
					else store.dispatch({type: 'overlay', overlay: 'confirm-restart'});
					break;
				}

				case 'copy-url': {
					commands.copyUrl();
					break;
				}

				case 'open-browser': {
					commands.openBrowser();
					break;
				}

				case 'focus-next':
				case 'focus-previous': {
					store.dispatch({
						type: 'focus',
						delta: action === 'focus-next' ? 1 : -1,
						panes: focusablePanes(current).length,
					});
					break;
				}

				case 'kernel-interrupt':
				case 'kernel-restart':
				case 'kernel-shutdown': {
					const kernel = selectedKernel(current);
					if (!kernel) {
						store.dispatch({
							type: 'notice',
							notice: {text: 'no kernel to act on', level: 'info', at: now()},
						});
						break;
					}

					// Pin the selection: the question and its answer are about this kernel.
					store.dispatch({type: 'select-kernel', delta: 0});
					if (action === 'kernel-interrupt') commands.kernelAction(kernel.id, 'interrupt');
					else
						store.dispatch({
							type: 'overlay',
							overlay:
								action === 'kernel-restart' ? 'confirm-kernel-restart' : 'confirm-kernel-shutdown',
						});
					break;
				}

				case 'scroll-up':
				case 'scroll-down': {
					if (onNotebooks) {
						store.dispatch({type: 'select-kernel', delta: action === 'scroll-up' ? -1 : 1});
						break;
					}

					store.dispatch({type: 'scroll', delta: action === 'scroll-up' ? 1 : -1, max});
					break;
				}

				case 'page-up':
				case 'page-down': {
					const step = action.startsWith('page') ? page : 1;
					const up = action.endsWith('up');
					store.dispatch({type: 'scroll', delta: up ? step : -step, max});
					break;
				}

				case 'scroll-top': {
					store.dispatch({type: 'scroll', delta: current.logs.length, max});
					break;
				}

				case 'follow': {
					store.dispatch({type: 'scroll', delta: -current.ui.logScroll});
					break;
				}

				case 'filter': {
					store.dispatch({type: 'filter', filter: current.ui.logFilter, editing: true});
					break;
				}

				case 'help': {
					store.dispatch({type: 'overlay', overlay: 'help'});
					break;
				}

				case 'quit': {
					askQuit();
					break;
				}
			}
		},
		[store, commands, width, height, askQuit, now],
	);

	const onNormal = useCallback(
		(input: string, key: Key) => {
			const current = store.getSnapshot();
			if (key.escape && current.ui.logFilter) {
				store.dispatch({type: 'filter', filter: '', editing: false});
				return;
			}

			const action = actionFor(input, key, current.role);
			if (action) run(action);
		},
		[store, run],
	);

	const onOverlay = useCallback(
		(input: string, key: Key) => {
			const current = store.getSnapshot();
			const close = () => store.dispatch({type: 'overlay', overlay: null});
			const yes = input === 'y' || input === 'Y';
			switch (current.overlay) {
				case 'confirm-restart': {
					if (isCtrlC(input, key)) {
						close();
						askQuit();
						return;
					}

					close();
					if (yes) commands.restartJupyter();
					return;
				}

				case 'confirm-kernel-restart':
				case 'confirm-kernel-shutdown': {
					close();
					if (isCtrlC(input, key)) askQuit();
					else if (yes)
						confirmedKernel(current.overlay === 'confirm-kernel-restart' ? 'restart' : 'shutdown');
					return;
				}

				case 'confirm-quit': {
					// Esc goes back; anything else answers, and No (the default) leaves Jupyter running.
					if (key.escape) {
						close();
						return;
					}

					close();
					quit(yes);
					return;
				}

				case 'help': {
					if (isCtrlC(input, key) || input === 'q') {
						close();
						askQuit();
					} else if (key.escape || input === '?' || key.return) {
						close();
					}

					return;
				}

				case null: {
					return;
				}
			}
		},
		[store, commands, askQuit, quit, confirmedKernel],
	);

	const onFilter = useCallback(
		(input: string, key: Key) => {
			const current = store.getSnapshot();
			const filter = current.ui.logFilter;
			if (isCtrlC(input, key)) {
				store.dispatch({type: 'filter', filter, editing: false});
				askQuit();
			} else if (key.escape) {
				store.dispatch({type: 'filter', filter: '', editing: false});
			} else if (isErase(key)) {
				store.dispatch({type: 'filter', filter: [...filter].slice(0, -1).join(''), editing: true});
			} else {
				const {text, enter} = typed(input, key);
				if (text || enter) store.dispatch({type: 'filter', filter: filter + text, editing: !enter});
			}
		},
		[store, askQuit],
	);

	const onPrompt = useCallback(
		(input: string, key: Key) => {
			const prompt = store.getSnapshot().prompt;
			if (!prompt) return;
			const answer = (value: boolean | string | null) => {
				if (answered.current === prompt.id) return;
				answered.current = prompt.id;
				commands.answerPrompt(prompt.id, value);
			};

			if (isCtrlC(input, key)) {
				answer(prompt.kind === 'host-key' ? false : null);
				quit(false);
				return;
			}

			if (answered.current === prompt.id) return;
			if (prompt.kind === 'host-key' && (key.return || key.escape)) {
				// Like ssh: only `yes` or the fingerprint trusts the key; anything else asks again.
				const trust = key.escape ? false : hostKeyAnswer(draftRef.current, prompt.fingerprint);
				setDraft('');
				if (trust === null) setPromptAgain(true);
				else answer(trust);
				return;
			}

			if (key.escape) {
				answer(null);
				setDraft('');
			} else if (isErase(key)) {
				setDraft((d) => [...d].slice(0, -1).join(''));
			} else {
				const {text, enter} = typed(input, key);
				if (text) setDraft((d) => d + text);
				if (enter) {
					answer(draftRef.current);
					setDraft('');
				}
			}
		},
		[store, commands, quit, setDraft],
	);

	useInput(onPrompt, {isActive: mode === 'prompt'});
	useInput(onOverlay, {isActive: mode === 'overlay'});
	useInput(onFilter, {isActive: mode === 'filter'});
	useInput(onNormal, {isActive: mode === 'normal'});

	return (
		<Dashboard
			state={state}
			now={time}
			columns={width}
			rows={height}
			color={useColor}
			draft={draft}
			promptAgain={promptAgain}
		/>
	);
}
