import {existsSync, readFileSync} from 'node:fs';
import http from 'node:http';
import {describe, expect, it} from 'vitest';
import {parseRuntimeFiles, pickServer} from '../../source/core/jupyter-runtime.js';
import {startDemoJupyter, type DemoJupyter} from '../../source/demo/jupyter-stand-in.js';
import {tempDir} from '../helpers/ports.js';
import {waitFor} from '../helpers/wait-for.js';

async function get(
	port: number,
	path: string,
	token?: string,
): Promise<{status: number; body: string}> {
	return new Promise((resolve, reject) => {
		const request = http.get(
			{
				host: '127.0.0.1',
				port,
				path,
				agent: false,
				headers: token ? {authorization: `token ${token}`} : {},
			},
			(response) => {
				let body = '';
				response.on('data', (chunk: Buffer) => (body += chunk.toString()));
				response.on('end', () => resolve({status: response.statusCode ?? 0, body}));
			},
		);
		request.on('error', reject);
	});
}

function runtimeServer(jupyter: DemoJupyter) {
	return pickServer(parseRuntimeFiles(jupyter.runtimeFiles()), jupyter.port);
}

describe('the demo Jupyter stand-in', () => {
	it('answers /api/status with the token only, says what it is, and restarts with a new token', async () => {
		const dir = await tempDir('demo-standin');
		const logs: string[] = [];
		const jupyter = await startDemoJupyter({
			dir: dir.path,
			mode: 'stand-in',
			onLog: (line) => logs.push(line),
		});
		try {
			expect(jupyter.kind()).toBe('stand-in');
			const token = jupyter.token();
			expect(runtimeServer(jupyter)).toMatchObject({port: jupyter.port, token, pid: process.pid});
			const status = await get(jupyter.port, '/api/status', token);
			expect(status.status).toBe(200);
			expect(JSON.parse(status.body)).toMatchObject({
				kernels: 0,
				connections: 0,
				started: expect.any(String),
			});
			expect((await get(jupyter.port, '/api/status')).status).toBe(403);
			const page = await get(jupyter.port, `/?token=${token}`);
			expect(page.body).toContain('gpujup demo: Jupyter stand-in');
			expect(page.body).toContain('install jupyter-notebook for the real one');
			expect(logs.join('\n')).toContain('Jupyter stand-in');
			expect(logs.join('\n')).not.toContain(token);

			await jupyter.restart();
			expect(jupyter.restarts()).toBe(1);
			expect(jupyter.token()).not.toBe(token);
			expect((await get(jupyter.port, '/api/status', token)).status).toBe(403);
			expect((await get(jupyter.port, '/api/status', jupyter.token())).status).toBe(200);
			expect(runtimeServer(jupyter)?.token).toBe(jupyter.token());
			expect(logs.some((line) => /restarting Jupyter \(restart 1\)/.test(line))).toBe(true);
		} finally {
			await jupyter.dispose();
			await dir.dispose();
		}
		await expect(get(jupyter.port, '/api/status')).rejects.toThrow(/ECONNREFUSED/);
	});
});

describe.runIf(existsSync('/usr/bin/jupyter'))('the demo real Jupyter', () => {
	it('runs jupyter notebook with the token out of argv, and restarts it as a new process', async () => {
		const dir = await tempDir('demo-real-jupyter');
		const logs: string[] = [];
		const jupyter = await startDemoJupyter({
			dir: dir.path,
			mode: 'real',
			jupyterProgram: '/usr/bin/jupyter',
			onLog: (line) => logs.push(line),
		});
		const pids: number[] = [];
		try {
			expect(jupyter.kind()).toBe('real');
			const first = jupyter.pid()!;
			pids.push(first);
			const token = jupyter.token();
			expect(readFileSync(`/proc/${first}/cmdline`, 'utf8')).not.toContain(token);
			expect(readFileSync(`/proc/${first}/cmdline`, 'utf8')).toContain('--port-retries=0');
			expect((await get(jupyter.port, '/api/status', token)).status).toBe(200);
			await waitFor(() => runtimeServer(jupyter)?.pid === first, {
				message: 'runtime file of the first Jupyter',
			});
			expect(runtimeServer(jupyter)?.token).toBe(token);

			await jupyter.restart();
			const second = jupyter.pid()!;
			pids.push(second);
			expect(second).not.toBe(first);
			// Stopped and reaped: no such process any more.
			expect(existsSync(`/proc/${first}`)).toBe(false);
			await waitFor(() => runtimeServer(jupyter)?.pid === second, {
				message: 'runtime file of the restarted Jupyter',
			});
			expect((await get(jupyter.port, '/api/status', jupyter.token())).status).toBe(200);
			expect(logs.some((line) => line.includes(`Jupyter restarted: pid ${second}`))).toBe(true);
			expect(logs.join('\n')).not.toContain(token);
			expect(logs.join('\n')).not.toContain(jupyter.token());
		} finally {
			await jupyter.dispose();
			await dir.dispose();
		}
		for (const pid of pids) expect(existsSync(`/proc/${pid}`)).toBe(false);
	});
});
