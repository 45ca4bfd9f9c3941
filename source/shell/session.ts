import type {Commands} from '../core/view-commands.js';
import type {Config} from '../config/types.js';
import type {AppAction, AppState} from '../core/app-state.js';
import {sanitizeLine} from '../core/sanitize.js';
import type {SessionHandle} from '../core/session-handle.js';
import type {Store} from '../core/store.js';
import {BrowserError, openInBrowser} from '../services/browser.js';
import {copyToClipboard} from '../services/clipboard.js';
import {notifyTerminal} from '../services/desktop-notify.js';
import {formatEvent, startJsonWriter} from '../services/json-writer.js';
import {tildify} from '../services/ssh-auth.js';
import {
	offLogLines,
	reportInkWorkarounds,
	sessionWorkarounds,
} from '../services/workarounds/index.js';
import {enterAlternateScreen, restoreTerminal} from '../services/terminal.js';
import {serveSession} from '../wiring/control.js';
import {profileDir, type AskerFactory} from '../wiring/ssh-options.js';
import {createPromptAsker} from './asker.js';

export type SessionOptions = {
	readonly config: Config;
	readonly store: Store<AppState, AppAction>;
	/**
	 * Serve the profile's control socket (`connect.sock` or `host.sock`, wiring/control.ts) for
	 * `url`, `status`, `kernels` and `--stop-jupyter`, before the role starts; null for none (demo).
	 */
	readonly socket: 'connect' | 'host' | null;
	/**
	 * Starts the role. A role that can be asked things while it starts (the host's Jupyter) hands
	 * its handle to `attach` early; otherwise the handle it resolves is the one used.
	 */
	readonly start: (
		asker: AskerFactory,
		attach: (handle: SessionHandle) => void,
	) => Promise<SessionHandle>;
	/** The exit status under --no-tui when a hop fails for good (auth or host key); default 1. */
	readonly failedExitCode?: number;
};

/** How long a quit waits for the session to dispose before the process goes on to exit. */
export const disposeDeadlineMs = 5000;

/** An error's message for one line of the dashboard or stderr: it may carry remote text. */
function errorMessage(error: unknown): string {
	return sanitizeLine(error instanceof Error ? error.message : String(error));
}

/**
 * A session that could not start, said where its reader looks: the `closed` error line under
 * --no-tui, and stderr either way.
 */
export function sayStartFailed(error: unknown, tui: boolean): void {
	if (!tui)
		process.stdout.write(
			formatEvent({type: 'error', kind: 'closed', message: errorMessage(error)}),
		);
	process.stderr.write(`gpujup: ${errorMessage(error)}\n`);
}

/**
 * The dashboard's module (Ink and React, loaded only to draw), with Ink's workarounds applied to
 * its Ink and reported for `status`; `offLines`: the log lines of those found off.
 */
export async function loadDashboard() {
	const dashboard = await import('../dashboard.js');
	const offLines = offLogLines(await dashboard.fenceInk());
	reportInkWorkarounds(dashboard.inkWorkaroundsInUse);
	return {...dashboard, offLines};
}

/** Quits on SIGINT, SIGTERM and SIGHUP; returns the function that stops listening. */
export function onQuitSignals(quit: () => void): () => void {
	const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
	for (const signal of signals) process.on(signal, quit);
	return () => {
		for (const signal of signals) process.off(signal, quit);
	};
}

/**
 * Each new notification of the store rings the terminal and asks it for a desktop notification
 * (OSC 9 / 777; the sequences move no cursor, so they can go between Ink's frames), its title as
 * `title` makes it. Returns the unsubscribe.
 */
export function ringOnNotifications(
	store: Store<AppState, AppAction>,
	title: (title: string) => string = (text) => text,
): () => void {
	let seen = store.getSnapshot().notifySeq;
	return store.subscribe(() => {
		const state = store.getSnapshot();
		if (state.notifySeq === seen) return;
		const fresh = state.notifications.slice(-(state.notifySeq - seen));
		seen = state.notifySeq;
		for (const note of fresh) notifyTerminal(title(note.title), note.message);
	});
}

/** What {@link sessionCommands} runs the dashboard's commands against. */
export type SessionCommandsOptions = {
	readonly config: Config;
	readonly store: Store<AppState, AppAction>;
	/** The running role, once started. */
	readonly handle: () => SessionHandle | undefined;
	readonly prompts: {answer(id: number, answer: boolean | string | null): void};
	readonly quit: (stopJupyter: boolean) => void;
};

/**
 * The dashboard's commands for one session's store and handle: what each key does, with its
 * notice in the header. A fleet builds one set per GPU host (shell/fleet-session.ts).
 */
export function sessionCommands(options: SessionCommandsOptions): Commands {
	const {config, store, handle, prompts, quit} = options;
	// How long it stays is core/notice.ts's policy: the header hides it when its time is up.
	const notify = (text: string, level: 'info' | 'warn' | 'error' = 'info') => {
		store.dispatch({type: 'notice', notice: {text, level, at: Date.now()}});
	};

	return {
		reconnect() {
			// `r` retries what is down now, skipping its backoff; a healthy hop is left alone.
			if (store.getSnapshot().hops.every((hop) => hop.state === 'ready')) {
				notify('all hops are up: nothing to reconnect');
				return;
			}

			handle()?.reconnect();
			notify('reconnecting…');
		},
		restartBlocked: () => handle()?.restartBlocked?.() ?? null,
		restartJupyter() {
			const blocked = handle()?.restartBlocked?.();
			if (blocked) {
				notify(blocked, 'error');
				return;
			}

			notify('restarting Jupyter…');
			handle()
				?.restartJupyter()
				.catch((error: unknown) => {
					notify(errorMessage(error), 'error');
				});
		},
		copyUrl() {
			const url = handle()?.urlWithToken();
			if (!url) {
				notify('no Jupyter URL yet: the token is not known', 'warn');
				return;
			}

			copyToClipboard(url);
			notify('copied ✓');
		},
		openBrowser() {
			const url = handle()?.urlWithToken();
			if (!url) {
				notify('no Jupyter URL yet: the token is not known', 'warn');
				return;
			}

			notify('opening the browser…');
			openInBrowser(url, profileDir(config)).then(
				() => {
					notify('browser opened ✓');
				},
				(error: unknown) => {
					// The file's path is long for the header: the log keeps it, the header points there.
					const why = error instanceof BrowserError ? error.why : errorMessage(error);
					notify(`no browser opened (${why}): the link is in the log · c copies`, 'warn');
					store.dispatch({
						type: 'log',
						lines: [
							`[gpujup] no browser opened: ${why}`,
							...(error instanceof BrowserError
								? [`[gpujup] open in a browser: ${tildify(error.file)}`]
								: []),
						],
					});
				},
			);
		},
		kernelAction(id, action) {
			const running = handle();
			if (!running?.kernelAction) {
				notify('no kernels are watched here', 'warn');
				return;
			}

			const doing = {interrupt: 'interrupting', restart: 'restarting', shutdown: 'shutting down'};
			notify(`${doing[action]} the kernel…`);
			running.kernelAction(id, action).then(
				(message) => {
					notify(message);
				},
				(error: unknown) => {
					notify(errorMessage(error), 'error');
				},
			);
		},
		answerPrompt(id, answer) {
			prompts.answer(id, answer);
		},
		quit({stopJupyter}) {
			quit(stopJupyter);
		},
	};
}

/**
 * Runs a role until the user quits or a signal comes: the dashboard on a TTY, JSON lines
 * otherwise (exiting 1 when a hop fails for good: auth or host key). Resolves the exit code.
 */
export async function runSession(options: SessionOptions): Promise<number> {
	const {config, store} = options;
	const tui = !config.noTui;
	let handle: SessionHandle | undefined;
	let finish: (code: number) => void = () => {};
	const done = new Promise<number>((resolve) => {
		finish = resolve;
	});
	const prompts = createPromptAsker(store);
	const fallbacks = offLogLines(sessionWorkarounds());
	if (fallbacks.length > 0) store.dispatch({type: 'log', lines: fallbacks});
	const asker: AskerFactory = tui ? prompts.factory : () => ({});

	let quitting = false;
	const quit = async (code: number, stopJupyter = false) => {
		if (quitting) return;
		quitting = true;
		prompts.cancelAll();
		const deadline = new Promise<void>((resolve) => {
			setTimeout(resolve, disposeDeadlineMs).unref();
		});
		await Promise.race([handle?.dispose({stopJupyter}).catch(() => {}), deadline]);
		finish(code);
	};

	const commands = sessionCommands({
		config,
		store,
		handle: () => handle,
		prompts,
		quit(stopJupyter) {
			void quit(0, stopJupyter);
		},
	});

	const offSignals = onQuitSignals(() => {
		void quit(0);
	});

	// The socket first: a second gpujup for this profile is refused before it starts anything
	// (no hop or forward events, no dashboard). Its handlers wait for the handle.
	let server: {dispose(): Promise<void> | void} | undefined;
	if (options.socket) {
		try {
			server = await serveSession(config, options.socket, store, () => handle ?? null);
		} catch (error) {
			offSignals();
			sayStartFailed(error, tui);
			return 1;
		}
	}

	let writer: ReturnType<typeof startJsonWriter> | undefined;
	let unsubscribeFailure: (() => void) | undefined;
	let ink: {unmount(): void} | undefined;
	let unsubscribeBell: (() => void) | undefined;
	if (tui) {
		// Ink and React only for the dashboard: `--no-tui` (systemd, scripts) starts faster without.
		const {drawDashboard, offLines} = await loadDashboard();
		if (offLines.length > 0) store.dispatch({type: 'log', lines: offLines});
		enterAlternateScreen();
		// A GPU sample, its processes, a hop's RTT and Jupyter's status come at their own times: one
		// frame a second draws them together (a key is still drawn at once).
		ink = drawDashboard({store, commands, frameMs: 1000});
		unsubscribeBell = ringOnNotifications(store);
	} else {
		writer = startJsonWriter(store, process.stdout, {
			// `gpujup --no-tui | head -1`: the reader left; end quietly with 0, as Unix tools do.
			onClosed() {
				void quit(0);
			},
		});
		// Under --no-tui nobody can answer a question: auth and host-key failures end the run.
		unsubscribeFailure = store.subscribe(() => {
			const failed = store.getSnapshot().hops.find((h) => h.state === 'failed');
			if (!failed || quitting) return;
			if (failed.error)
				process.stderr.write(`gpujup: ${failed.hop}: ${sanitizeLine(failed.error.message)}\n`);
			void quit(options.failedExitCode ?? 1);
		});
	}

	try {
		handle = await options.start(asker, (early) => {
			handle = early;
		});
	} catch (error) {
		process.exitCode = 1;
		await quit(1);
		await server?.dispose();
		ink?.unmount();
		restoreTerminal();
		writer?.write({type: 'error', kind: 'closed', message: errorMessage(error)});
		process.stderr.write(`gpujup: ${errorMessage(error)}\n`);
		return 1;
	}

	const code = await done;
	unsubscribeFailure?.();
	unsubscribeBell?.();
	await server?.dispose();
	ink?.unmount();
	restoreTerminal();
	writer?.dispose();
	// Said where it outlives the dashboard: what the user must still do (a job left running).
	for (const line of handle?.farewell?.() ?? [])
		process.stderr.write(`gpujup: ${sanitizeLine(line)}\n`);
	offSignals();
	return code;
}
