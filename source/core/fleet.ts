/**
 * The fleet view's decisions, pure: one row per GPU host from that host's store, the fleet
 * view's keys (a mode table like core/keymap.ts's, read by the input hook, the footer and the
 * `?` help alike), and one store that changes when any host's does.
 */
import type {AppState} from './app-state.js';
import type {FooterItem, KeyChord, ModeTable} from './keymap.js';
import type {HopState, JupyterState} from './types.js';
import type {Store} from './store.js';

/** What the fleet view shows of one host. */
export type FleetRow = {
	readonly name: string;
	/** The GPU host's own name once `hostname` answered, else null. */
	readonly title: string | null;
	/** Every hop of its chain, the relay first: the name shown and its state. */
	readonly hops: ReadonlyArray<{readonly name: string; readonly state: HopState}>;
	/** Every hop ready. */
	readonly up: boolean;
	readonly gpus: number;
	/** Mean utilisation of the GPUs that report one (MIG and `[N/A]` do not), or null. */
	readonly utilization: number | null;
	/** Memory used and total, summed over the GPUs that report it; null when none does. */
	readonly memoryUsedMiB: number | null;
	readonly memoryTotalMiB: number | null;
	/** The GPU stream's error (no driver, a hung nvidia-smi), in words, or null. */
	readonly gpuError: string | null;
	readonly jupyter: JupyterState | null;
	/** Kernels alive (not dead), and how many of them are busy. */
	readonly kernels: number;
	readonly busy: number;
	/** A question (host key, passphrase) waits in this host's dashboard. */
	readonly asking: boolean;
};

const sum = (values: ReadonlyArray<number | null>): number | null => {
	const known = values.filter((value): value is number => value !== null && Number.isFinite(value));
	return known.length === 0 ? null : known.reduce((total, value) => total + value, 0);
};

/** One host's row from its store's state. */
export function fleetRow(name: string, state: AppState): FleetRow {
	const gpus = state.gpu?.gpus ?? [];
	const utilizations = gpus
		.map((gpu) => (gpu.mig ? null : gpu.utilizationGpu))
		.filter((value): value is number => value !== null);
	const alive = state.kernels.filter((kernel) => kernel.state !== 'dead');
	return {
		name,
		title: state.title || null,
		hops: state.hops.map((hop) => ({name: hop.name, state: hop.state})),
		up: state.hops.length > 0 && state.hops.every((hop) => hop.state === 'ready'),
		gpus: gpus.length,
		utilization:
			utilizations.length === 0
				? null
				: Math.round(utilizations.reduce((a, b) => a + b, 0) / utilizations.length),
		memoryUsedMiB: sum(gpus.map((gpu) => gpu.memoryUsedMiB)),
		memoryTotalMiB: sum(gpus.map((gpu) => gpu.memoryTotalMiB)),
		gpuError: state.gpu?.error?.message ?? null,
		jupyter: state.jupyter?.state ?? null,
		kernels: alive.length,
		busy: alive.filter((kernel) => kernel.state === 'busy').length,
		asking: state.prompt !== null,
	};
}

/** `2 of 3 hosts up`, for the fleet view's header. */
export function fleetSummary(rows: readonly FleetRow[]): string {
	const up = rows.filter((row) => row.up).length;
	const noun = rows.length === 1 ? 'host' : 'hosts';
	return up === rows.length
		? `all ${rows.length} ${noun} up`
		: `${up} of ${rows.length} ${noun} up`;
}

export type FleetAction =
	'up' | 'down' | 'open' | 'reconnect' | 'copy-url' | 'open-browser' | 'help' | 'quit';

const ctrlC: KeyChord = {input: 'c', ctrl: true};

/** The fleet view's keys: ↑/↓ pick a host, Enter opens its dashboard, c/o act on it. */
export const fleetKeys: ModeTable<FleetAction> = {
	bindings: [
		{action: 'quit', chords: [ctrlC, {input: 'q'}], keys: 'q', label: 'quit'},
		{action: 'up', chords: [{key: 'upArrow'}, {input: 'k'}], keys: '↑↓', label: 'select'},
		{action: 'down', chords: [{key: 'downArrow'}, {input: 'j'}], keys: '↓', label: null},
		{action: 'open', chords: [{key: 'return'}], keys: 'enter', label: 'open'},
		{action: 'reconnect', chords: [{input: 'r', ctrl: false}], keys: 'r', label: null},
		{action: 'copy-url', chords: [{input: 'c', ctrl: false}], keys: 'c', label: 'copy url'},
		{action: 'open-browser', chords: [{input: 'o', ctrl: false}], keys: 'o', label: 'browser'},
		{action: 'help', chords: [{input: '?'}], keys: '?', label: 'help'},
	],
};

/** The `?` help of the fleet view: each key and what it does. */
export const fleetHelp: ReadonlyArray<{readonly keys: string; readonly description: string}> = [
	{keys: '↑ ↓', description: 'select a GPU host (k and j too)'},
	{keys: 'enter', description: "open the selected host's dashboard (esc comes back here)"},
	{keys: 'r', description: "reconnect the selected host's hops that are down, now"},
	{keys: 'c', description: "copy the selected host's Jupyter URL with its token (OSC 52)"},
	{keys: 'o', description: "open the selected host's Jupyter in the browser"},
	{keys: '?', description: 'this help (? or esc closes it)'},
	{keys: 'q', description: 'quit: every host, and the shared relay connection'},
];

/** The fleet view's footer: its labelled keys, with `q quit` last. */
export function fleetFooterItems(): FooterItem[] {
	const items = fleetKeys.bindings.flatMap((b) =>
		b.label === null ? [] : [{keys: b.keys, label: b.label}],
	);
	return [...items.slice(1), items[0]!];
}

/** The selected row after a move, kept within the rows. */
export function moveSelection(selected: number, delta: number, count: number): number {
	if (count === 0) return 0;
	return Math.min(count - 1, Math.max(0, selected + delta));
}

/**
 * One store over every host's: its snapshot (the hosts' states, in order) is a new array only
 * when one of them changed, as useSyncExternalStore needs.
 */
export function combineStores<S, A>(
	stores: ReadonlyArray<Store<S, A>>,
): Store<readonly S[], never> {
	let last: readonly S[] = stores.map((store) => store.getSnapshot());
	const getSnapshot = () => {
		const next = stores.map((store) => store.getSnapshot());
		if (next.some((state, index) => state !== last[index])) last = next;
		return last;
	};

	return {
		getSnapshot,
		dispatch() {
			// Nothing is dispatched to the fleet: each host's actions go to its own store.
		},
		subscribe(listener) {
			const offs = stores.map((store) => store.subscribe(listener));
			return () => {
				for (const off of offs) off();
			};
		},
	};
}
