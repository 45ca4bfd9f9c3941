import {describe, expect, it} from 'vitest';
import {initialHop, initialState, reduce, type AppState} from '../../source/core/app-state.js';

const evil = (word: string) => `${word}\u001B]52;c;ZXZpbA==\u0007\u001B[2J\u009B7777X!`;
// eslint-disable-next-line no-control-regex
const unclean = /[\u0000-\u001F\u007F-\u009F]|52;c;|7777X/;

const start = (): AppState =>
	initialState({role: 'connect', title: 'me', hops: [initialHop('host', 'gpu-host')]});

describe('the store sanitises every remote string where it enters', () => {
	it('hop errors and labels, GPU and process names, Jupyter messages, logs, title, source, notices, prompts', () => {
		let state = start();
		state = reduce(state, {
			type: 'hop',
			hop: 'host',
			patch: {error: {kind: 'closed', message: evil('bye')}, label: evil('p507')},
		});
		state = reduce(state, {
			type: 'gpu',
			gpu: {
				gpus: [
					{
						index: 0,
						uuid: evil('GPU-1'),
						name: evil('H100'),
						busId: evil('00:01'),
						mig: false,
						utilizationGpu: 5,
						memoryUsedMiB: 1,
						memoryTotalMiB: 2,
						temperatureC: null,
						powerW: null,
						powerLimitW: null,
						fanPercent: null,
					},
				],
				processes: [
					{gpuUuid: 'GPU-1', pid: 7, user: evil('eve'), command: evil('python'), usedMemoryMiB: 1},
				],
				error: {kind: 'failed', message: evil('nvidia-smi')},
				driverVersion: evil('535'),
				simulated: false,
			},
		});
		state = reduce(state, {
			type: 'jupyter',
			jupyter: {
				state: 'exited',
				url: null,
				pid: null,
				kernels: null,
				restarts: 0,
				startedAt: null,
				lastActivity: null,
				origin: null,
				message: evil('crash'),
			},
		});
		state = reduce(state, {type: 'log', lines: [evil('line')]});
		state = reduce(state, {type: 'title', title: evil('p507')});
		state = reduce(state, {type: 'source', source: evil('exec fallback')});
		state = reduce(state, {type: 'notice', notice: {text: evil('note'), level: 'error', at: 1}});
		state = reduce(state, {
			type: 'prompt',
			prompt: {kind: 'secret', id: 1, hop: 'host', message: evil('Password:'), echo: false},
		});
		const strings = JSON.stringify(state, (_key, value: unknown) =>
			typeof value === 'string' && unclean.test(value) ? `UNCLEAN:${value}` : value,
		);
		expect(strings).not.toContain('UNCLEAN');
		expect(state.hops[0]!.error!.message).toBe('bye!');
		expect(state.gpu!.gpus[0]!.name).toBe('H100!');
		expect(state.gpu!.processes[0]!.user).toBe('eve!');
		expect(state.jupyter!.message).toBe('crash!');
		expect(state.logs).toEqual(['line!']);
		expect(state.prompt).toMatchObject({message: 'Password:!'});
	});

	it('a clean hop error keeps its identity, so an unchanged patch is no new state', () => {
		const error = {kind: 'closed', message: 'bye'} as const;
		const once = reduce(start(), {type: 'hop', hop: 'host', patch: {error}});
		expect(reduce(once, {type: 'hop', hop: 'host', patch: {error}})).toBe(once);
	});
});
