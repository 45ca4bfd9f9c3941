/** --notify-url against a local HTTP receiver (the sanctioned stand-in for an ntfy server). */
import http from 'node:http';
import type {AddressInfo} from 'node:net';
import {afterEach, describe, expect, test} from 'vitest';
import type {Notification} from '../../source/core/kernels.js';
import {headerText, NotifyUrl, safeOrigin} from '../../source/services/notify-url.js';
import {notificationSequences} from '../../source/services/desktop-notify.js';
import {waitFor} from '../helpers/wait-for.js';

type Received = {path: string; title: string | undefined; tags: string | undefined; body: string};

const cellDone: Notification = {
	kind: 'cell-done',
	title: 'Cell finished: train.ipynb',
	message: 'a cell in train.ipynb finished after 2 min 5 s',
	notebook: 'train.ipynb',
};

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
	for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A receiver that answers `statuses` in turn (then 200) and records every request. */
async function receiver(statuses: number[] = []): Promise<{url: string; received: Received[]}> {
	const received: Received[] = [];
	const server = http.createServer((request, response) => {
		let body = '';
		request.setEncoding('utf8');
		request.on('data', (chunk: string) => (body += chunk));
		request.on('end', () => {
			received.push({
				path: request.url ?? '',
				title: request.headers['title'] as string | undefined,
				tags: request.headers['tags'] as string | undefined,
				body,
			});
			response.statusCode = statuses.shift() ?? 200;
			response.end('{}');
		});
	});
	await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
	cleanups.push(async () => new Promise<void>((resolve) => server.close(() => resolve())));
	const {port} = server.address() as AddressInfo;
	return {url: `http://127.0.0.1:${port}/gpujup-secret-topic`, received};
}

describe('--notify-url', () => {
	test('POSTs ntfy format: plain-text body, Title and Tags headers', async () => {
		const {url, received} = await receiver();
		const notifier = new NotifyUrl({url});
		cleanups.push(() => notifier.dispose());
		notifier.send(cellDone);
		await waitFor(() => received.length === 1, {message: 'one POST'});
		expect(received[0]).toEqual({
			path: '/gpujup-secret-topic',
			title: 'Cell finished: train.ipynb',
			tags: 'white_check_mark',
			body: 'a cell in train.ipynb finished after 2 min 5 s',
		});
	});

	test('retries a failing receiver, and never names the secret path in its messages', async () => {
		const {url, received} = await receiver([500, 503]);
		const problems: string[] = [];
		const notifier = new NotifyUrl({url, retryDelayMs: 50, onProblem: (m) => problems.push(m)});
		cleanups.push(() => notifier.dispose());
		notifier.send(cellDone);
		await waitFor(() => notifier.delivered === 1, {message: 'delivered after two failures'});
		expect(received).toHaveLength(3);
		expect(problems).toHaveLength(2);
		expect(problems[0]).toMatch(
			/^notification to http:\/\/127\.0\.0\.1:\d+ failed \(HTTP 500\); retrying/,
		);
		expect(problems.join('\n')).not.toContain('secret');
	});

	test('a receiver that is down keeps at most `capacity` waiting, and says how many were dropped', async () => {
		const {url, received} = await receiver(Array.from({length: 3}, () => 500));
		const problems: string[] = [];
		const notifier = new NotifyUrl({
			url,
			capacity: 5,
			retryDelayMs: 100,
			onProblem: (m) => problems.push(m),
		});
		cleanups.push(() => notifier.dispose());
		for (let i = 0; i < 20; i++) notifier.send({...cellDone, message: `cell ${i}`});
		expect(notifier.pending).toBe(5);
		await waitFor(() => notifier.pending === 0, {message: 'queue drained'});
		expect(
			received
				.filter((r) => r.body.startsWith('cell'))
				.map((r) => r.body)
				.slice(-5),
		).toEqual(['cell 15', 'cell 16', 'cell 17', 'cell 18', 'cell 19']);
		expect(problems.some((p) => /dropped/.test(p))).toBe(true);
	});

	test('non-ASCII titles travel as RFC 2047 words; the origin hides path and credentials', () => {
		expect(headerText('plain')).toBe('plain');
		expect(headerText('Zelle fertig: größe.ipynb')).toBe(
			`=?UTF-8?B?${Buffer.from('Zelle fertig: größe.ipynb').toString('base64')}?=`,
		);
		expect(safeOrigin('https://user:pw@ntfy.example/topic?x=1')).toBe('https://ntfy.example');
	});
});

describe('terminal notifications', () => {
	test('OSC 9 and OSC 777 carry sanitised text and no `;` in the title', () => {
		expect(notificationSequences('Cell; done\u001B]52;c;eA==\u0007', 'ok\u009B2J')).toEqual([
			'\u001B]9;Cell, done: ok\u0007',
			'\u001B]777;notify;Cell, done;ok\u0007',
		]);
	});
});
