import type {AppState} from '../core/app-state.js';
import {initialView, type ViewState} from '../core/view-state.js';
import type {GpuStatus} from '../core/types.js';
import {downHop, pathLines} from './path-pane.js';
import {promptHeight} from './prompt-view.js';

/** Panes in Tab order; the view's `focus` indexes this. Notebooks is last: it is there only with kernels. */
export const panes = ['path', 'gpu', 'jupyter', 'log', 'notebooks'] as const;
export type PaneId = (typeof panes)[number];

/** The panes Tab cycles through now. */
export function focusablePanes(state: AppState): readonly PaneId[] {
	return state.kernels.length > 0 ? panes : panes.slice(0, -1);
}

/** The pane that has the focus. */
export function focusedPane(state: AppState, view: ViewState): PaneId {
	const list = focusablePanes(state);
	return list[view.focus % list.length]!;
}

/** Below this the dashboard collapses to one line per pane (the 80×24 sketch). */
export const wideMinColumns = 120;
export const wideMinRows = 30;

export type Layout = {
	readonly compact: boolean;
	readonly columns: number;
	readonly rows: number;
	/** Rows of each region; 0 hides it. They add up to at most `rows`. */
	readonly header: number;
	readonly path: number;
	/** The GPU and Jupyter row (wide), or the GPU lines (compact). */
	readonly gpu: number;
	readonly jupyter: number;
	readonly log: number;
	/** Prompt box (0 without a prompt). */
	readonly prompt: number;
	/** The footer line, or the y/N question in its place. */
	readonly footer: number;
	/** Help overlay: the rows between header and footer. */
	readonly help: number;
	readonly jupyterWidth: number;
	readonly gpuWidth: number;
	/**
	 * Notebooks pane rows: wide, beside the GPUs under a one-line Jupyter pane (`jupyter` is then
	 * 1 and the pane `notebooksWidth` wide); compact, one line a kernel under the GPU lines.
	 */
	readonly notebooks: number;
	readonly notebooksWidth: number;
	/** Log lines visible at once: a page for PgUp/PgDn. */
	readonly logLines: number;
};

/** What the GPU pane would like in the wide layout (nvitop-like: 3 rows a GPU, then processes). */
export function gpuWantedRows(gpu: GpuStatus | null): number {
	if (!gpu || gpu.gpus.length === 0) return 3;
	const processes = gpu.processes.length > 0 ? 1 + Math.min(gpu.processes.length, 8) : 0;
	return 2 + 3 * gpu.gpus.length + processes;
}

const clamp = (value: number, min: number, max: number) => Math.max(min, Math.min(max, value));

/** Sizes every region for a terminal; never more rows than it has. */
export function computeLayout(
	state: AppState,
	columns: number,
	rows: number,
	view: ViewState = initialView,
): Layout {
	const compact = columns < wideMinColumns || rows < wideMinRows;
	const header = rows > 0 ? 1 : 0;
	const footer = rows > 1 ? 1 : 0;
	let left = rows - header - footer;
	const prompt = state.prompt
		? Math.min(Math.max(0, left), promptHeight(state.prompt, compact))
		: 0;
	left -= prompt;
	const help = view.overlay === 'help' && !state.prompt ? Math.max(0, left) : 0;
	const kernels = state.kernels.length;
	// With kernels the right column holds the Notebooks table: about half the width.
	const jupyterWidth = compact
		? columns
		: kernels > 0
			? clamp(Math.round(columns * 0.5), 56, 100)
			: clamp(Math.round(columns * 0.28), 42, 56);
	const base = {
		compact,
		columns,
		rows,
		header,
		footer,
		prompt,
		help,
		jupyterWidth,
		notebooksWidth: compact ? columns : kernels > 0 ? jupyterWidth : 0,
	};
	const gpuWidth = compact ? columns : columns - jupyterWidth;
	if (help > 0) {
		return {...base, path: 0, gpu: 0, jupyter: 0, log: 0, notebooks: 0, gpuWidth, logLines: 0};
	}

	if (compact) {
		const take = (want: number) => {
			const got = clamp(want, 0, left);
			left -= got;
			return got;
		};

		const path = take((downHop(state.hops) ? 2 : 1) + (state.job ? 1 : 0));
		const jupyter = take(1);
		// The log keeps a rule and two lines before the GPUs get more than one line each.
		const gpuCount = Math.max(1, state.gpu?.gpus.length ?? 0);
		const gpu = take(Math.min(gpuCount, Math.max(1, left - 3)));
		// A line a kernel, as long as the log keeps its rule and two lines.
		const notebooks = take(Math.min(kernels, Math.max(0, left - 3)));
		const log = take(left);
		return {
			...base,
			path,
			gpu,
			jupyter,
			log,
			notebooks,
			gpuWidth,
			logLines: Math.max(0, log - 1),
		};
	}

	const path = clamp(2 + pathLines(state), 0, left);
	left -= path;
	const logMin = 5;
	// The Notebooks pane: a Jupyter line, borders, its header row and a row a kernel.
	const notebooksWanted = kernels > 0 ? 4 + kernels : 0;
	const middle = clamp(
		Math.max(gpuWantedRows(state.gpu), 7, notebooksWanted),
		0,
		Math.max(0, left - logMin),
	);
	left -= middle;
	const log = Math.max(0, left);
	return {
		...base,
		path,
		gpu: middle,
		jupyter: kernels > 0 ? Math.min(1, middle) : middle,
		notebooks: kernels > 0 ? Math.max(0, middle - 1) : 0,
		log,
		gpuWidth,
		logLines: Math.max(0, log - 2),
	};
}
