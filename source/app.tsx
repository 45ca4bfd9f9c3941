import {useState, useSyncExternalStore} from 'react';
import {urgentChange, type AppAction, type AppState} from './core/app-state.js';
import {createStore, type Store} from './core/store.js';
import {initialView, viewReducer, type ViewAction, type ViewState} from './core/view-state.js';
import type {Commands} from './core/view-commands.js';
import {Dashboard} from './components/dashboard.js';
import {useClock} from './hooks/use-clock.js';
import {useKeys} from './hooks/use-keys.js';
import {useFrameStore} from './hooks/use-frame-store.js';
import {useTerminalSize} from './hooks/use-terminal-size.js';

/** The side effects the dashboard asks for (core/view-commands.ts); the shell runs them. */
export type {Commands} from './core/view-commands.js';

export type AppProps = {
	readonly store: Store<AppState, AppAction>;
	readonly commands: Commands;
	/**
	 * The view's own state (overlay, focus, scroll, filter, selection); default: a store of the
	 * App's own, made once. Tests pass one to look at it.
	 */
	readonly view?: Store<ViewState, ViewAction>;
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

/**
 * The root: renders the store; its keys are the mode tables' (hooks/use-keys.ts), turned into UI
 * actions (dispatched) and commands (called).
 */
export function App({
	store,
	commands,
	view: viewStore,
	now = Date.now,
	color,
	columns,
	rows,
	frameMs = 0,
}: AppProps) {
	// With frames, the gate's beat is the clock: one timer, one frame a second.
	const {state} = useFrameStore(store, frameMs, urgentChange, {beat: true});
	const [ownView] = useState(() => createStore(viewReducer, initialView));
	const viewState = viewStore ?? ownView;
	// What the user did is drawn at once: the view's store is never gated.
	const view = useSyncExternalStore(viewState.subscribe, viewState.getSnapshot);
	const time = useClock(now, frameMs > 0 ? 0 : 1000);
	const size = useTerminalSize();
	const width = columns ?? size.columns;
	// Ink clears the whole screen on every frame once output reaches the last row: keep it free.
	const height = Math.max(1, (rows ?? size.rows) - 1);
	const useColor = color ?? !process.env['NO_COLOR'];
	const {draft, promptAgain} = useKeys({store, view: viewState, commands, width, height, now});
	return (
		<Dashboard
			state={state}
			view={view}
			now={time}
			columns={width}
			rows={height}
			color={useColor}
			draft={draft}
			promptAgain={promptAgain}
		/>
	);
}
