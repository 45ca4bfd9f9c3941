/**
 * `connect --slurm`'s job in the JSON contract: `job` events when the job changes, `job` in
 * `status --json`, and the guards that read them back from a running gpujup.
 */
import {describe, expect, test} from 'vitest';
import {initialHop, initialState, reduce, type StoredJob} from '../../source/core/app-state.js';
import {decodeEvent, decodeStatus} from '../../source/core/control-decode.js';
import {diffEvents, statusObject} from '../../source/core/events.js';

const base = () =>
	initialState({
		role: 'connect',
		title: '',
		hops: [initialHop('relay', 'login'), initialHop('host', 'node')],
	});

const job = (patch: Partial<StoredJob> = {}): StoredJob => ({
	id: '4711',
	state: 'PENDING',
	reason: 'Resources',
	node: null,
	gpus: 1,
	timeLeftS: null,
	seenAt: 0,
	onQuit: 'ask',
	...patch,
});

describe('job events', () => {
	test('an event when the job changes; its time left only when a minute more has passed', () => {
		const pending = reduce(base(), {type: 'job', job: job()});
		expect(diffEvents(base(), pending)).toEqual([
			{
				type: 'job',
				id: '4711',
				state: 'PENDING',
				reason: 'Resources',
				node: null,
				gpus: 1,
				timeLeftS: null,
			},
		]);
		// Seen again by the next poll, unchanged: no news.
		expect(diffEvents(pending, reduce(pending, {type: 'job', job: job({seenAt: 5000})}))).toEqual(
			[],
		);
		const running = reduce(pending, {
			type: 'job',
			job: job({state: 'RUNNING', reason: null, node: 'gpu-07', timeLeftS: 3599, seenAt: 10_000}),
		});
		expect(diffEvents(pending, running)).toMatchObject([
			{type: 'job', state: 'RUNNING', node: 'gpu-07', timeLeftS: 3599},
		]);
		// Every poll sees the time left go down by a few seconds: a line when its minute changes.
		const later = reduce(running, {
			type: 'job',
			job: job({state: 'RUNNING', reason: null, node: 'gpu-07', timeLeftS: 3595, seenAt: 15_000}),
		});
		expect(diffEvents(running, later)).toEqual([]);
		const minute = reduce(later, {
			type: 'job',
			job: job({state: 'RUNNING', reason: null, node: 'gpu-07', timeLeftS: 3539, seenAt: 71_000}),
		});
		expect(diffEvents(later, minute)).toMatchObject([{type: 'job', timeLeftS: 3539}]);
		// status --json has the job as last seen; a client reads it back, and the event too.
		const status = statusObject(later);
		expect(status.job).toEqual({
			id: '4711',
			state: 'RUNNING',
			reason: null,
			node: 'gpu-07',
			gpus: 1,
			timeLeftS: 3595,
		});
		expect(
			decodeStatus(JSON.parse(JSON.stringify({...status, pid: 1, role: 'connect', profile: 'p'}))),
		).toMatchObject({ok: true, value: {job: status.job}});
		expect(statusObject(base()).job).toBeNull();
		const event = diffEvents(pending, running)[0]!;
		expect(decodeEvent({...event, at: '2026-01-01T00:00:00.000Z'})).toMatchObject({
			ok: true,
			value: {type: 'job', node: 'gpu-07'},
		});
	});

	test('remote words in the job pass the store’s sanitiser', () => {
		const state = reduce(base(), {
			type: 'job',
			job: job({reason: 'QOS\u001b[31mMax', node: 'n\u009b1'}),
		});
		for (const text of [state.job?.reason, state.job?.node]) {
			expect(text).not.toContain('\u001b');
			expect(text).not.toContain('\u009b');
		}
	});
});
