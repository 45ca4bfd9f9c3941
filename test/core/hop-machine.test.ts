import {describe, expect, it} from 'vitest';
import {
	initialHopMachine,
	parentDownError,
	statusOf,
	waitingForParent,
	transition,
	type HopEvent,
	type HopMachineState,
	type HopEffect,
} from '../../source/core/hop-machine.js';
import type {ClassifiedError} from '../../source/core/types.js';

const refused: ClassifiedError = {kind: 'refused', message: 'connection refused by relay:22'};
const authFail: ClassifiedError = {kind: 'auth', message: 'authentication as u@relay:22 failed'};
const hostKey: ClassifiedError = {kind: 'host-key', message: 'HOST KEY HAS CHANGED'};
const timeout: ClassifiedError = {kind: 'timeout', message: 'nothing received'};
const fallback: ClassifiedError = {kind: 'closed', message: 'connection closed'};

/** Run events in order, collecting every effect. */
function run(
	events: readonly HopEvent[],
	state: HopMachineState = initialHopMachine(),
): {state: HopMachineState; effects: HopEffect[]} {
	const effects: HopEffect[] = [];
	for (const event of events) {
		const next = transition(state, event);
		state = next.state;
		effects.push(...next.effects);
	}
	return {state, effects};
}

const closed = (epoch: number, now = 1000): HopEvent => ({
	type: 'closed',
	epoch,
	now,
	fallback,
	random: 0.5,
});

describe('hop machine', () => {
	it('connects on start and becomes ready', () => {
		const started = run([{type: 'start'}]);
		expect(started.state.phase).toBe('connecting');
		expect(started.state.attempt).toBe(1);
		expect(started.effects).toEqual([{type: 'connect', epoch: 1}]);
		const ready = run([{type: 'connected', epoch: 1, now: 5000}], started.state);
		expect(ready.state.phase).toBe('ready');
		expect(ready.state.attempt).toBe(0);
		expect(ready.state.readySince).toBe(5000);
		expect(ready.effects.map((e) => e.type)).toEqual([
			'start-keepalive',
			'schedule-stable',
			'emit-ready',
		]);
	});

	it('transitions on close, not on error, and remembers the first error', () => {
		const {state, effects} = run([
			{type: 'start'},
			{type: 'error', epoch: 1, error: refused},
			{type: 'error', epoch: 1, error: fallback},
		]);
		expect(state.phase).toBe('connecting');
		expect(effects).toEqual([{type: 'connect', epoch: 1}]);
		const after = run([closed(1, 2000)], state);
		expect(after.state.phase).toBe('waiting');
		expect(after.state.error).toEqual(refused);
		// First failure retries at once (0 ms); no probe for an immediate retry.
		expect(after.effects).toEqual([{type: 'schedule-retry', epoch: 1, ms: 0}]);
		expect(after.state.retryAt).toBe(2000);
	});

	it('backs off 0, 0.2 s, 1 s, 2 s and probes the relay while waiting on a network error', () => {
		let state = run([{type: 'start'}]).state;
		const delays: number[] = [];
		for (let i = 1; i <= 4; i++) {
			const r = run([{type: 'error', epoch: i, error: refused}, closed(i)], state);
			const retry = r.effects.find((e) => e.type === 'schedule-retry');
			delays.push(retry?.type === 'schedule-retry' ? retry.ms : -1);
			if (i > 1) expect(r.effects).toContainEqual({type: 'start-probe', epoch: i});
			state = run([{type: 'retry-due', epoch: i, now: 0}], r.state).state;
			expect(state.attempt).toBe(i + 1);
		}
		expect(delays).toEqual([0, 200, 1000, 2000]);
	});

	it('cuts the wait short when the probe answers after a failed knock, and ignores a stale probe', () => {
		let state = run([{type: 'start'}, {type: 'error', epoch: 1, error: refused}, closed(1)]).state;
		state = run(
			[
				{type: 'retry-due', epoch: 1, now: 0},
				{type: 'error', epoch: 2, error: timeout},
				closed(2),
				{type: 'probe-failed', epoch: 2},
			],
			state,
		).state;
		expect(state.probing).toBe(true);
		expect(run([{type: 'probe-ok', epoch: 1, now: 0}], state).state).toBe(state);
		const r = run([{type: 'probe-ok', epoch: 2, now: 0}], state);
		expect(r.state.phase).toBe('connecting');
		expect(r.effects).toEqual([
			{type: 'cancel-retry'},
			{type: 'stop-probe'},
			{type: 'connect', epoch: 3},
		]);
	});

	it('does not probe after a protocol error', () => {
		const protocol: ClassifiedError = {kind: 'protocol', message: 'no matching cipher'};
		let state = run([{type: 'start'}, {type: 'error', epoch: 1, error: protocol}, closed(1)]).state;
		const r = run(
			[
				{type: 'retry-due', epoch: 1, now: 0},
				{type: 'error', epoch: 2, error: protocol},
				closed(2),
			],
			state,
		);
		state = r.state;
		expect(state.probing).toBe(false);
		expect(r.effects.some((e) => e.type === 'start-probe')).toBe(false);
	});

	it.each([
		['auth', authFail],
		['host-key', hostKey],
	] as const)('fails on %s without retrying, and retries only when asked', (_kind, error) => {
		const r = run([{type: 'start'}, {type: 'error', epoch: 1, error}, closed(1)]);
		expect(r.state.phase).toBe('failed');
		expect(r.state.error).toEqual(error);
		expect(r.state.attempt).toBe(1);
		expect(r.effects.some((e) => e.type === 'schedule-retry')).toBe(false);
		// Nothing wakes a failed hop but the user.
		expect(
			run(
				[
					{type: 'clock-jump', now: 0},
					{type: 'retry-due', epoch: 1, now: 0},
				],
				r.state,
			).state,
		).toBe(r.state);
		const retried = run([{type: 'reconnect-now', now: 0}], r.state);
		expect(retried.state.phase).toBe('connecting');
		expect(retried.effects).toEqual([{type: 'connect', epoch: 2}]);
	});

	it('a terminal error wins over network noise in the same attempt', () => {
		const r = run([
			{type: 'start'},
			{type: 'error', epoch: 1, error: fallback},
			{type: 'error', epoch: 1, error: hostKey},
			closed(1),
		]);
		expect(r.state.phase).toBe('failed');
		expect(r.state.error).toEqual(hostKey);
	});

	it('counts a loss and the reconnect after it', () => {
		let r = run([{type: 'start'}, {type: 'connected', epoch: 1, now: 0}]);
		expect(r.state.reconnects).toBe(0);
		r = run([{type: 'keepalive-timeout', epoch: 1, error: timeout}], r.state);
		expect(r.effects).toEqual([{type: 'destroy'}]);
		expect(r.state.phase).toBe('ready');
		r = run([closed(1, 7000)], r.state);
		expect(r.state.phase).toBe('lost');
		expect(r.state.lastLoss).toEqual({kind: 'timeout', at: 7000});
		expect(r.effects).toEqual([
			{type: 'stop-keepalive'},
			{type: 'emit-down'},
			{type: 'schedule-retry', epoch: 1, ms: 0},
		]);
		r = run([{type: 'retry-due', epoch: 1, now: 7000}], r.state);
		expect(r.state.attempt).toBe(1);
		r = run([{type: 'connected', epoch: 2, now: 8000}], r.state);
		expect(r.state.phase).toBe('ready');
		expect(r.state.reconnects).toBe(1);
		expect(r.state.attempt).toBe(0);
		expect(r.state.error).toBeNull();
		// A failed attempt in between does not count twice.
		r = run(
			[
				closed(2),
				{type: 'retry-due', epoch: 2, now: 0},
				closed(3),
				{type: 'retry-due', epoch: 3, now: 0},
				{type: 'connected', epoch: 4, now: 0},
			],
			r.state,
		);
		expect(r.state.reconnects).toBe(2);
	});

	it('keeps backing off across short-lived sessions until one is stable', () => {
		let r = run([
			{type: 'start'},
			closed(1),
			{type: 'retry-due', epoch: 1, now: 0},
			closed(2),
			{type: 'retry-due', epoch: 2, now: 0},
			{type: 'connected', epoch: 3, now: 0},
		]);
		expect(r.state.failures).toBe(2);
		r = run([closed(3)], r.state);
		expect(r.effects).toContainEqual({type: 'schedule-retry', epoch: 3, ms: 1000});
		r = run(
			[
				{type: 'retry-due', epoch: 3, now: 0},
				{type: 'connected', epoch: 4, now: 0},
				{type: 'stable', epoch: 3},
			],
			r.state,
		);
		expect(r.state.failures).toBe(3);
		r = run([{type: 'stable', epoch: 4}, closed(4)], r.state);
		expect(r.effects).toContainEqual({type: 'schedule-retry', epoch: 4, ms: 0});
	});

	it('drops stale events from older attempts', () => {
		const r = run([{type: 'start'}, closed(1), {type: 'retry-due', epoch: 1, now: 0}]);
		expect(r.state.epoch).toBe(2);
		for (const stale of [
			closed(1),
			{type: 'connected', epoch: 1, now: 0},
			{type: 'error', epoch: 1, error: authFail},
		] as const)
			expect(transition(r.state, stale).state).toBe(r.state);
	});

	it('retries at once on a clock jump while waiting, and checks the link while ready', () => {
		let r = run([{type: 'start'}, closed(1), {type: 'retry-due', epoch: 1, now: 0}, closed(2)]);
		expect(r.state.phase).toBe('waiting');
		const jumped = run([{type: 'clock-jump', now: 0}], r.state);
		expect(jumped.state.phase).toBe('connecting');
		expect(jumped.effects).toContainEqual({type: 'connect', epoch: 3});
		r = run(
			[
				{type: 'connected', epoch: 3, now: 0},
				{type: 'clock-jump', now: 0},
			],
			jumped.state,
		);
		expect(r.effects.at(-1)).toEqual({type: 'check', epoch: 3});
	});

	it('reconnect-now skips the backoff', () => {
		let r = run([
			{type: 'start'},
			closed(1),
			{type: 'retry-due', epoch: 1, now: 0},
			closed(2),
			{type: 'retry-due', epoch: 2, now: 0},
			closed(3),
		]);
		expect(r.state.retryAt).not.toBeNull();
		r = run([{type: 'reconnect-now', now: 0}], r.state);
		expect(r.state.phase).toBe('connecting');
		expect(r.state.failures).toBe(0);
		expect(r.effects).toEqual([
			{type: 'cancel-retry'},
			{type: 'stop-probe'},
			{type: 'connect', epoch: 4},
		]);
	});

	describe('second hop', () => {
		const child = () => initialHopMachine({hasParent: true});

		it('waits for its parent without busy retries, and silently: nothing has failed yet', () => {
			const r = run([{type: 'start'}], child());
			expect(statusOf(r.state)).toEqual(statusOf(child()));
			expect(r.effects).toEqual([]);
			const down = run([{type: 'parent-down', error: parentDownError}], r.state);
			expect(statusOf(down.state)).toEqual(statusOf(child()));
			expect(down.effects).toEqual([]);
			const up = run([{type: 'parent-ready', now: 0}], r.state);
			expect(up.effects).toEqual([{type: 'connect', epoch: 1}]);
		});

		it('connects at once when the parent is already up', () => {
			const r = run([{type: 'parent-ready', now: 0}, {type: 'start'}], child());
			expect(r.effects).toEqual([{type: 'connect', epoch: 1}]);
		});

		it('goes waiting when the parent drops, and back when it returns', () => {
			let r = run(
				[{type: 'parent-ready', now: 0}, {type: 'start'}, {type: 'connected', epoch: 1, now: 0}],
				child(),
			);
			r = run([{type: 'parent-down', error: parentDownError}], r.state);
			expect(r.effects).toEqual([{type: 'destroy'}]);
			r = run([closed(1)], r.state);
			expect(r.state.phase).toBe('waiting');
			expect(r.state.error).toEqual(parentDownError);
			expect(r.state.retryAt).toBeNull();
			expect(r.effects.some((e) => e.type === 'schedule-retry' || e.type === 'start-probe')).toBe(
				false,
			);
			r = run([{type: 'parent-ready', now: 0}], r.state);
			expect(r.state.phase).toBe('connecting');
			r = run([{type: 'connected', epoch: 2, now: 0}], r.state);
			expect(r.state.reconnects).toBe(1);
		});

		it('names the parent that went down while it waits, from the parent-down event', () => {
			const relay = waitingForParent({index: 1, name: 'relay'});
			expect(relay).toEqual({kind: 'closed', message: 'waiting for relay, hop 2'});
			let r = run(
				[{type: 'parent-ready', now: 0}, {type: 'start'}, {type: 'connected', epoch: 1, now: 0}],
				child(),
			);
			r = run([{type: 'parent-down', error: relay}, closed(1)], r.state);
			expect([r.state.phase, r.state.error]).toEqual(['waiting', relay]);
			// Back, then down again while this hop backs off on its own: the words are the parent's.
			r = run(
				[
					{type: 'parent-ready', now: 0},
					{type: 'error', epoch: 2, error: refused},
					closed(2),
					{type: 'parent-down', error: relay},
				],
				r.state,
			);
			expect([r.state.phase, r.state.error]).toEqual(['waiting', relay]);
			// A parent that never came up is waited for silently, whatever its name.
			const quiet = run([{type: 'start'}, {type: 'parent-down', error: relay}], child());
			expect(quiet.state.error).toBeNull();
		});

		it('cancels a pending retry when the parent drops', () => {
			let r = run(
				[
					{type: 'parent-ready', now: 0},
					{type: 'start'},
					{type: 'error', epoch: 1, error: refused},
					closed(1),
				],
				child(),
			);
			expect(r.state.retryAt).not.toBeNull();
			expect(r.state.probing).toBe(false);
			r = run([{type: 'parent-down', error: parentDownError}], r.state);
			expect(r.effects).toEqual([{type: 'cancel-retry'}]);
			expect(r.state.phase).toBe('waiting');
		});
	});

	it('disposes from any state and then ignores everything', () => {
		let r = run([{type: 'start'}, {type: 'connected', epoch: 1, now: 0}, {type: 'dispose'}]);
		expect(r.state.phase).toBe('closed');
		expect(r.effects.slice(-3)).toEqual([
			{type: 'stop-keepalive'},
			{type: 'emit-down'},
			{type: 'destroy'},
		]);
		r = run([closed(1), {type: 'reconnect-now', now: 0}, {type: 'start'}], r.state);
		expect(r.state.phase).toBe('closed');
		expect(r.effects).toEqual([]);
	});

	it('projects to HopStatus fields', () => {
		const r = run([{type: 'start'}, {type: 'error', epoch: 1, error: refused}, closed(1, 42)]);
		expect(statusOf(r.state)).toEqual({
			state: 'waiting',
			attempt: 1,
			reconnects: 0,
			error: refused,
			readySince: null,
			retryAt: 42,
			lastLoss: null,
		});
	});
});

describe('words from an unverified server (issue 9 item 4)', () => {
	const start = () => run([{type: 'start'}]).state;

	it.each([
		['auth', authFail],
		['host-key', hostKey],
	] as const)(
		'retries a %s error the server sent before its host key was verified',
		(_kind, error) => {
			const r = run([{type: 'error', epoch: 1, error, fromServer: true}, closed(1)], start());
			expect(r.state.phase).toBe('waiting');
			expect(r.state.error?.kind).toBe('protocol');
			expect(r.state.error?.message).toMatch(/before .*host key was verified/);
			expect(r.effects).toContainEqual({type: 'schedule-retry', epoch: 1, ms: 0});
		},
	);

	it('trusts the same words once the key was verified in this attempt', () => {
		const r = run(
			[
				{type: 'host-key-verified', epoch: 1},
				{type: 'error', epoch: 1, error: authFail, fromServer: true},
				closed(1),
			],
			start(),
		);
		expect(r.state.phase).toBe('failed');
		expect(r.state.error).toEqual(authFail);
	});

	it('keeps its own host-key verdict terminal before verification', () => {
		const r = run([{type: 'error', epoch: 1, error: hostKey}, closed(1)], start());
		expect(r.state.phase).toBe('failed');
		expect(r.state.error).toEqual(hostKey);
	});

	it('forgets the verification with each new attempt, and ignores a stale one', () => {
		let r = run(
			[
				{type: 'host-key-verified', epoch: 1},
				{type: 'connected', epoch: 1, now: 0},
				{type: 'keepalive-timeout', epoch: 1, error: timeout},
				closed(1),
			],
			start(),
		);
		expect(r.state.phase).toBe('lost');
		r = run([{type: 'retry-due', epoch: 1, now: 0}], r.state);
		expect(r.state.keyVerified).toBe(false);
		r = run(
			[
				{type: 'host-key-verified', epoch: 1},
				{type: 'error', epoch: 2, error: hostKey, fromServer: true},
				closed(2),
			],
			r.state,
		);
		expect(r.state.phase).toBe('waiting');
	});
});

describe('the probe cuts a wait short only when the relay came back (issue 9 item 10)', () => {
	/**
	 * Two attempts that the far side accepted and then dropped (no error: the fallback, closed);
	 * the second close starts a probe (the first retry goes at once).
	 */
	const waitingWithProbe = () =>
		run([{type: 'start'}, closed(1), {type: 'retry-due', epoch: 1, now: 0}, closed(2)]);

	/** Two attempts refused (nothing listens); the second close starts a probe. */
	const twoRefused: HopEvent[] = [
		{type: 'start'},
		{type: 'error', epoch: 1, error: refused},
		closed(1),
		{type: 'retry-due', epoch: 1, now: 0},
		{type: 'error', epoch: 2, error: refused},
		closed(2),
	];

	it('an answer on the first knock does not cut the wait (accepts, then drops SSH)', () => {
		const {state} = waitingWithProbe();
		expect(state.probing).toBe(true);
		const r = run([{type: 'probe-ok', epoch: 2, now: 0}], state);
		expect(r.state.phase).toBe('waiting');
		expect(r.state.retryAt).toBe(state.retryAt);
		expect(r.state.probing).toBe(false);
		expect(r.effects).toEqual([{type: 'stop-probe'}]);
	});

	it('a failed knock in an earlier wait does not count', () => {
		let {state} = waitingWithProbe();
		state = run(
			[
				{type: 'probe-failed', epoch: 2},
				{type: 'retry-due', epoch: 2, now: 0},
			],
			state,
		).state;
		const r = run([closed(3), {type: 'probe-ok', epoch: 3, now: 0}], state);
		expect(r.state.phase).toBe('waiting');
	});

	it('after a ready session is lost, the first answer cuts the wait', () => {
		const r = run([
			{type: 'start'},
			closed(1),
			{type: 'retry-due', epoch: 1, now: 0},
			{type: 'connected', epoch: 2, now: 0},
			closed(2),
			{type: 'probe-ok', epoch: 2, now: 0},
		]);
		expect(r.state.phase).toBe('connecting');
	});

	it('an attempt that could not reach the far side counts as the failed knock', () => {
		const r = run([...twoRefused, {type: 'probe-ok', epoch: 2, now: 0}]);
		expect(r.state.phase).toBe('connecting');
	});

	it('a second hop probes (through its parent) while the parent is up', () => {
		const r = run(
			[{type: 'parent-ready', now: 0}, ...twoRefused],
			initialHopMachine({hasParent: true}),
		);
		expect(r.state.probing).toBe(true);
		expect(r.effects).toContainEqual({type: 'start-probe', epoch: 2});
		const back = run(
			[
				{type: 'probe-failed', epoch: 2},
				{type: 'probe-ok', epoch: 2, now: 0},
			],
			r.state,
		);
		expect(back.state.phase).toBe('connecting');
	});
});
