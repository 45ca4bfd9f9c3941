import {defaultBackoff, nextDelay, stableResetMs, type BackoffPolicy} from './backoff.js';
import {isNetworkKind, isTerminal, untrustedError} from './classify-error.js';
import type {ClassifiedError, ErrorKind, HopState, HopStatus} from './types.js';

/**
 * The life of one SSH hop as data. The service feeds it events and executes the effects it
 * returns; every callback carries the epoch of the attempt it belongs to, and an event from an
 * older attempt is dropped (as grpc-js's subchannel does), so a late `close` from a connection
 * that was already replaced can never knock down its successor.
 */
export type HopMachineState = {
	readonly phase: HopState;
	/** False until `start`: the initial `connecting` is only what the dashboard shows. */
	readonly started: boolean;
	/** Identifies the current (or last) attempt; bumped by every `connect` effect. */
	readonly epoch: number;
	/** Tries since the last ready (SPEC `attempt`). */
	readonly attempt: number;
	/** Returns to ready after a loss (SPEC `reconnects`). */
	readonly reconnects: number;
	/** Consecutive failures that drive the backoff; reset after `stableResetMs` ready. */
	readonly failures: number;
	/** A loss happened since the last ready: the next ready counts as a reconnect. */
	readonly lostSinceReady: boolean;
	/** What the user sees; cleared on ready. */
	readonly error: ClassifiedError | null;
	/** Remembered during an attempt; applied when it closes (transitions happen on close). */
	readonly pending: ClassifiedError | null;
	/** Null when the hop has no parent; otherwise whether the parent hop is ready. */
	readonly parentReady: boolean | null;
	/** What the last `parent-down` said (which hop went down): shown while this hop waits. */
	readonly parentError: ClassifiedError;
	readonly probing: boolean;
	/**
	 * The far side failed to answer during this wait (the attempt could not reach it, or a knock
	 * failed): only then may an answer cut the wait short. A relay that accepts TCP but drops
	 * every SSH session answers every knock, and must still be backed off.
	 */
	readonly probeFailed: boolean;
	/**
	 * The current attempt finished key exchange with a verified host key. Before that anything
	 * the server says (a DISCONNECT in clear text) may be forged by whoever sits on the path, so
	 * it can never be a terminal verdict.
	 */
	readonly keyVerified: boolean;
	readonly readySince: number | null;
	readonly retryAt: number | null;
	readonly lastLoss: {readonly kind: ErrorKind; readonly at: number} | null;
	readonly policy: BackoffPolicy;
};

export type HopEvent =
	| {readonly type: 'start'}
	| {readonly type: 'connected'; readonly epoch: number; readonly now: number}
	| {
			readonly type: 'error';
			readonly epoch: number;
			readonly error: ClassifiedError;
			/**
			 * What the server (or anyone on the path) said, as opposed to a verdict of our own
			 * (a known_hosts mismatch, every key refused): trusted only after `host-key-verified`.
			 */
			readonly fromServer?: boolean;
	  }
	/** Key exchange finished with a host key that known_hosts (or the user) vouched for. */
	| {readonly type: 'host-key-verified'; readonly epoch: number}
	| {
			readonly type: 'closed';
			readonly epoch: number;
			readonly now: number;
			/** Used when no error was seen: a clean close still needs words. */
			readonly fallback: ClassifiedError;
			/** In [0, 1): the backoff's jitter, passed in to keep this function pure. */
			readonly random?: number;
	  }
	| {readonly type: 'keepalive-timeout'; readonly epoch: number; readonly error: ClassifiedError}
	| {readonly type: 'retry-due'; readonly epoch: number; readonly now: number}
	| {readonly type: 'probe-ok'; readonly epoch: number; readonly now: number}
	| {readonly type: 'probe-failed'; readonly epoch: number}
	| {readonly type: 'clock-jump'; readonly now: number}
	| {readonly type: 'reconnect-now'; readonly now: number}
	| {readonly type: 'parent-down'; readonly error: ClassifiedError}
	| {readonly type: 'parent-ready'; readonly now: number}
	| {readonly type: 'stable'; readonly epoch: number}
	| {readonly type: 'dispose'};

export type HopEffect =
	/** Open a new connection (a new ssh2 Client) tagged with `epoch`. */
	| {readonly type: 'connect'; readonly epoch: number}
	/** Tear the current connection down; its `close` will arrive as an event. */
	| {readonly type: 'destroy'}
	| {readonly type: 'schedule-retry'; readonly epoch: number; readonly ms: number}
	| {readonly type: 'cancel-retry'}
	| {readonly type: 'start-probe'; readonly epoch: number}
	| {readonly type: 'stop-probe'}
	| {readonly type: 'start-keepalive'; readonly epoch: number}
	| {readonly type: 'stop-keepalive'}
	| {readonly type: 'schedule-stable'; readonly epoch: number; readonly ms: number}
	/** Send a keepalive now with a short deadline (after a clock jump the link may be dead). */
	| {readonly type: 'check'; readonly epoch: number}
	| {readonly type: 'emit-ready'}
	| {readonly type: 'emit-down'};

export type Transition = {readonly state: HopMachineState; readonly effects: readonly HopEffect[]};

/** The machine before `start`. `hasParent`: a second hop, which waits for its parent's ready. */
export function initialHopMachine(
	options: {readonly hasParent?: boolean; readonly policy?: BackoffPolicy} = {},
): HopMachineState {
	return {
		phase: 'connecting',
		started: false,
		epoch: 0,
		attempt: 0,
		reconnects: 0,
		failures: 0,
		lostSinceReady: false,
		error: null,
		pending: null,
		parentReady: options.hasParent ? false : null,
		parentError: parentDownError,
		probing: false,
		probeFailed: false,
		keyVerified: false,
		readySince: null,
		retryAt: null,
		lastLoss: null,
		policy: options.policy ?? defaultBackoff,
	};
}

/** The words a child hop shows while its parent is down, where the parent has no place. */
export const parentDownError: ClassifiedError = {kind: 'closed', message: 'relay hop is down'};

/** A hop's place in its chain: its index (0 = first) and its name (the alias or host). */
export type HopPlace = {readonly index: number; readonly name: string};

/** The words a hop shows while it waits for `parent`, counted from 1 as people count hops. */
export function waitingForParent(parent: HopPlace): ClassifiedError {
	return {kind: 'closed', message: `waiting for ${parent.name}, hop ${parent.index + 1}`};
}

const same = (state: HopMachineState): Transition => ({state, effects: []});

function connectNow(state: HopMachineState, extra: HopEffect[] = []): Transition {
	const epoch = state.epoch + 1;
	const effects: HopEffect[] = [...extra];
	if (state.retryAt !== null) effects.push({type: 'cancel-retry'});
	if (state.probing) effects.push({type: 'stop-probe'});
	effects.push({type: 'connect', epoch});
	return {
		state: {
			...state,
			phase: 'connecting',
			started: true,
			epoch,
			attempt: state.attempt + 1,
			pending: null,
			probing: false,
			probeFailed: false,
			keyVerified: false,
			retryAt: null,
		},
		effects,
	};
}

function waitForParent(state: HopMachineState, effects: HopEffect[]): Transition {
	if (state.retryAt !== null) effects.push({type: 'cancel-retry'});
	if (state.probing) effects.push({type: 'stop-probe'});
	return {
		state: {
			...state,
			phase: 'waiting',
			error: state.parentError,
			pending: null,
			probing: false,
			retryAt: null,
		},
		effects,
	};
}

function rememberError(state: HopMachineState, error: ClassifiedError): HopMachineState {
	// The first error of an attempt is usually the cause and later ones its echoes ("No response
	// from server" after ECONNRESET); a terminal verdict wins over any network noise.
	if (state.pending === null) return {...state, pending: error};
	if (isTerminal(error.kind) && !isTerminal(state.pending.kind)) return {...state, pending: error};
	return state;
}

/** Pure transition function: the next state and the side effects the service must run. */
export function transition(state: HopMachineState, event: HopEvent): Transition {
	if (state.phase === 'closed') return same(state);
	switch (event.type) {
		case 'start': {
			if (state.started) return same(state);
			// Nothing has failed yet: the hop waits for its parent in its first state, silently
			// (epoch 0 marks a hop that never tried).
			if (state.parentReady === false) return same({...state, started: true});
			return connectNow(state);
		}

		case 'connected': {
			if (state.phase !== 'connecting' || event.epoch !== state.epoch) return same(state);
			return {
				state: {
					...state,
					phase: 'ready',
					attempt: 0,
					reconnects: state.reconnects + (state.lostSinceReady ? 1 : 0),
					lostSinceReady: false,
					error: null,
					pending: null,
					readySince: event.now,
					retryAt: null,
				},
				effects: [
					{type: 'start-keepalive', epoch: state.epoch},
					{type: 'schedule-stable', epoch: state.epoch, ms: stableResetMs},
					{type: 'emit-ready'},
				],
			};
		}

		case 'host-key-verified': {
			if (event.epoch !== state.epoch || state.phase !== 'connecting') return same(state);
			return same({...state, keyVerified: true});
		}

		case 'error':
		case 'keepalive-timeout': {
			if (event.epoch !== state.epoch) return same(state);
			if (state.phase !== 'connecting' && state.phase !== 'ready') return same(state);
			const untrusted =
				event.type === 'error' &&
				event.fromServer === true &&
				!state.keyVerified &&
				isTerminal(event.error.kind);
			const next = rememberError(state, untrusted ? untrustedError(event.error) : event.error);
			// A keepalive timeout is a verdict, not an echo: tear the connection down so its
			// `close` arrives; a plain error lets ssh2 close on its own (some, like a failed agent,
			// are not fatal at all).
			return {
				state: next,
				effects: event.type === 'keepalive-timeout' ? [{type: 'destroy'}] : [],
			};
		}

		case 'closed': {
			if (event.epoch !== state.epoch) return same(state);
			if (state.phase !== 'connecting' && state.phase !== 'ready') return same(state);
			const wasReady = state.phase === 'ready';
			const error = state.pending ?? event.fallback;
			const effects: HopEffect[] = [];
			if (wasReady) effects.push({type: 'stop-keepalive'}, {type: 'emit-down'});
			const base: HopMachineState = {
				...state,
				error,
				pending: null,
				readySince: null,
				lostSinceReady: state.lostSinceReady || wasReady,
				lastLoss: wasReady ? {kind: error.kind, at: event.now} : state.lastLoss,
			};
			if (isTerminal(error.kind)) {
				return {state: {...base, phase: 'failed', retryAt: null, probing: false}, effects};
			}
			if (state.parentReady === false) return waitForParent(base, effects);
			const failures = state.failures + 1;
			const random = event.random ?? 0.5;
			const ms = nextDelay(failures, state.policy, () => random);
			effects.push({type: 'schedule-retry', epoch: state.epoch, ms});
			// A probe only helps when the far side was unreachable: the relay for the first hop, the
			// reverse port through the relay for the second (here its parent is up).
			const probing = isNetworkKind(error.kind) && ms > 0;
			if (probing) effects.push({type: 'start-probe', epoch: state.epoch});
			return {
				state: {
					...base,
					phase: wasReady ? 'lost' : 'waiting',
					failures,
					probing,
					// Refused, unresolvable or silent: the far side was not there, so its answer is
					// news; so it is after a working session was lost (a reset on the path). An
					// attempt it accepted and dropped before ready: an answer alone is not news.
					probeFailed: error.kind !== 'closed' || wasReady,
					retryAt: event.now + ms,
				},
				effects,
			};
		}

		case 'retry-due':
		case 'probe-ok': {
			if (event.epoch !== state.epoch) return same(state);
			if (state.phase !== 'waiting' && state.phase !== 'lost') return same(state);
			if (state.retryAt === null) return same(state);
			if (event.type === 'probe-ok' && !state.probing) return same(state);
			// The far side answers but never failed a knock in this wait: it is the thing that
			// just dropped us (accepts, then closes), so the backoff stands. The probe has stopped.
			if (event.type === 'probe-ok' && !state.probeFailed)
				return {state: {...state, probing: false}, effects: [{type: 'stop-probe'}]};
			// The timer fired (or the probe saw the relay answer): nothing left to cancel.
			return connectNow({...state, retryAt: event.type === 'retry-due' ? null : state.retryAt});
		}

		case 'probe-failed': {
			if (event.epoch !== state.epoch || !state.probing || state.probeFailed) return same(state);
			return same({...state, probeFailed: true});
		}

		case 'clock-jump': {
			// After a suspend the old TCP connection is likely dead and the backoff timer meaningless.
			if (state.phase === 'ready') return {state, effects: [{type: 'check', epoch: state.epoch}]};
			if ((state.phase === 'waiting' || state.phase === 'lost') && state.retryAt !== null)
				return connectNow(state);
			return same(state);
		}

		case 'reconnect-now': {
			if (!state.started) return same(state);
			if (state.phase === 'ready' || state.phase === 'connecting') return same(state);
			if (state.parentReady === false) return same(state);
			// The user asked: forget the backoff (and, from failed, the verdict they just fixed).
			return connectNow({...state, failures: 0});
		}

		case 'parent-down': {
			if (state.parentReady === null) return same(state);
			const next: HopMachineState = {...state, parentReady: false, parentError: event.error};
			if (!state.started || state.epoch === 0) return same(next);
			if (state.phase === 'ready' || state.phase === 'connecting') {
				return {state: rememberError(next, event.error), effects: [{type: 'destroy'}]};
			}
			if (state.phase === 'failed') return same(next);
			return waitForParent(next, []);
		}

		case 'parent-ready': {
			if (state.parentReady === null) return same(state);
			const next: HopMachineState = {...state, parentReady: true};
			if (!state.started) return same(next);
			if (state.phase === 'waiting' || state.phase === 'lost' || state.epoch === 0)
				return connectNow(next);
			return same(next);
		}

		case 'stable': {
			if (state.phase !== 'ready' || event.epoch !== state.epoch) return same(state);
			return same({...state, failures: 0});
		}

		case 'dispose': {
			const effects: HopEffect[] = [];
			if (state.retryAt !== null) effects.push({type: 'cancel-retry'});
			if (state.probing) effects.push({type: 'stop-probe'});
			if (state.phase === 'ready') effects.push({type: 'stop-keepalive'}, {type: 'emit-down'});
			if (state.phase === 'ready' || state.phase === 'connecting') effects.push({type: 'destroy'});
			return {
				state: {
					...state,
					phase: 'closed',
					probing: false,
					retryAt: null,
					readySince: null,
					pending: null,
				},
				effects,
			};
		}
	}
}

/** The part of a `HopStatus` the machine decides (the service adds `rttMs`). */
export function statusOf(
	state: HopMachineState,
): Pick<
	HopStatus,
	'state' | 'attempt' | 'reconnects' | 'error' | 'readySince' | 'retryAt' | 'lastLoss'
> {
	return {
		state: state.phase,
		attempt: state.attempt,
		reconnects: state.reconnects,
		error: state.error,
		readySince: state.readySince,
		retryAt: state.retryAt,
		lastLoss: state.lastLoss,
	};
}
