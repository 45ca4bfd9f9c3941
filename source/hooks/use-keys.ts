/**
 * The dashboard's keyboard, in one hook: each mode (a prompt, a y/N question, the help overlay,
 * the log filter, the dashboard itself) reads its keys from its table in core/keymap.ts — the
 * same tables the footer and the help overlay are drawn from — and turns them into UI actions
 * (dispatched to the view's own store, core/view-state.ts) or commands (called). The mode is
 * read from both stores when the key arrives.
 */
import {useInput, type Key} from 'ink';
import {useCallback, useEffect, useRef, useState} from 'react';
import type {AppAction, AppState} from '../core/app-state.js';
import type {KernelAction} from '../core/kernels.js';
import {hostKeyAnswer} from '../core/known-hosts.js';
import {
	actionFor,
	confirmKeys,
	confirmQuitKeys,
	filterKeys,
	helpKeys,
	hostKeyPromptKeys,
	modeAction,
	secretPromptKeys,
	type KeyAction,
	type ModeTable,
	type TextFieldAction,
} from '../core/keymap.js';
import type {Store} from '../core/store.js';
import type {Commands} from '../core/view-commands.js';
import {logScrollOf, selectedKernel, type ViewAction, type ViewState} from '../core/view-state.js';
import {computeLayout, focusablePanes, focusedPane} from '../components/layout.js';
import {filterLogs} from '../components/log-pane.js';

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

/** One key in a text field: what it ends the field with (from the table), or what it edits. */
function textFieldKey(
	table: ModeTable<TextFieldAction>,
	input: string,
	key: Key,
): {readonly action: TextFieldAction | null; readonly text: string; readonly erase: boolean} {
	const action = modeAction(table, input, key);
	if (action === 'quit' || action === 'cancel') return {action, text: '', erase: false};
	if (key.backspace || key.delete) return {action: null, text: '', erase: true};
	const {text, enter} = typed(input, key);
	return {action: enter ? 'submit' : null, text, erase: false};
}

const jupyterAlive = (state: AppState) =>
	state.jupyter !== null && ['running', 'starting', 'restarting'].includes(state.jupyter.state);

export type KeysOptions = {
	readonly store: Store<AppState, AppAction>;
	/** The view's own state: overlay, focus, scroll, filter, selection. */
	readonly view: Store<ViewState, ViewAction>;
	readonly commands: Commands;
	/** The dashboard's size, for the log's page and scroll limits. */
	readonly width: number;
	readonly height: number;
	readonly now: () => number;
};

/** What the view shows of the keys typed: a prompt's draft, and whether to ask again. */
export type KeysView = {
	readonly draft: string;
	/** The host-key prompt's last answer was neither yes, no nor the fingerprint. */
	readonly promptAgain: boolean;
};

export function useKeys({store, view, commands, width, height, now}: KeysOptions): KeysView {
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
	const [promptAgain, setPromptAgain] = useState(false);
	const promptId = store.getSnapshot().prompt?.id ?? null;
	useEffect(() => {
		setDraft('');
		setPromptAgain(false);
	}, [promptId, setDraft]);

	const quit = useCallback(
		(stopJupyter: boolean) => {
			if (quitting.current) return;
			quitting.current = true;
			commands.quit({stopJupyter});
		},
		[commands],
	);

	/**
	 * `q` and Ctrl+C: the GPU host asks about Jupyter first, `connect --slurm --on-quit ask` about
	 * the job (y cancels it: the same answer as stopping Jupyter); elsewhere quit at once.
	 */
	const askQuit = useCallback(() => {
		const current = store.getSnapshot();
		if (
			(current.role === 'host' && jupyterAlive(current)) ||
			(current.job?.onQuit === 'ask' && current.job.state !== 'ENDED')
		)
			view.dispatch({type: 'overlay', overlay: 'confirm-quit'});
		else quit(false);
	}, [store, view, quit]);

	const notice = useCallback(
		(text: string, level: 'info' | 'warn') => {
			store.dispatch({type: 'notice', notice: {text, level, at: now()}});
		},
		[store, now],
	);

	/** The kernel a confirmed `K` or `x` acts on: the one selected when the key was pressed. */
	const confirmedKernel = useCallback(
		(action: KernelAction) => {
			const {kernelId} = view.getSnapshot();
			const kernel = store.getSnapshot().kernels.find((k) => k.id === kernelId);
			if (kernel) commands.kernelAction(kernel.id, action);
			else notice('that kernel is gone: nothing done', 'warn');
		},
		[store, view, commands, notice],
	);

	/** The dashboard's own keys (core/keymap.ts `keymap`). */
	const run = useCallback(
		(action: KeyAction) => {
			const current = store.getSnapshot();
			const shownView = view.getSnapshot();
			const shown = computeLayout(current, width, height, shownView).logLines;
			const page = Math.max(1, shown - 1);
			// Scrolled no further than the oldest line at the top, so ↓ and PgDn move at once.
			const max = Math.max(0, filterLogs(current.logs, shownView.logFilter).length - shown);
			const scroll = (delta: number) =>
				view.dispatch({type: 'scroll', delta, max, logSeq: current.logSeq});
			switch (action) {
				case 'reconnect': {
					commands.reconnect();
					break;
				}

				case 'restart-jupyter': {
					// Asking to confirm what cannot happen only delays the news: say it at once.
					if (commands.restartBlocked()) commands.restartJupyter();
					else view.dispatch({type: 'overlay', overlay: 'confirm-restart'});
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
					view.dispatch({
						type: 'focus',
						delta: action === 'focus-next' ? 1 : -1,
						panes: focusablePanes(current).length,
					});
					break;
				}

				case 'kernel-interrupt':
				case 'kernel-restart':
				case 'kernel-shutdown': {
					const kernel = selectedKernel(current.kernels, shownView);
					if (!kernel) {
						notice('no kernel to act on', 'info');
						break;
					}

					// Pin the selection: the question and its answer are about this kernel.
					view.dispatch({type: 'select-kernel', delta: 0, kernels: current.kernels});
					if (action === 'kernel-interrupt') commands.kernelAction(kernel.id, 'interrupt');
					else
						view.dispatch({
							type: 'overlay',
							overlay:
								action === 'kernel-restart' ? 'confirm-kernel-restart' : 'confirm-kernel-shutdown',
						});
					break;
				}

				case 'scroll-up':
				case 'scroll-down': {
					if (focusedPane(current, shownView) === 'notebooks') {
						view.dispatch({
							type: 'select-kernel',
							delta: action === 'scroll-up' ? -1 : 1,
							kernels: current.kernels,
						});
						break;
					}

					scroll(action === 'scroll-up' ? 1 : -1);
					break;
				}

				case 'page-up':
				case 'page-down': {
					scroll(action === 'page-up' ? page : -page);
					break;
				}

				case 'scroll-top': {
					scroll(current.logs.length);
					break;
				}

				case 'follow': {
					scroll(-logScrollOf(shownView, current.logSeq, current.logs.length));
					break;
				}

				case 'filter': {
					view.dispatch({type: 'filter', filter: shownView.logFilter, editing: true});
					break;
				}

				case 'help': {
					view.dispatch({type: 'overlay', overlay: 'help'});
					break;
				}

				case 'quit': {
					askQuit();
					break;
				}
			}
		},
		[store, view, commands, width, height, askQuit, notice],
	);

	const onNormal = useCallback(
		(current: AppState, shown: ViewState, input: string, key: Key) => {
			// Esc clears a kept filter (the `/` binding's help says so): not a binding of its own.
			if (key.escape && shown.logFilter) {
				view.dispatch({type: 'filter', filter: '', editing: false});
				return;
			}

			const action = actionFor(input, key, current.role);
			if (action) run(action);
		},
		[view, run],
	);

	const onOverlay = useCallback(
		(shown: ViewState, input: string, key: Key) => {
			const close = () => view.dispatch({type: 'overlay', overlay: null});
			switch (shown.overlay) {
				case 'confirm-restart':
				case 'confirm-kernel-restart':
				case 'confirm-kernel-shutdown': {
					const action = modeAction(confirmKeys, input, key);
					close();
					if (action === 'quit') askQuit();
					else if (action === 'yes') {
						if (shown.overlay === 'confirm-restart') commands.restartJupyter();
						else
							confirmedKernel(shown.overlay === 'confirm-kernel-restart' ? 'restart' : 'shutdown');
					}

					return;
				}

				case 'confirm-quit': {
					const action = modeAction(confirmQuitKeys, input, key);
					close();
					// No, the default, leaves Jupyter running.
					if (action !== 'stay') quit(action === 'stop-jupyter');
					return;
				}

				case 'help': {
					const action = modeAction(helpKeys, input, key);
					if (action) close();
					if (action === 'quit') askQuit();
					return;
				}

				case null: {
					return;
				}
			}
		},
		[view, commands, askQuit, quit, confirmedKernel],
	);

	const onFilter = useCallback(
		(shown: ViewState, input: string, key: Key) => {
			const filter = shown.logFilter;
			const {action, text, erase} = textFieldKey(filterKeys, input, key);
			if (action === 'quit') {
				view.dispatch({type: 'filter', filter, editing: false});
				askQuit();
			} else if (action === 'cancel') {
				view.dispatch({type: 'filter', filter: '', editing: false});
			} else if (erase) {
				view.dispatch({type: 'filter', filter: [...filter].slice(0, -1).join(''), editing: true});
			} else if (text || action === 'submit') {
				view.dispatch({type: 'filter', filter: filter + text, editing: action !== 'submit'});
			}
		},
		[view, askQuit],
	);

	const onPrompt = useCallback(
		(current: AppState, input: string, key: Key) => {
			const {prompt} = current;
			if (!prompt) return;
			const answer = (value: boolean | string | null) => {
				if (answered.current === prompt.id) return;
				answered.current = prompt.id;
				commands.answerPrompt(prompt.id, value);
			};

			const hostKey = prompt.kind === 'host-key';
			const {action, text, erase} = textFieldKey(
				hostKey ? hostKeyPromptKeys : secretPromptKeys,
				input,
				key,
			);
			if (action === 'quit') {
				answer(hostKey ? false : null);
				quit(false);
				return;
			}

			if (answered.current === prompt.id) return;
			if (action === 'cancel') {
				answer(hostKey ? false : null);
				setDraft('');
				return;
			}

			if (erase) {
				setDraft((d) => [...d].slice(0, -1).join(''));
				return;
			}

			if (hostKey && action === 'submit') {
				// Like ssh: only `yes` or the fingerprint trusts the key; anything else asks again.
				// A pasted `yes\r` arrives as one event: what it held before its Enter is the answer.
				const trust = hostKeyAnswer(draftRef.current + text, prompt.fingerprint);
				setDraft('');
				if (trust === null) setPromptAgain(true);
				else answer(trust);
				return;
			}

			if (text) setDraft((d) => d + text);
			if (action === 'submit') {
				answer(draftRef.current);
				setDraft('');
			}
		},
		[commands, quit, setDraft],
	);

	useInput((input, key) => {
		const current = store.getSnapshot();
		const shown = view.getSnapshot();
		if (current.prompt) onPrompt(current, input, key);
		else if (shown.overlay) onOverlay(shown, input, key);
		else if (shown.filterEditing) onFilter(shown, input, key);
		else onNormal(current, shown, input, key);
	});

	return {draft, promptAgain};
}
