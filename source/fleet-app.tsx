import {Box, useInput} from 'ink';
import {useCallback, useMemo, useRef, useState, useSyncExternalStore} from 'react';
import {App} from './app.js';
import {Line} from './components/line.js';
import {FleetView} from './components/fleet-view.js';
import {urgentChange, type AppAction, type AppState} from './core/app-state.js';
import {combineStores, fleetKeys, fleetRow, moveSelection} from './core/fleet.js';
import {helpKeys, modeAction} from './core/keymap.js';
import {visibleNotice} from './core/notice.js';
import {createStore, type Store} from './core/store.js';
import {initialView, viewReducer, type ViewState} from './core/view-state.js';
import type {Commands} from './core/view-commands.js';
import {useClock} from './hooks/use-clock.js';
import {useFrameStore} from './hooks/use-frame-store.js';
import {useTerminalSize} from './hooks/use-terminal-size.js';
import {makeTheme, ThemeContext} from './theme.js';

/** One GPU host of the fleet, as the view sees it: its name, its store, its dashboard's commands. */
export type FleetAppHost = {
	readonly name: string;
	readonly store: Store<AppState, AppAction>;
	readonly commands: Commands;
};

export type FleetAppProps = {
	readonly hosts: readonly FleetAppHost[];
	/** `q` in the fleet view: the shell disposes every host and exits. */
	readonly quit: () => void;
	readonly now?: () => number;
	readonly color?: boolean;
	readonly columns?: number;
	readonly rows?: number;
	/** As the dashboard's App: background changes drawn at most this often (0: at once). */
	readonly frameMs?: number;
};

const anyUrgent = (shown: readonly AppState[], next: readonly AppState[]) =>
	next.some((state, index) => shown[index] !== undefined && urgentChange(shown[index], state));

/** The host dashboard's own use of Esc: an overlay, a prompt, the log filter (typed or kept). */
const escIsTheDashboards = (state: AppState, view: ViewState) =>
	view.overlay !== null || state.prompt !== null || view.filterEditing || view.logFilter !== '';

/**
 * The root of a fleet: the fleet view (a row per host; ↑/↓, Enter, c, o, ?, q), or one host's
 * full dashboard (the single-host App on that host's store and commands) under a line saying
 * how to come back; Esc there, when the dashboard has no use for it, returns to the fleet.
 */
export function FleetApp({
	hosts,
	quit,
	now = Date.now,
	color,
	columns,
	rows,
	frameMs = 0,
}: FleetAppProps) {
	const combined = useMemo(() => combineStores(hosts.map((host) => host.store)), [hosts]);
	// With frames, the gate's beat is the clock (one frame a second), as in the dashboard.
	const {state: states} = useFrameStore(combined, frameMs, anyUrgent, {beat: true});
	const time = useClock(now, frameMs > 0 ? 0 : 1000);
	const size = useTerminalSize();
	const width = columns ?? size.columns;
	const height = Math.max(1, (rows ?? size.rows) - 1);
	const useColor = color ?? !process.env['NO_COLOR'];
	const [selected, setSelectedState] = useState(0);
	// Keys can come faster than renders: the handler reads the selection from here.
	const selectedRef = useRef(0);
	const setSelected = useCallback((update: (current: number) => number) => {
		selectedRef.current = update(selectedRef.current);
		setSelectedState(selectedRef.current);
	}, []);
	const [open, setOpen] = useState<number | null>(null);
	const [help, setHelp] = useState(false);
	const quitting = useRef(false);
	// Each host's dashboard keeps its view (focus, scroll, filter) while the fleet view is shown.
	const [views] = useState(() => hosts.map(() => createStore(viewReducer, initialView)));

	const leave = useCallback(() => {
		if (quitting.current) return;
		quitting.current = true;
		quit();
	}, [quit]);

	useInput(
		(input, key) => {
			if (help) {
				const action = modeAction(helpKeys, input, key);
				if (action === 'quit') leave();
				else if (action === 'close') setHelp(false);
				return;
			}

			const host = hosts[selectedRef.current];
			switch (modeAction(fleetKeys, input, key)) {
				case 'up': {
					setSelected((current) => moveSelection(current, -1, hosts.length));
					break;
				}

				case 'down': {
					setSelected((current) => moveSelection(current, 1, hosts.length));
					break;
				}

				case 'open': {
					if (host) setOpen(selectedRef.current);
					break;
				}

				case 'reconnect': {
					host?.commands.reconnect();
					break;
				}

				case 'copy-url': {
					host?.commands.copyUrl();
					break;
				}

				case 'open-browser': {
					host?.commands.openBrowser();
					break;
				}

				case 'help': {
					setHelp(true);
					break;
				}

				case 'quit': {
					leave();
					break;
				}

				case null: {
					break;
				}
			}
		},
		{isActive: open === null},
	);

	const openHost = open === null ? undefined : hosts[open];
	const openView = open === null ? undefined : views[open];
	// The open host's state and view as last drawn: a key's handler in the dashboard has already
	// run when this one does, so the mode it was pressed in is the one on screen.
	const subscribeOpen = useCallback(
		(listener: () => void) => {
			const offs = [openHost?.store.subscribe(listener), openView?.subscribe(listener)];
			return () => {
				for (const off of offs) off?.();
			};
		},
		[openHost, openView],
	);
	const openState = useSyncExternalStore(
		subscribeOpen,
		() => openHost?.store.getSnapshot() ?? null,
	);
	const openViewState = useSyncExternalStore(subscribeOpen, () => openView?.getSnapshot() ?? null);
	const shownMode = useRef<{state: AppState; view: ViewState} | null>(null);
	shownMode.current = openState && openViewState ? {state: openState, view: openViewState} : null;
	useInput(
		(_input, key) => {
			if (!key.escape) return;
			const shown = shownMode.current;
			if (shown && escIsTheDashboards(shown.state, shown.view)) return;
			setOpen(null);
		},
		{isActive: open !== null},
	);

	if (openHost) {
		const theme = makeTheme(useColor);
		return (
			<Box flexDirection="column">
				<ThemeContext.Provider value={theme}>
					<Line
						segments={[
							{text: ' esc', accent: true, bold: true},
							{text: ` back to the fleet (${hosts.length} GPU hosts) · `},
							{text: openHost.name, bold: true},
						]}
					/>
				</ThemeContext.Provider>
				<App
					store={openHost.store}
					view={openView}
					commands={openHost.commands}
					now={now}
					color={useColor}
					columns={width}
					rows={Math.max(1, (rows ?? size.rows) - 1)}
					frameMs={frameMs}
				/>
			</Box>
		);
	}

	const fleetRows = hosts.map((host, index) => fleetRow(host.name, states[index]!));
	const notices = hosts
		.map((host, index) => ({host: host.name, notice: visibleNotice(states[index]!.notice, time)}))
		.filter((entry): entry is {host: string; notice: NonNullable<typeof entry.notice>} =>
			Boolean(entry.notice),
		)
		.sort((a, b) => b.notice.at - a.notice.at);
	const vias = [...new Set(states.map((state) => state.subtitle).filter(Boolean))];
	return (
		<FleetView
			rows={fleetRows}
			selected={Math.min(selected, Math.max(0, hosts.length - 1))}
			via={vias.length === 1 ? vias[0]! : ''}
			columns={width}
			height={height}
			color={useColor}
			help={help}
			notice={notices[0] ?? null}
		/>
	);
}
