import {afterEach, beforeEach, describe, expect, test, vi} from 'vitest';
import {initialState, reduce, urgentChange, type AppState} from '../../source/core/app-state.js';
import {createStore} from '../../source/core/store.js';
import {frameGate} from '../../source/hooks/use-frame-store.js';

type State = {readonly n: number; readonly key: string};
type Action = {readonly type: 'sample'} | {readonly type: 'key'; readonly key: string};

const reducer = (state: State, action: Action): State =>
	action.type === 'sample' ? {...state, n: state.n + 1} : {...state, key: action.key};
const keyChanged = (shown: State, next: State) => shown.key !== next.key;

function gated(frameMs: number, beat = false) {
	const store = createStore(reducer, {n: 0, key: ''});
	const gate = frameGate(store, frameMs, keyChanged, {beat});
	const seen: State[] = [];
	gate.subscribe(() => seen.push(gate.getSnapshot()));
	return {store, gate, seen};
}

beforeEach(() => {
	vi.useFakeTimers();
});

afterEach(() => {
	vi.useRealTimers();
});

describe('frameGate', () => {
	test('a background change after a quiet frame is shown at once', () => {
		const {store, gate, seen} = gated(1000);
		store.dispatch({type: 'sample'});
		expect(seen).toEqual([{n: 1, key: ''}]);
		expect(gate.getSnapshot()).toEqual({n: 1, key: ''});
	});

	test('a burst of background changes within a frame is shown once, at the frame, as the latest', () => {
		const {store, gate, seen} = gated(1000);
		store.dispatch({type: 'sample'});
		vi.advanceTimersByTime(200);
		store.dispatch({type: 'sample'});
		vi.advanceTimersByTime(300);
		store.dispatch({type: 'sample'});
		expect(seen).toHaveLength(1);
		expect(gate.getSnapshot().n).toBe(1);
		vi.advanceTimersByTime(499);
		expect(seen).toHaveLength(1);
		vi.advanceTimersByTime(1);
		expect(seen).toEqual([
			{n: 1, key: ''},
			{n: 3, key: ''},
		]);
	});

	test('an urgent change is shown at once, with the background changes held before it', () => {
		const {store, seen} = gated(1000);
		store.dispatch({type: 'sample'});
		store.dispatch({type: 'sample'});
		store.dispatch({type: 'key', key: 'r'});
		expect(seen).toEqual([
			{n: 1, key: ''},
			{n: 2, key: 'r'},
		]);
		// Nothing is left pending: the held sample went out with the key.
		vi.advanceTimersByTime(5000);
		expect(seen).toHaveLength(2);
	});

	test('frameMs 0 shows every change at once', () => {
		const {store, seen} = gated(0);
		store.dispatch({type: 'sample'});
		store.dispatch({type: 'sample'});
		expect(seen.map((state) => state.n)).toEqual([1, 2]);
	});

	test('after dispose nothing is shown and no timer is left', () => {
		const {store, gate, seen} = gated(1000);
		store.dispatch({type: 'sample'});
		store.dispatch({type: 'sample'});
		gate.dispose();
		vi.advanceTimersByTime(5000);
		store.dispatch({type: 'key', key: 'q'});
		expect(seen).toHaveLength(1);
		expect(vi.getTimerCount()).toBe(0);
	});
});

describe('frameGate with a beat (the dashboard clock)', () => {
	test('samples once a second and the clock make one frame a second, never two close together', () => {
		const {store, gate} = gated(1000, true);
		const frames: number[] = [];
		gate.subscribe(() => frames.push(Date.now()));
		// A sample every second at a phase of its own (300 ms after the frames): each waits for
		// the next frame, which is also the clock's.
		vi.advanceTimersByTime(300);
		for (let second = 0; second < 10; second++) {
			store.dispatch({type: 'sample'});
			vi.advanceTimersByTime(1000);
		}
		const gaps = frames.slice(1).map((at, i) => at - frames[i]!);
		expect(gaps.length).toBeGreaterThanOrEqual(9);
		for (const gap of gaps) expect(gap).toBe(1000);
		expect(gate.getSnapshot().n).toBe(10);
	});

	test('with nothing new, a frame still comes each second (a new Frame object, the same state)', () => {
		const {gate} = gated(1000, true);
		const seen: Array<{state: State; beat: number}> = [];
		gate.subscribe(() => seen.push(gate.getFrame()));
		vi.advanceTimersByTime(3000);
		expect(seen.map((frame) => frame.beat)).toEqual([1, 2, 3]);
		expect(new Set(seen.map((frame) => frame.state)).size).toBe(1);
		gate.dispose();
		expect(vi.getTimerCount()).toBe(0);
	});

	test('an urgent change still shows at once, and the clock counts on from it', () => {
		const {store, gate} = gated(1000, true);
		const frames: number[] = [];
		gate.subscribe(() => frames.push(Date.now()));
		vi.advanceTimersByTime(1500);
		store.dispatch({type: 'key', key: 'r'});
		vi.advanceTimersByTime(1000);
		expect(frames.map((at) => at - frames[0]!)).toEqual([0, 500, 1500]);
	});
});

describe('urgentChange', () => {
	const base: AppState = initialState({role: 'connect', title: 'gpu', hops: []});

	test('samples, status and log lines may wait for the next frame', () => {
		const next = reduce(base, {type: 'log', lines: ['[jupyter] hello']});
		expect(next).not.toBe(base);
		expect(urgentChange(base, next)).toBe(false);
	});

	test('a notice or a prompt is drawn at once', () => {
		const noticed = reduce(base, {
			type: 'notice',
			notice: {text: 'copied ✓', level: 'info', at: 0},
		});
		expect(urgentChange(base, noticed)).toBe(true);
		const asking = reduce(base, {
			type: 'prompt',
			prompt: {kind: 'secret', id: 1, hop: 'relay', message: 'passphrase', echo: false},
		});
		expect(urgentChange(base, asking)).toBe(true);
	});
});
