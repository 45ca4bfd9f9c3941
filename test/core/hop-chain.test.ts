/**
 * N hop machines wired as a chain, as createHops wires the services: each hop's `emit-ready` and
 * `emit-down` are its child's `parent-ready` and `parent-down`, and a `destroy` comes back as that
 * attempt's `closed`. Pure: the test plays the network and delivers every event.
 */
import {describe, expect, it} from 'vitest';
import {
	initialHopMachine,
	transition,
	waitingForParent,
	type HopEffect,
	type HopEvent,
	type HopMachineState,
} from '../../source/core/hop-machine.js';

const fallback = {kind: 'closed', message: 'connection closed'} as const;

class Chain {
	states: HopMachineState[];
	/** Hops with a `connect` effect not yet answered, by the epoch asked for. */
	readonly dialing = new Map<number, number>();
	readonly retries = new Map<number, number>();
	readonly readyOrder: number[] = [];
	readonly downOrder: number[] = [];
	now = 1000;

	constructor(length: number) {
		this.states = Array.from({length}, (_, index) => initialHopMachine({hasParent: index > 0}));
	}

	send(index: number, event: HopEvent): void {
		const {state, effects} = transition(this.states[index]!, event);
		this.states[index] = state;
		for (const effect of effects) this.run(index, effect);
	}

	/** Answer every dial in chain order until none is left: each hop comes up in turn. */
	answerAll(): void {
		for (let guard = 0; guard < 100 && this.dialing.size > 0; guard++) {
			const index = Math.min(...this.dialing.keys());
			const epoch = this.dialing.get(index)!;
			this.dialing.delete(index);
			this.send(index, {type: 'connected', epoch, now: this.now});
		}
	}

	drop(index: number): void {
		this.send(index, {type: 'closed', epoch: this.states[index]!.epoch, now: this.now, fallback});
	}

	private run(index: number, effect: HopEffect): void {
		const child = index + 1 < this.states.length ? index + 1 : null;
		switch (effect.type) {
			case 'connect': {
				this.dialing.set(index, effect.epoch);
				break;
			}

			case 'destroy': {
				this.dialing.delete(index);
				this.drop(index);
				break;
			}

			case 'schedule-retry': {
				this.retries.set(index, effect.epoch);
				break;
			}

			case 'emit-ready': {
				this.readyOrder.push(index);
				if (child !== null) this.send(child, {type: 'parent-ready', now: this.now});
				break;
			}

			case 'emit-down': {
				this.downOrder.push(index);
				if (child !== null)
					this.send(child, {
						type: 'parent-down',
						error: waitingForParent({index, name: `h${index}`}),
					});
				break;
			}

			default: {
				break;
			}
		}
	}
}

describe('a chain of four hop machines', () => {
	it('come up in order; a dropped middle hop takes down only the hops after it, which follow it back', () => {
		const chain = new Chain(4);
		for (const index of [0, 1, 2, 3]) chain.send(index, {type: 'start'});
		// Only the first dials at first: the rest wait for the hop before them.
		expect([...chain.dialing.keys()]).toEqual([0]);
		chain.answerAll();
		expect(chain.readyOrder).toEqual([0, 1, 2, 3]);
		expect(chain.states.map((state) => state.phase)).toEqual(['ready', 'ready', 'ready', 'ready']);

		chain.readyOrder.length = 0;
		chain.now = 5000;
		chain.drop(1);
		expect(chain.downOrder).toEqual([1, 2, 3]);
		expect(chain.states.map((state) => state.phase)).toEqual([
			'ready',
			'lost',
			'waiting',
			'waiting',
		]);
		// Each waits for the hop just before it, by name and place (1 is the first).
		expect(chain.states.map((state) => state.error?.message)).toEqual([
			undefined,
			'connection closed',
			'waiting for h1, hop 2',
			'waiting for h2, hop 3',
		]);
		// The hops after it wait for it, with no timer of their own; it backs off.
		expect([...chain.retries.keys()]).toEqual([1]);
		expect(chain.dialing.size).toBe(0);

		chain.send(1, {type: 'retry-due', epoch: chain.retries.get(1)!, now: 6000});
		chain.answerAll();
		expect(chain.readyOrder).toEqual([1, 2, 3]);
		expect(chain.states.map((state) => [state.phase, state.reconnects])).toEqual([
			['ready', 0],
			['ready', 1],
			['ready', 1],
			['ready', 1],
		]);
	});

	it('a dropped first hop takes every hop down; a dropped last hop only itself', () => {
		const chain = new Chain(3);
		for (const index of [0, 1, 2]) chain.send(index, {type: 'start'});
		chain.answerAll();
		chain.drop(2);
		expect(chain.downOrder).toEqual([2]);
		expect(chain.states.map((state) => state.phase)).toEqual(['ready', 'ready', 'lost']);
		chain.drop(0);
		expect(chain.downOrder).toEqual([2, 0, 1]);
		expect(chain.states.map((state) => state.phase)).toEqual(['lost', 'waiting', 'waiting']);
	});
});
