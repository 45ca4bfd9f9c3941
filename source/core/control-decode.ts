/**
 * The control sockets' one gate for what the other side sends: agent events and the reply of
 * every op ({@link decodeReply}), decoded by small hand-written guards into the typed values the rest of
 * the code holds, with every string through {@link sanitizeLine}. Anything of another shape is
 * refused with a message naming the field, never thrown into the stream that carried it.
 */
import type {ControlOp, ControlStatus, ControlToken} from './control-protocol.js';
import {jsonErrorKinds, type JsonEvent, type KernelObject, type StatusObject} from './events.js';
import {kernelStates, notifyKinds} from './kernels.js';
import {sanitizeLine} from './sanitize.js';
import {errorKinds, hopStates, type GpuErrorKind, type JupyterState} from './types.js';

export type Decoded<T> =
	{readonly ok: true; readonly value: T} | {readonly ok: false; readonly message: string};

class DecodeError extends Error {}

type Guard<T> = (value: unknown, at: string) => T;

const fail = (at: string, expected: string, value: unknown): never => {
	const seen = value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value;
	throw new DecodeError(`${at} should be ${expected}, not ${seen}`);
};

const text: Guard<string> = (value, at) =>
	typeof value === 'string' ? sanitizeLine(value) : fail(at, 'a string', value);

const number: Guard<number> = (value, at) =>
	typeof value === 'number' && Number.isFinite(value) ? value : fail(at, 'a number', value);

const count: Guard<number> = (value, at) =>
	typeof value === 'number' && Number.isInteger(value) && value >= 0
		? value
		: fail(at, 'a whole number', value);

const boolean: Guard<boolean> = (value, at) =>
	typeof value === 'boolean' ? value : fail(at, 'true or false', value);

const nullable =
	<T>(guard: Guard<T>): Guard<T | null> =>
	(value, at) =>
		value === null || value === undefined ? null : guard(value, at);

const optional =
	<T>(guard: Guard<T>): Guard<T | undefined> =>
	(value, at) =>
		value === undefined ? undefined : guard(value, at);

const oneOf =
	<T extends string>(values: readonly T[]): Guard<T> =>
	(value, at) =>
		typeof value === 'string' && (values as readonly string[]).includes(value)
			? (value as T)
			: fail(at, `one of ${values.join(', ')}`, value);

const list =
	<T>(guard: Guard<T>): Guard<T[]> =>
	(value, at) =>
		Array.isArray(value)
			? value.map((item, i) => guard(item, `${at}[${i}]`))
			: fail(at, 'an array', value);

type Shape = Record<string, Guard<unknown>>;
type Of<S extends Shape> = {readonly [K in keyof S]: ReturnType<S[K]>};

/** The fields of `shape`, each decoded; other fields are left out. */
const object =
	<S extends Shape>(shape: S): Guard<Of<S>> =>
	(value, at) => {
		if (typeof value !== 'object' || value === null || Array.isArray(value))
			return fail(at, 'an object', value);
		const record = value as Record<string, unknown>;
		const result: Record<string, unknown> = {};
		for (const [key, guard] of Object.entries(shape))
			result[key] = guard(record[key], `${at}.${key}`);
		return result as Of<S>;
	};

const literal =
	<T extends string>(expected: T): Guard<T> =>
	(value, at) =>
		value === expected ? expected : fail(at, JSON.stringify(expected), value);

const jupyterStates = [
	'starting',
	'running',
	'exited',
	'restarting',
	'unreachable',
] as const satisfies readonly JupyterState[];
const gpuErrorKinds = ['no-driver', 'timeout', 'failed'] as const satisfies readonly GpuErrorKind[];

const hopFields = {
	type: literal('hop'),
	hop: oneOf(['relay', 'jump', 'host', 'reverse'] as const),
	state: oneOf(hopStates),
	attempt: count,
	reconnects: count,
	rttMs: nullable(number),
	error: nullable(object({kind: oneOf(errorKinds), message: text})),
};
const hopEvent = object({...hopFields, index: count, name: text});
// An agent from before chains sends neither `index` nor `name`.
const agentHopEvent = object({...hopFields, index: optional(count), name: optional(text)});

const forwardEvent = object({
	type: literal('forward'),
	local: text,
	remote: text,
	state: oneOf(['listening', 'closed'] as const),
	connections: count,
});

const jupyterEvent = object({
	type: literal('jupyter'),
	state: oneOf(jupyterStates),
	url: nullable(text),
	pid: nullable(count),
	kernels: nullable(count),
	message: nullable(text),
	servers: optional(list(object({port: count, pid: nullable(count), url: text}))),
});

const gpuEvent = object({
	type: literal('gpu'),
	gpus: list(
		object({
			index: count,
			uuid: text,
			name: text,
			mig: boolean,
			utilizationGpu: nullable(number),
			memoryUsedMiB: nullable(number),
			memoryTotalMiB: nullable(number),
			temperatureC: nullable(number),
			powerW: nullable(number),
			powerLimitW: nullable(number),
			fanPercent: nullable(number),
		}),
	),
	processes: list(
		object({
			gpuUuid: text,
			pid: count,
			user: nullable(text),
			command: text,
			usedMemoryMiB: nullable(number),
		}),
	),
	error: nullable(object({kind: oneOf(gpuErrorKinds), message: text})),
	foreignPids: optional(list(count)),
});

const kernelId: Guard<string> = (value, at) =>
	typeof value === 'string' && /^[\w-]{1,64}$/.test(value) ? value : fail(at, 'a kernel id', value);

/** `{"<gpu uuid>": MiB, …}`. */
const mibByGpu: Guard<Readonly<Record<string, number>>> = (value, at) => {
	if (typeof value !== 'object' || value === null || Array.isArray(value))
		return fail(at, 'an object', value);
	const result: Record<string, number> = {};
	for (const [uuid, mib] of Object.entries(value))
		result[sanitizeLine(uuid).slice(0, 96)] = number(mib, `${at}.${uuid.slice(0, 40)}`);
	return result;
};

const kernelFields = {
	id: kernelId,
	name: text,
	notebook: nullable(text),
	state: oneOf(kernelStates),
	since: text,
	lastActivity: nullable(text),
	connections: count,
	pids: list(count),
	gpuMemoryMiB: mibByGpu,
	cpuPercent: nullable(number),
	rssMiB: nullable(number),
};

const kernelObject: Guard<KernelObject> = object(kernelFields);
const kernelBody = object({type: literal('kernel'), ...kernelFields});
const kernelGone = object({type: literal('kernel'), id: kernelId, state: literal('gone')});

const jobFields = {
	id: (value: unknown, at: string) =>
		typeof value === 'string' && /^\d+(?:_\d+)?$/.test(value) ? value : fail(at, 'a job id', value),
	state: oneOf(['PENDING', 'RUNNING', 'COMPLETING', 'ENDED'] as const),
	reason: nullable(text),
	node: nullable(text),
	gpus: nullable(count),
	timeLeftS: nullable(count),
};

const bodies = {
	hop: agentHopEvent,
	forward: forwardEvent,
	jupyter: jupyterEvent,
	gpu: gpuEvent,
	host: object({
		type: literal('host'),
		cpuPercent: number,
		memoryUsedMiB: number,
		memoryTotalMiB: number,
	}),
	log: object({type: literal('log'), source: literal('jupyter'), line: text, seq: optional(count)}),
	error: object({type: literal('error'), kind: oneOf(jsonErrorKinds), message: text}),
	kernel: ((value, at) =>
		typeof value === 'object' && value !== null && (value as {state?: unknown}).state === 'gone'
			? kernelGone(value, at)
			: kernelBody(value, at)) as Guard<
		ReturnType<typeof kernelBody> | ReturnType<typeof kernelGone>
	>,
	notify: object({
		type: literal('notify'),
		kind: oneOf(notifyKinds),
		title: text,
		message: text,
		notebook: nullable(text),
		seq: optional(count),
	}),
	job: object({type: literal('job'), ...jobFields}),
} as const;

const decode = <T>(guard: Guard<T>, value: unknown, at: string): Decoded<T> => {
	try {
		return {ok: true, value: guard(value, at)};
	} catch (error) {
		if (error instanceof DecodeError) return {ok: false, message: error.message};
		throw error;
	}
};

/** One event of a subscription (the `--no-tui` JSON contract, with `at`). */
export function decodeEvent(value: unknown): Decoded<JsonEvent> {
	const type =
		typeof value === 'object' && value !== null ? (value as Record<string, unknown>)['type'] : null;
	if (typeof type !== 'string' || !Object.hasOwn(bodies, type))
		return {
			ok: false,
			message: `an event of unknown type ${sanitizeLine(JSON.stringify(type ?? null).slice(0, 40))}`,
		};
	const guard = bodies[type as keyof typeof bodies] as Guard<JsonEvent>;
	return decode(
		(v, at) => ({...guard(v, at), at: text((v as Record<string, unknown>)['at'], `${at}.at`)}),
		value,
		`the ${type} event`,
	);
}

/** `status`'s result as read: who answers may leave out its pid, role or profile. */
export type StatusReply = StatusObject & {
	readonly [K in 'pid' | 'role' | 'profile']: ControlStatus[K] | null;
};

/** `status`'s result: the `status --json` object, plus who answers. */
export function decodeStatus(value: unknown): Decoded<StatusReply> {
	return decode(
		object({
			ok: boolean,
			hops: list(hopEvent),
			forward: nullable(forwardEvent),
			jupyter: nullable(jupyterEvent),
			gpu: nullable(gpuEvent),
			// A gpujup from before the Notebooks pane has no kernels to tell.
			kernels: (v, at) => (v === undefined ? [] : list(kernelObject)(v, at)),
			pid: nullable(count),
			role: nullable(text),
			profile: nullable(text),
			source: nullable(text),
			// A gpujup from before Slurm has no job to tell.
			job: nullable(object(jobFields)),
			// A gpujup from before the workaround probes has none to tell.
			workarounds: optional(list(object({name: text, active: boolean, detail: text}))),
		}),
		value,
		'the status',
	);
}

/** `token`'s result. The token itself is kept as sent: it is never printed raw, only URL-encoded. */
export function decodeToken(value: unknown): Decoded<ControlToken> {
	return decode(
		object({
			token: (v, at) =>
				typeof v === 'string' && v.length > 0 ? v : fail(at, 'a non-empty string', v),
			port: (v, at) =>
				typeof v === 'number' && Number.isInteger(v) && v > 0 && v < 65_536
					? v
					: fail(at, 'a port number', v),
		}),
		value,
		'the token',
	);
}

/** `kernels`' result as read. */
export type KernelsReply = {
	readonly kernels: KernelObject[];
	readonly gpus: ReadonlyArray<{readonly index: number; readonly uuid: string}>;
};

/** `kernels`' result: the kernels, and the GPUs (index and uuid) their memory is on. */
export function decodeKernels(value: unknown): Decoded<KernelsReply> {
	return decode(
		object({
			kernels: list(kernelObject),
			gpus: list(object({index: count, uuid: text})),
		}),
		value,
		'the kernels',
	);
}

/**
 * Each op's reply as a client reads it. Where an older or foreign gpujup may leave a field out,
 * the field is null rather than the reply refused (`subscribe`'s instance, `stop-jupyter`'s pid,
 * `kernel-action`'s message); the ops that return nothing read as null whatever was sent.
 */
export type ControlReplies = {
	readonly status: StatusReply;
	readonly subscribe: {
		readonly instance: string | null;
		readonly logSeq: number | null;
		readonly notifySeq: number | null;
	};
	readonly 'restart-jupyter': null;
	readonly 'stop-jupyter': {readonly pid: number | null};
	readonly reconnect: null;
	readonly token: ControlToken;
	readonly kernels: KernelsReply;
	readonly 'kernel-action': {readonly message: string | null};
};

const field = (value: unknown, key: string): unknown =>
	typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[key] : undefined;

const nothing = (): Decoded<null> => ({ok: true, value: null});

const replyDecoders: {readonly [Op in ControlOp]: (value: unknown) => Decoded<ControlReplies[Op]>} =
	{
		status: decodeStatus,
		subscribe(value) {
			const instance = field(value, 'instance');
			const logSeq = field(value, 'logSeq');
			const notifySeq = field(value, 'notifySeq');
			return {
				ok: true,
				value: {
					instance: typeof instance === 'string' ? instance : null,
					logSeq: typeof logSeq === 'number' && Number.isInteger(logSeq) ? logSeq : null,
					notifySeq:
						typeof notifySeq === 'number' && Number.isInteger(notifySeq) ? notifySeq : null,
				},
			};
		},
		'restart-jupyter': nothing,
		'stop-jupyter'(value) {
			const pid = field(value, 'pid');
			return {ok: true, value: {pid: typeof pid === 'number' ? pid : null}};
		},
		reconnect: nothing,
		token: decodeToken,
		kernels: decodeKernels,
		'kernel-action'(value) {
			const message = field(value, 'message');
			return {
				ok: true,
				value: {message: typeof message === 'string' ? sanitizeLine(message).slice(0, 200) : null},
			};
		},
	};

/** The reply to `op`, decoded by that op's guard. */
export function decodeReply<Op extends ControlOp>(
	op: Op,
	value: unknown,
): Decoded<ControlReplies[Op]> {
	return replyDecoders[op](value);
}
