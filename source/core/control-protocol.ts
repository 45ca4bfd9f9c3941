/**
 * The control socket's protocol: versioned JSON lines. A request names an operation; the reply
 * carries its id; `subscribe` is followed by event lines (the `--no-tui` JSON contract, with `at`).
 *
 *   → {"v":1,"id":1,"op":"status"}
 *   ← {"v":1,"id":1,"ok":true,"result":{…}}   or   {"v":1,"id":1,"ok":false,"error":"…"}
 *   ← {"v":1,"event":{"type":"hop",…,"at":"…"}}   (after subscribe)
 */
import {decodeEvent} from './control-decode.js';
import type {JsonEvent, KernelObject, StatusObject} from './events.js';
import {sanitizeLine} from './sanitize.js';
import {kernelActions, type KernelAction} from './kernels.js';

export const protocolVersion = 1;

export const controlOps = [
	'status',
	'subscribe',
	'restart-jupyter',
	'stop-jupyter',
	'reconnect',
	'token',
	'kernels',
	'kernel-action',
] as const;
/** What a client may ask. */
export type ControlOp = (typeof controlOps)[number];

/**
 * Where a re-subscribing client's log stands: the agent replays only the lines after `seq`, and
 * the notifications after `notifySeq` (those it missed while away: a tunnel back, a cell done).
 */
export type LogResume = {
	readonly instance: string;
	readonly seq: number;
	readonly notifySeq?: number;
};
/** `kernel-action`'s arguments: which kernel, and what to do to it. */
export type KernelActionArgs = {readonly kernel: string; readonly action: KernelAction};

/** Each op's arguments, besides `v`, `id` and `op`. */
export type ControlArgs = {
	readonly [Op in ControlOp]: Op extends 'kernel-action'
		? KernelActionArgs
		: Op extends 'subscribe'
			? /** Optional: older clients omit it and get the whole replay. */
				{readonly logAfter?: LogResume}
			: Record<never, never>;
};

/** One request: its op with that op's arguments. */
export type ControlRequest = {
	readonly [Op in ControlOp]: {
		readonly v: number;
		readonly id: number;
		readonly op: Op;
	} & ControlArgs[Op];
}[ControlOp];

/**
 * `subscribe`'s result: who serves (a new value after a restart), its log's line count and its
 * notifications' count.
 */
export type ControlSubscribed = {
	readonly instance: string;
	readonly logSeq: number;
	readonly notifySeq: number;
};

/** `kernel-action`'s result: what was done, in words for the notice. */
export type ControlKernelActionResult = {readonly message: string};

/** `stop-jupyter`'s result: the pid that was stopped, if one ran. */
export type ControlStopped = {readonly pid: number | null};

/** `kernels`' result: the kernels, and the GPUs (index and uuid) their memory is on. */
export type ControlKernels = {
	readonly kernels: readonly KernelObject[];
	readonly gpus: ReadonlyArray<{readonly index: number; readonly uuid: string}>;
};

export type ControlReply =
	| {readonly v: number; readonly id: number | null; readonly ok: true; readonly result: unknown}
	| {readonly v: number; readonly id: number | null; readonly ok: false; readonly error: string};

export type ControlEventLine = {readonly v: number; readonly event: JsonEvent};

/** `status`'s result: the `status --json` object plus who answers. */
export type ControlStatus = StatusObject & {
	readonly pid: number;
	readonly role: string;
	readonly profile: string;
};

/** `token`'s result: the only way the token leaves `gpujup host`. */
export type ControlToken = {readonly token: string; readonly port: number};

/** What each op's reply carries, as the server sends it (control-decode.ts reads it back). */
export type ControlResults = {
	readonly status: ControlStatus;
	readonly subscribe: ControlSubscribed;
	readonly 'restart-jupyter': null;
	readonly 'stop-jupyter': ControlStopped;
	readonly reconnect: null;
	readonly token: ControlToken;
	readonly kernels: ControlKernels;
	readonly 'kernel-action': ControlKernelActionResult;
};

/** Longest line either side accepts; a longer one is an error, not a memory leak. */
export const maxLineBytes = 1024 * 1024;

const isRecord = (value: unknown): value is Record<string, unknown> =>
	typeof value === 'object' && value !== null && !Array.isArray(value);

const isOneOf = <T extends string>(values: readonly T[], value: unknown): value is T =>
	typeof value === 'string' && (values as readonly string[]).includes(value);

/** One request line → the request, or the error reply to send back. */
export function parseRequest(
	line: string,
):
	| {readonly ok: true; readonly request: ControlRequest}
	| {readonly ok: false; readonly reply: ControlReply} {
	const fail = (id: number | null, error: string) => ({
		ok: false as const,
		reply: {v: protocolVersion, id, ok: false as const, error},
	});
	let parsed: unknown;
	try {
		parsed = JSON.parse(line);
	} catch {
		return fail(null, 'not a JSON line');
	}

	if (!isRecord(parsed)) return fail(null, 'a request is a JSON object');
	const id =
		typeof parsed['id'] === 'number' && Number.isInteger(parsed['id']) ? parsed['id'] : null;
	if (parsed['v'] !== protocolVersion)
		return fail(
			id,
			`unsupported protocol version ${JSON.stringify(parsed['v'] ?? null)}; this gpujup speaks v${protocolVersion}`,
		);
	if (id === null) return fail(null, 'a request needs an integer "id"');
	const op = parsed['op'];
	if (!isOneOf(controlOps, op))
		return fail(id, `unknown op ${JSON.stringify(op ?? null)}; known: ${controlOps.join(', ')}`);
	if (op === 'kernel-action') {
		const kernel = parsed['kernel'];
		const action = parsed['action'];
		if (typeof kernel !== 'string' || !/^[\w-]{1,64}$/.test(kernel))
			return fail(id, 'kernel-action needs "kernel": a kernel id');
		if (!isOneOf(kernelActions, action))
			return fail(id, `kernel-action needs "action": one of ${kernelActions.join(', ')}`);
		return {ok: true, request: {v: protocolVersion, id, op, kernel, action}};
	}

	if (op === 'subscribe') {
		const logAfter = parsed['logAfter'];
		const seq = isRecord(logAfter) ? logAfter['seq'] : undefined;
		const notifySeq = isRecord(logAfter) ? logAfter['notifySeq'] : undefined;
		const resume =
			isRecord(logAfter) &&
			typeof logAfter['instance'] === 'string' &&
			typeof seq === 'number' &&
			Number.isInteger(seq)
				? {
						instance: logAfter['instance'],
						seq,
						...(typeof notifySeq === 'number' && Number.isInteger(notifySeq) ? {notifySeq} : {}),
					}
				: null;
		return {ok: true, request: {v: protocolVersion, id, op, ...(resume ? {logAfter: resume} : {})}};
	}

	return {ok: true, request: {v: protocolVersion, id, op}};
}

/**
 * One line from the server, as a client reads it: a reply, a decoded event, a line to drop (not
 * JSON, or an event or reply of another shape: the connection goes on, with a note), or a line
 * that ends the conversation (another protocol version).
 */
export type ServerLine =
	| {readonly kind: 'reply'; readonly reply: ControlReply}
	| {readonly kind: 'event'; readonly event: JsonEvent}
	| {readonly kind: 'dropped'; readonly message: string}
	| {readonly kind: 'invalid'; readonly message: string};

export function parseServerLine(line: string): ServerLine {
	let parsed: unknown;
	try {
		parsed = JSON.parse(line);
	} catch {
		return {kind: 'dropped', message: 'a line that is not JSON'};
	}

	if (!isRecord(parsed)) return {kind: 'dropped', message: 'a line that is not a JSON object'};
	if (parsed['v'] !== protocolVersion)
		return {
			kind: 'invalid',
			message: `the other side speaks protocol version ${sanitizeLine(JSON.stringify(parsed['v'] ?? null).slice(0, 20))}, this gpujup v${protocolVersion}`,
		};
	if ('event' in parsed) {
		const decoded = decodeEvent(parsed['event']);
		return decoded.ok
			? {kind: 'event', event: decoded.value}
			: {kind: 'dropped', message: decoded.message};
	}

	const id = typeof parsed['id'] === 'number' ? parsed['id'] : null;
	if (parsed['ok'] === true)
		return {
			kind: 'reply',
			reply: {v: protocolVersion, id, ok: true, result: parsed['result'] ?? null},
		};
	if (parsed['ok'] === false)
		return {
			kind: 'reply',
			reply: {
				v: protocolVersion,
				id,
				ok: false,
				error:
					typeof parsed['error'] === 'string' ? sanitizeLine(parsed['error']) : 'unknown error',
			},
		};
	return {kind: 'dropped', message: 'a line that is neither a reply nor an event'};
}

/** Serialise one message as a line. */
export function encodeLine(message: ControlRequest | ControlReply | ControlEventLine): string {
	return `${JSON.stringify(message)}\n`;
}

/**
 * Splits a byte stream's text into lines, keeping the unfinished tail. Returns null when the tail
 * grows past {@link maxLineBytes}.
 */
export function splitLines(buffer: string, chunk: string): {lines: string[]; rest: string} | null {
	const pieces = (buffer + chunk).split('\n');
	const rest = pieces.pop() ?? '';
	if (rest.length > maxLineBytes) return null;
	return {lines: pieces.map((p) => p.replace(/\r$/, '')).filter((p) => p.length > 0), rest};
}
