import {describe, expect, it} from 'vitest';
import {jupyterLines} from '../../source/components/jupyter-pane.js';
import type {JupyterStatus} from '../../source/core/types.js';

const running: JupyterStatus = {
	state: 'running',
	url: 'http://127.0.0.1:19507/',
	pid: 4343,
	kernels: 0,
	restarts: 0,
	startedAt: null,
	lastActivity: null,
	origin: 'runtime file',
	message: null,
};

const text = (lines: ReturnType<typeof jupyterLines>) =>
	lines.map((segments) => segments.map((s) => s.text).join(''));

describe('Jupyter pane', () => {
	it('lists the GPU host’s servers when there are several, so the user can pick one', () => {
		const lines = text(
			jupyterLines(
				{
					...running,
					servers: [
						{port: 19508, pid: 4242, url: 'http://127.0.0.1:19508/'},
						{port: 19518, pid: 4343, url: 'http://127.0.0.1:19518/'},
					],
				},
				'gpujup host',
				0,
			),
		);
		expect(lines).toContain('servers 19508 (pid 4242) · 19518 (pid 4343)');
	});

	it('says nothing of servers when there is one', () => {
		const lines = text(
			jupyterLines(
				{...running, servers: [{port: 19518, pid: 4343, url: 'http://127.0.0.1:19518/'}]},
				null,
				0,
			),
		);
		expect(lines.some((l) => l.startsWith('servers'))).toBe(false);
	});
});
