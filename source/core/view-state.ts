/**
 * What only the dashboard knows: which overlay is open, which pane has the focus, how far the log
 * is scrolled, the log filter, the kernel ↑/↓ selected. It lives in the view (app.tsx keeps it in
 * a store of its own), never in the shared store the JSON writer, the control socket and
 * `status` read: a key press changes this, a service never does.
 */
import type {KernelStatus} from './kernels.js';

export type Overlay =
	| 'help'
	| 'confirm-restart'
	| 'confirm-quit'
	| 'confirm-kernel-restart'
	| 'confirm-kernel-shutdown'
	| null;

export type ViewState = {
	readonly overlay: Overlay;
	/** Indexes the panes Tab cycles through (components/layout.ts). */
	readonly focus: number;
	/**
	 * Lines scrolled up from the bottom of the log (0 = following) when the store's `logSeq` was
	 * `logMark`: lines that arrived since move the view up with them ({@link logScrollOf}).
	 */
	readonly logScroll: number;
	readonly logMark: number;
	readonly logFilter: string;
	readonly filterEditing: boolean;
	/** The kernel ↑/↓ selected in the Notebooks pane (by id: rows come and go); null = the first. */
	readonly kernelId: string | null;
};

export const initialView: ViewState = {
	overlay: null,
	focus: 0,
	logScroll: 0,
	logMark: 0,
	logFilter: '',
	filterEditing: false,
	kernelId: null,
};

export type ViewAction =
	| {readonly type: 'overlay'; readonly overlay: Overlay}
	| {readonly type: 'focus'; readonly delta: number; readonly panes: number}
	/**
	 * `max`: the most lines the log can be scrolled up (its lines less the shown ones); `logSeq`
	 * the store's now.
	 */
	| {
			readonly type: 'scroll';
			readonly delta: number;
			readonly max: number;
			readonly logSeq: number;
	  }
	| {readonly type: 'filter'; readonly filter: string; readonly editing: boolean}
	/** `kernels`: the rows listed now, in their order; delta 0 pins the shown selection. */
	| {
			readonly type: 'select-kernel';
			readonly delta: number;
			readonly kernels: readonly KernelStatus[];
	  };

export function viewReducer(view: ViewState, action: ViewAction): ViewState {
	switch (action.type) {
		case 'overlay': {
			return view.overlay === action.overlay ? view : {...view, overlay: action.overlay};
		}

		case 'focus': {
			const panes = Math.max(1, action.panes);
			const focus = (((view.focus + action.delta) % panes) + panes) % panes;
			return focus === view.focus ? view : {...view, focus};
		}

		case 'scroll': {
			const from = logScrollOf(view, action.logSeq, Number.POSITIVE_INFINITY);
			const logScroll = Math.max(0, Math.min(action.max, from + action.delta));
			return logScroll === view.logScroll && action.logSeq === view.logMark
				? view
				: {...view, logScroll, logMark: action.logSeq};
		}

		case 'filter': {
			return {...view, logFilter: action.filter, filterEditing: action.editing, logScroll: 0};
		}

		case 'select-kernel': {
			const {kernels} = action;
			if (kernels.length === 0) return view;
			const current = selectedKernelIndex(kernels, view);
			const index = Math.max(0, Math.min(kernels.length - 1, current + action.delta));
			const kernelId = kernels[index]!.id;
			return kernelId === view.kernelId ? view : {...view, kernelId};
		}
	}
}

/**
 * How far the log is scrolled up now: where the user left it, plus the lines that arrived since
 * (so the lines shown stay put), at most `lines` (all of them); 0 while following.
 */
export function logScrollOf(view: ViewState, logSeq: number, lines: number): number {
	if (view.logScroll === 0) return 0;
	return Math.min(view.logScroll + Math.max(0, logSeq - view.logMark), lines);
}

/** The row of the selected kernel: the one ↑/↓ chose while it is listed, else the first; -1 for none. */
export function selectedKernelIndex(kernels: readonly KernelStatus[], view: ViewState): number {
	if (kernels.length === 0) return -1;
	return Math.max(
		0,
		kernels.findIndex((k) => k.id === view.kernelId),
	);
}

/** The kernel `i`, `K` and `x` act on, or null. */
export function selectedKernel(
	kernels: readonly KernelStatus[],
	view: ViewState,
): KernelStatus | null {
	return kernels[selectedKernelIndex(kernels, view)] ?? null;
}
