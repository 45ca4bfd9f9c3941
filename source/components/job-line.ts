import type {StoredJob} from '../core/app-state.js';
import {formatDuration} from '../core/format.js';
import {jobEndingWarnS} from '../core/slurm.js';
import type {Segment} from './line.js';

/** Seconds of walltime left now: squeue's answer, counted down on the clock since it came. */
export function jobTimeLeftS(job: StoredJob, now: number): number | null {
	if (job.timeLeftS === null) return null;
	return Math.max(0, job.timeLeftS - Math.max(0, now - job.seenAt) / 1000);
}

const gpuWord = (count: number) => `${count} GPU${count === 1 ? '' : 's'}`;

/**
 * `connect --slurm`'s job in one line: `job 4711 PENDING (Resources)`, `job 4711 RUNNING on gpu-07
 * · 2 GPUs · 3h59m left` (warned at 10 minutes), `job 4711 ended (TIMEOUT) · r submits a new one`.
 */
export function jobSegments(job: StoredJob, now: number): Segment[] {
	const head: Segment = {text: `job ${job.id} `, dim: true};
	switch (job.state) {
		case 'PENDING': {
			return [
				head,
				{text: 'PENDING', grade: 'warn'},
				{
					text: `${job.reason ? ` (${job.reason})` : ''}${job.gpus === null ? '' : ` · ${gpuWord(job.gpus)} asked`}`,
				},
			];
		}

		case 'RUNNING':
		case 'COMPLETING': {
			const left = jobTimeLeftS(job, now);
			const ending = left !== null && left <= jobEndingWarnS;
			return [
				head,
				{text: job.state, grade: job.state === 'RUNNING' ? 'good' : 'warn'},
				{text: ` on ${job.node ?? '?'}${job.gpus === null ? '' : ` · ${gpuWord(job.gpus)}`}`},
				...(left === null
					? []
					: [
							{text: ' · '},
							{
								text: `${formatDuration(left * 1000)} left${ending ? ': save your work' : ''}`,
								grade: ending ? ('warn' as const) : null,
							},
						]),
			];
		}

		case 'ENDED': {
			return [
				head,
				{text: `ended${job.reason ? ` (${job.reason})` : ''}`, grade: 'bad'},
				{text: ' · r submits a new one'},
			];
		}
	}
}
