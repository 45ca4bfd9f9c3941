/**
 * A chain of any length in the store and in the JSON lines: one hop per link, picked by `index`
 * (a chain may hold several `jump`s), each event carrying `index` and `name`, `status --json`
 * listing every hop.
 */
import {describe, expect, it} from 'vitest';
import {initialHop, initialState, reduce, type AppState} from '../../source/core/app-state.js';
import {diffEvents, statusObject} from '../../source/core/events.js';

const chain = (): AppState =>
	initialState({
		role: 'connect',
		title: 'p4',
		hops: [
			initialHop('relay', 'bastion (10.0.0.1)', {name: 'bastion'}),
			initialHop('jump', 'login (10.0.0.2)', {name: 'login'}),
			initialHop('jump', 'relay (10.0.0.3)', {name: 'relay'}),
			initialHop('host', 'p4 (via :19506)', {name: 'p4'}),
		],
	});

describe('a chain of four hops', () => {
	it('a hop is indexed by its place in the chain, however its status was made', () => {
		// As the demo builds its store: two hops made with no place given.
		const state = initialState({
			role: 'connect',
			title: '',
			hops: [initialHop('relay', 'relay:22'), initialHop('host', 'GPU host (via :19506)')],
		});
		expect(state.hops.map((hop) => hop.index)).toEqual([0, 1]);
		const next = reduce(state, {type: 'hop', hop: 'host', index: 1, patch: {state: 'ready'}});
		expect(next.hops.map((hop) => hop.state)).toEqual(['connecting', 'ready']);
	});

	it('a hop action with an index patches that hop only, even among several jumps', () => {
		let state = chain();
		state = reduce(state, {type: 'hop', hop: 'jump', index: 2, patch: {state: 'ready'}});
		expect(state.hops.map((hop) => hop.state)).toEqual([
			'connecting',
			'connecting',
			'ready',
			'connecting',
		]);
		// Without an index, the role picks (the first with it): what two-hop callers send.
		state = reduce(state, {type: 'hop', hop: 'host', patch: {state: 'lost', reconnects: 1}});
		expect(state.hops[3]).toMatchObject({state: 'lost', reconnects: 1, index: 3, name: 'p4'});
		// An index that is not in the chain changes nothing.
		expect(reduce(state, {type: 'hop', hop: 'jump', index: 9, patch: {state: 'ready'}})).toBe(
			state,
		);
	});

	it('hop events carry index and name, one per changed hop; status lists every hop', () => {
		const before = reduce(chain(), {type: 'hop', hop: 'relay', index: 0, patch: {attempt: 1}});
		const after = reduce(before, {
			type: 'hop',
			hop: 'jump',
			index: 1,
			patch: {attempt: 1},
		});
		expect(diffEvents(before, after)).toEqual([
			{
				type: 'hop',
				hop: 'jump',
				index: 1,
				name: 'login',
				state: 'connecting',
				attempt: 1,
				reconnects: 0,
				rttMs: null,
				error: null,
			},
		]);
		// The second jump changing says so under its own index, not the first jump's.
		const third = reduce(after, {type: 'hop', hop: 'jump', index: 2, patch: {attempt: 1}});
		expect(
			diffEvents(after, third).map((event) => [event.type, 'index' in event && event.index]),
		).toEqual([['hop', 2]]);
		const status = statusObject(third);
		expect(status.hops.map((hop) => [hop.hop, hop.index, hop.name])).toEqual([
			['relay', 0, 'bastion'],
			['jump', 1, 'login'],
			['jump', 2, 'relay'],
			['host', 3, 'p4'],
		]);
		expect(status.ok).toBe(false);
	});
});
