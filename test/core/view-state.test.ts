import {describe, expect, it} from 'vitest';
import {initialHop, initialState, reduce} from '../../source/core/app-state.js';
import {
	initialView,
	logScrollOf,
	selectedKernel,
	viewReducer,
	type ViewAction,
	type ViewState,
} from '../../source/core/view-state.js';
import {kernelStatus} from '../components/fixtures.js';

const view = (...actions: ViewAction[]): ViewState => actions.reduce(viewReducer, initialView);

describe('the view keeps what only the dashboard knows', () => {
	it('the shared store holds no overlay, focus, scroll, filter or selection', () => {
		const state = initialState({role: 'connect', title: 'me', hops: [initialHop('host', 'h')]});
		for (const key of ['overlay', 'ui', 'focus', 'logScroll', 'logFilter', 'kernelId'])
			expect(state).not.toHaveProperty(key);
	});

	it('a log scrolled up stays on the same lines while new ones arrive; following stays following', () => {
		let state = initialState({role: 'connect', title: 'me', hops: [initialHop('host', 'h')]});
		state = reduce(state, {type: 'log', lines: Array.from({length: 30}, (_, i) => `line ${i}`)});
		const up = view({type: 'scroll', delta: 5, max: 20, logSeq: state.logSeq});
		expect(logScrollOf(up, state.logSeq, state.logs.length)).toBe(5);
		state = reduce(state, {type: 'log', lines: ['a', 'b', 'c']});
		expect(logScrollOf(up, state.logSeq, state.logs.length)).toBe(8);
		expect(logScrollOf(initialView, state.logSeq, state.logs.length)).toBe(0);
		// A key after new lines moves from where the view is now, within its bounds.
		const down = viewReducer(up, {type: 'scroll', delta: -1, max: 23, logSeq: state.logSeq});
		expect(logScrollOf(down, state.logSeq, state.logs.length)).toBe(7);
		expect(
			viewReducer(down, {type: 'scroll', delta: 100, max: 23, logSeq: state.logSeq}).logScroll,
		).toBe(23);
		// A new filter follows the log again.
		expect(viewReducer(down, {type: 'filter', filter: 'x', editing: true}).logScroll).toBe(0);
	});

	it('focus wraps both ways; the selected kernel is kept by id while rows come and go', () => {
		expect(view({type: 'focus', delta: -1, panes: 4}).focus).toBe(3);
		expect(view({type: 'focus', delta: 5, panes: 4}).focus).toBe(1);
		const a = kernelStatus({id: 'a'});
		const b = kernelStatus({id: 'b'});
		const c = kernelStatus({id: 'c'});
		const picked = view({type: 'select-kernel', delta: 1, kernels: [a, b, c]});
		expect(selectedKernel([a, b, c], picked)?.id).toBe('b');
		expect(selectedKernel([c, b], picked)?.id).toBe('b');
		// Gone: the first row is selected, and ↓ moves on from there.
		expect(selectedKernel([a, c], picked)?.id).toBe('a');
		expect(viewReducer(picked, {type: 'select-kernel', delta: 1, kernels: [a, c]}).kernelId).toBe(
			'c',
		);
		expect(selectedKernel([], picked)).toBeNull();
	});
});
