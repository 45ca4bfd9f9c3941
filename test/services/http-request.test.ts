import http from 'node:http';
import type {AddressInfo} from 'node:net';
import {afterEach, describe, expect, test} from 'vitest';
import {httpRequest, HttpTimeoutError} from '../../source/services/http-request.js';
import {KernelMonitor} from '../../source/services/kernel-monitor.js';
import {NotifyUrl} from '../../source/services/notify-url.js';
import {waitFor} from '../helpers/wait-for.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
	for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

type Seen = {method: string; path: string; headers: http.IncomingHttpHeaders; body: string};

async function server(
	answer: (seen: Seen, response: http.ServerResponse) => void,
): Promise<{base: string; seen: Seen[]}> {
	const seen: Seen[] = [];
	const s = http.createServer((request, response) => {
		let body = '';
		request.setEncoding('utf8');
		request.on('data', (chunk: string) => (body += chunk));
		request.on('end', () => {
			const entry = {
				method: request.method ?? '',
				path: request.url ?? '',
				headers: request.headers,
				body,
			};
			seen.push(entry);
			answer(entry, response);
		});
	});
	await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
	cleanups.push(
		async () =>
			new Promise<void>((resolve) => {
				s.closeAllConnections();
				s.close(() => resolve());
			}),
	);
	return {base: `http://127.0.0.1:${(s.address() as AddressInfo).port}`, seen};
}

/** Node's fetch loads undici (and its HTTP/2, TLS and web streams) on first use: ~14 MB. */
const undiciLoaded = () =>
	(process as unknown as {moduleLoadList: string[]}).moduleLoadList.some((name) =>
		name.includes('undici'),
	);

describe('httpRequest', () => {
	test('GET and POST with headers and a body; the status and the body come back', async () => {
		const {base, seen} = await server((entry, response) => {
			response.statusCode = entry.method === 'POST' ? 201 : 200;
			response.end(JSON.stringify({got: entry.body}));
		});
		expect(await httpRequest(`${base}/api/kernels`, {timeoutMs: 5000})).toEqual({
			status: 200,
			body: '{"got":""}',
		});
		const posted = await httpRequest(`${base}/api/kernels/k1/interrupt`, {
			method: 'POST',
			headers: {authorization: 'token t0k3n', 'content-type': 'application/json'},
			body: '{"é":1}',
			timeoutMs: 5000,
		});
		expect(posted).toEqual({status: 201, body: JSON.stringify({got: '{"é":1}'})});
		expect(seen[1]).toMatchObject({
			method: 'POST',
			path: '/api/kernels/k1/interrupt',
			headers: {
				authorization: 'token t0k3n',
				'content-length': String(Buffer.byteLength('{"é":1}')),
			},
		});
	});

	test('a server that never answers is a timeout naming the request; a redirect is not followed', async () => {
		const {base} = await server((entry, response) => {
			if (entry.path === '/moved') {
				response.statusCode = 302;
				response.setHeader('location', '/elsewhere');
				response.end();
			}
			// Anything else: never answered.
		});
		await expect(httpRequest(`${base}/api/sessions`, {timeoutMs: 300})).rejects.toThrow(
			HttpTimeoutError,
		);
		await expect(httpRequest(`${base}/api/sessions`, {timeoutMs: 300})).rejects.toThrow(
			'GET /api/sessions: no answer within 0 s',
		);
		expect((await httpRequest(`${base}/moved`, {timeoutMs: 5000})).status).toBe(302);
	});

	test('nothing listening: the connection error', async () => {
		const {base} = await server(() => {});
		const port = Number(new URL(base).port);
		await cleanups.pop()!();
		await expect(httpRequest(`http://127.0.0.1:${port}/`, {timeoutMs: 5000})).rejects.toThrow(
			/ECONNREFUSED/,
		);
	});

	test('notifications go out without loading fetch’s undici', async () => {
		expect(undiciLoaded()).toBe(false);
		const {base, seen} = await server((_entry, response) => response.end());
		const notify = new NotifyUrl({url: `${base}/gpujup`});
		cleanups.push(() => notify.dispose());
		notify.send({
			kind: 'kernel-died',
			title: 'Kernel died',
			message: 'train.ipynb',
			notebook: null,
		});
		await waitFor(() => seen.length === 1, {message: 'the POST'});
		expect(seen[0]).toMatchObject({method: 'POST', path: '/gpujup', body: 'train.ipynb'});
		expect(undiciLoaded()).toBe(false);
	});

	test('the kernel monitor reads and acts on Jupyter’s REST API without loading fetch’s undici', async () => {
		expect(undiciLoaded()).toBe(false);
		const kernel = {
			id: 'k1',
			name: 'python3',
			execution_state: 'idle',
			last_activity: new Date().toISOString(),
			connections: 0,
		};
		const {base, seen} = await server((entry, response) => {
			response.setHeader('content-type', 'application/json');
			if (entry.path === '/api/kernels') response.end(JSON.stringify([kernel]));
			else if (entry.path === '/api/sessions')
				response.end(JSON.stringify([{path: 'train.ipynb', kernel}]));
			else if (entry.path === '/api/kernels/k1/interrupt') {
				response.statusCode = 204;
				response.end();
			} else {
				response.statusCode = 404;
				response.end('{}');
			}
		});
		const port = Number(new URL(base).port);
		let listed = 0;
		const monitor = new KernelMonitor({
			server: () => ({port, token: 't0k3n'}),
			gpuProcesses: () => [],
			onKernels(kernels) {
				listed = kernels.length;
			},
			onNotify() {},
			readProcs: async () => ({at: Date.now(), ticksPerSecond: 100, processes: []}),
		});
		cleanups.push(() => monitor.dispose());
		monitor.start();
		await waitFor(() => listed === 1, {message: 'the kernel listed'});
		expect(await monitor.act('k1', 'interrupt')).toBe('interrupted train.ipynb');
		expect(seen.find((e) => e.method === 'POST')?.headers['authorization']).toBe('token t0k3n');
		expect(undiciLoaded()).toBe(false);
	});
});
