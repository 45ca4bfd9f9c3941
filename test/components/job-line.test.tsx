import {cleanup, render} from 'ink-testing-library';
import {afterEach, describe, expect, test} from 'vitest';
import {jobSegments} from '../../source/components/job-line.js';
import {PathPane} from '../../source/components/path-pane.js';
import type {StoredJob} from '../../source/core/app-state.js';
import {laptopState, minute, now, readyHost, readyRelay, segmentsText} from './fixtures.js';

afterEach(() => {
	cleanup();
});

const job = (patch: Partial<StoredJob>): StoredJob => ({
	id: '4711',
	state: 'RUNNING',
	reason: null,
	node: 'gpu-07',
	gpus: 2,
	timeLeftS: 4 * 3600,
	seenAt: now,
	onQuit: 'ask',
	...patch,
});

describe('the Slurm job line', () => {
	test('pending with Slurm’s reason; running on its node with the time left counting down', () => {
		expect(
			segmentsText(
				jobSegments(job({state: 'PENDING', reason: 'Resources', node: null, timeLeftS: null}), now),
			),
		).toBe('job 4711 PENDING (Resources) · 2 GPUs asked');
		expect(segmentsText(jobSegments(job({}), now))).toBe(
			'job 4711 RUNNING on gpu-07 · 2 GPUs · 4h0m left',
		);
		// Between two squeue answers the time left counts down on the clock.
		expect(segmentsText(jobSegments(job({}), now + 90 * minute))).toBe(
			'job 4711 RUNNING on gpu-07 · 2 GPUs · 2h30m left',
		);
		const ending = jobSegments(job({timeLeftS: 540, gpus: 1}), now);
		expect(segmentsText(ending)).toBe(
			'job 4711 RUNNING on gpu-07 · 1 GPU · 9m left: save your work',
		);
		expect(ending.some((segment) => segment.grade === 'warn')).toBe(true);
		const ended = jobSegments(job({state: 'ENDED', reason: 'TIMEOUT', timeLeftS: null}), now);
		expect(segmentsText(ended)).toBe('job 4711 ended (TIMEOUT) · r submits a new one');
		expect(ended.some((segment) => segment.grade === 'bad')).toBe(true);
	});

	test('the Path pane shows it under the hops, wide and at 80 columns', () => {
		const state = {...laptopState({hops: [readyRelay, readyHost]}), job: job({})};
		const wide = render(
			<PathPane state={state} now={now} width={100} height={6} compact={false} focused={false} />,
		).lastFrame()!;
		expect(wide.split('\n')[4]).toContain('job 4711 RUNNING on gpu-07 · 2 GPUs · 4h0m left');
		const compact = render(
			<PathPane state={state} now={now} width={80} height={2} compact focused={false} />,
		).lastFrame()!;
		expect(compact.split('\n')[1]).toBe('  job 4711 RUNNING on gpu-07 · 2 GPUs · 4h0m left');
	});
});
