/**
 * Busy and idle as the kernel itself says it, from its IOPub `status` messages, tied to the
 * requests that caused them. Jupyter's REST `execution_state` takes every status message, and a
 * request on the control channel (jupyter_server's websocket nudge, JupyterLab's debugger, a
 * client's `kernel_info_request`) makes ipykernel publish busy → idle while a cell still runs on
 * the shell (jupyter_client#838): REST then says idle mid-cell. Only an `execute_request`'s status
 * starts or ends a cell here. Pure: the kernel monitor's websockets feed it.
 */
import type {KernelState, RestKernel} from './kernels.js';

/** What the kernel monitor's own websocket on one kernel has seen. */
export type ChannelView = {
	/** The websocket is open (Jupyter counts it in `connections`). */
	readonly open: boolean;
	/**
	 * The kernel process of now has answered on it (a busy or idle status): its word beats REST's
	 * `starting`, which Jupyter can keep long after (its own IOPub watcher slow or late).
	 */
	readonly live: boolean;
	/**
	 * The monitor's own `kernel_info_request` on the shell, not yet answered: the shell answers it
	 * only after the cell it runs, so a kernel that does not answer at once is running one the
	 * monitor did not see start.
	 */
	readonly probeId: string | null;
	readonly probeSentAt: number | null;
	/** The `execute_request`s the kernel said busy for and not yet idle. */
	readonly executing: readonly string[];
	/** When `executing` last became non-empty. */
	readonly busySince: number | null;
	/** When the kernel was last seen done with its shell; null where that is not known. */
	readonly idleSince: number | null;
	/**
	 * The probe came back late with no cell ending before it: the kernel was idle all along (a
	 * slow machine), and the busy shown while it waited was no cell.
	 */
	readonly idleAllAlong: boolean;
};

export const closedChannel: ChannelView = {
	open: false,
	live: false,
	probeId: null,
	probeSentAt: null,
	executing: [],
	busySince: null,
	idleSince: null,
	idleAllAlong: false,
};

/** The websocket opened and the probe `probeId` went out on its shell. */
export function channelOpened(probeId: string, now: number): ChannelView {
	return {...closedChannel, open: true, probeId, probeSentAt: now};
}

/** The parts of one Jupyter message (websocket JSON) the view reads. */
export type ChannelMessage = {
	readonly channel: string | null;
	readonly msgType: string;
	readonly parentId: string | null;
	readonly parentType: string | null;
	readonly executionState: string | null;
};

function record(value: unknown): Record<string, unknown> {
	return typeof value === 'object' && value !== null && !Array.isArray(value)
		? (value as Record<string, unknown>)
		: {};
}

const str = (value: unknown): string | null => (typeof value === 'string' ? value : null);

/**
 * One websocket text frame, or null for one the view has no use for (most: outputs). Cheap for
 * those: a frame that cannot be a status or the probe's reply is not parsed.
 */
export function parseChannelMessage(text: string): ChannelMessage | null {
	if (!text.includes('"status"') && !text.includes('"kernel_info_reply"')) return null;
	let message: Record<string, unknown>;
	try {
		message = record(JSON.parse(text));
	} catch {
		return null;
	}

	const msgType = str(record(message['header'])['msg_type']);
	if (msgType !== 'status' && msgType !== 'kernel_info_reply') return null;
	const parent = record(message['parent_header']);
	return {
		channel: str(message['channel']),
		msgType,
		parentId: str(parent['msg_id']),
		parentType: str(parent['msg_type']),
		executionState: str(record(message['content'])['execution_state']),
	};
}

/** How long the probe may take on an idle kernel before its shell counts as running a cell. */
export const probeWaitMs = 1000;

/** The view after `message`, seen at `now`. */
export function channelMessage(
	view: ChannelView,
	message: ChannelMessage,
	now: number,
): ChannelView {
	if (!view.open) return view;
	const answersProbe =
		view.probeId !== null &&
		message.parentId === view.probeId &&
		(message.msgType === 'kernel_info_reply' || message.executionState === 'idle');
	if (answersProbe) {
		const late = now - (view.probeSentAt ?? now) >= probeWaitMs;
		return {
			...view,
			live: true,
			probeId: null,
			probeSentAt: null,
			idleAllAlong: late && view.idleSince === null && view.executing.length === 0,
		};
	}

	if (message.msgType !== 'status') return view;
	const state = message.executionState;
	if (!view.live && (state === 'busy' || state === 'idle'))
		return channelMessage({...view, live: true}, message, now);
	if (message.parentType === 'execute_request' && message.parentId !== null) {
		const id = message.parentId;
		if (state === 'busy' && !view.executing.includes(id))
			return {
				...view,
				executing: [...view.executing, id],
				busySince: view.busySince ?? now,
				idleAllAlong: false,
			};
		if (state !== 'idle') return view;
		// One the monitor saw start, or the cell that ran when it connected (it did not see that
		// start): either way a cell ended now.
		const executing = view.executing.filter((e) => e !== id);
		return executing.length > 0
			? {...view, executing}
			: {...view, executing, busySince: null, idleSince: now, idleAllAlong: false};
	}

	// A new kernel process (`starting`), or the server saying its kernel restarts or died: what
	// ran is gone, and so is the probe the old process was asked.
	if (
		state === 'starting' ||
		state === 'restarting' ||
		state === 'autorestarting' ||
		state === 'dead'
	)
		return {...closedChannel, open: true};
	// Busy → idle for any other request (kernel_info on control, comm, debug): not a cell.
	return view;
}

/**
 * What the channel says of a kernel's state: one it knows (`since` null where it does not know
 * when that began: the caller goes by `last_activity`); idle with `since: 'before'` when the busy
 * shown before was only the probe's wait on a slow, idle kernel (idle since the time shown, no
 * cell ended); or `'before'` while the probe is out and not yet late: nothing known, show what was
 * shown (REST's on a first look: Jupyter's nudge of this very websocket can make REST say busy).
 */
export type ChannelVerdict =
	| {readonly state: KernelState; readonly since: number | null | 'before'}
	| {readonly state: 'before'};

/**
 * The state to show for `rest` given the channel's view: REST's own while the channel is not
 * open, for `dead`, and for `starting` until the kernel answered on the channel; else busy while
 * an execute runs (or the probe is unanswered past {@link probeWaitMs}), idle otherwise.
 */
export function channelState(rest: RestKernel, view: ChannelView, now: number): ChannelVerdict {
	if (!view.open || rest.state === 'dead' || (rest.state === 'starting' && !view.live))
		return {state: rest.state, since: null};
	if (view.executing.length > 0) return {state: 'busy', since: view.busySince};
	if (view.probeId !== null)
		return now - (view.probeSentAt ?? now) >= probeWaitMs
			? {state: 'busy', since: null}
			: {state: 'before'};
	return {state: 'idle', since: view.idleAllAlong ? 'before' : view.idleSince};
}
