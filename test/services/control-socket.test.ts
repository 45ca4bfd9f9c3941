import {execFileSync} from 'node:child_process';
import {existsSync, lstatSync, statSync} from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import {afterEach, describe, expect, test} from 'vitest';
import {
	initialHop,
	initialState,
	reduce,
	type AppAction,
	type AppState,
} from '../../source/core/app-state.js';
import type {JsonEvent} from '../../source/core/events.js';
import {createStore, type Store} from '../../source/core/store.js';
import {
	AlreadyRunningError,
	ControlError,
	requestControl,
	startControlServer,
	subscribeControl,
	type ControlHandlers,
} from '../../source/services/control-socket.js';
import {ControlConnection} from '../../source/services/control-connection.js';
import {tempDir} from '../helpers/ports.js';
import {waitFor} from '../helpers/wait-for.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
	for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(handlers: Partial<ControlHandlers> = {}) {
	const dir = await tempDir('ctl');
	cleanups.push(async () => dir.dispose());
	const socketPath = path.join(dir.path, 'state', 'default', 'host.sock');
	const store: Store<AppState, AppAction> = createStore(
		reduce,
		initialState({
			role: 'host',
			title: 'gpu',
			hops: [initialHop('reverse', 'relay (listening :1)')],
		}),
	);
	const calls: string[] = [];
	const server = await startControlServer({
		path: socketPath,
		store,
		handlers: {
			token: handlers.token ?? (() => ({token: 'f'.repeat(48), port: 19508})),
			restartJupyter:
				handlers.restartJupyter ??
				(async () => {
					calls.push('restart');
				}),
			reconnect: handlers.reconnect ?? (() => calls.push('reconnect')),
		},
	});
	cleanups.push(async () => server.dispose());
	return {dir, socketPath, store, server, calls};
}

/** Send raw lines and collect the reply lines (one per request). */
async function raw(socketPath: string, lines: string[]): Promise<unknown[]> {
	const socket = net.connect({path: socketPath});
	cleanups.push(() => void socket.destroy());
	let text = '';
	socket.setEncoding('utf8');
	socket.on('data', (chunk: string) => (text += chunk));
	socket.write(lines.map((l) => `${l}\n`).join(''));
	await waitFor(() => text.split('\n').filter(Boolean).length >= lines.length, {
		message: 'replies',
	});
	return text
		.split('\n')
		.filter(Boolean)
		.map((l) => JSON.parse(l) as unknown);
}

describe('control socket', () => {
	test('is a 0600 socket in a 0700 directory and answers status, token, reconnect, restart-jupyter', async () => {
		const {socketPath, calls} = await setup();
		expect(lstatSync(socketPath).isSocket()).toBe(true);
		expect(statSync(socketPath).mode & 0o777).toBe(0o600);
		expect(statSync(path.dirname(socketPath)).mode & 0o777).toBe(0o700);

		const status = (await requestControl(socketPath, 'status')) as Record<string, unknown>;
		expect(status).toMatchObject({
			ok: false,
			pid: process.pid,
			role: 'host',
			profile: 'default',
			jupyter: null,
			hops: [{type: 'hop', hop: 'reverse', state: 'connecting', attempt: 0}],
		});
		// This process's workarounds: Ink's only once a dashboard applied it.
		expect(status['workarounds']).toEqual([
			expect.objectContaining({name: 'ssh2-window', active: true}),
			expect.objectContaining({name: 'ssh2-ping', active: true}),
			expect.objectContaining({name: 'ink-output-cache', active: false}),
			expect.objectContaining({name: 'ink-widest-line', active: false}),
			expect.objectContaining({name: 'ssh2-demo-server', active: true}),
		]);
		expect(await requestControl(socketPath, 'token')).toEqual({token: 'f'.repeat(48), port: 19508});
		expect(await requestControl(socketPath, 'reconnect')).toBeNull();
		expect(await requestControl(socketPath, 'restart-jupyter')).toBeNull();
		expect(calls).toEqual(['reconnect', 'restart']);
	});

	test('errors: unknown version names the supported one; bad op; bad JSON; handler failure; no token', async () => {
		const {socketPath} = await setup({
			token: () => null,
			restartJupyter: async () => {
				throw new Error('port 19508 is busy');
			},
		});
		const replies = await raw(socketPath, [
			'{"v":2,"id":7,"op":"status"}',
			'{"v":1,"id":8,"op":"explode"}',
			'not json',
			'{"v":1,"id":9,"op":"restart-jupyter"}',
		]);
		expect(replies).toEqual([
			{
				v: 1,
				id: 7,
				ok: false,
				error: 'unsupported protocol version 2; this gpujup speaks v1',
			},
			{
				v: 1,
				id: 8,
				ok: false,
				error:
					'unknown op "explode"; known: status, subscribe, restart-jupyter, stop-jupyter, reconnect, token, kernels, kernel-action',
			},
			{v: 1, id: null, ok: false, error: 'not a JSON line'},
			{v: 1, id: 9, ok: false, error: 'port 19508 is busy'},
		]);
		await expect(requestControl(socketPath, 'token')).rejects.toThrow(ControlError);
		await expect(requestControl(socketPath, 'token')).rejects.toThrow(/Jupyter is not running/);
	});

	test('subscribe streams the whole state first, then the changes, each with `at`', async () => {
		const {socketPath, store} = await setup();
		// A hop that has not tried yet is no news (no event); its first attempt is.
		store.dispatch({type: 'hop', hop: 'reverse', patch: {attempt: 1}});
		const events: JsonEvent[] = [];
		const subscription = subscribeControl(socketPath, (event) => events.push(event));
		cleanups.push(() => subscription.dispose());
		await waitFor(() => events.length >= 1, {message: 'snapshot'});
		expect(events[0]).toMatchObject({type: 'hop', hop: 'reverse', state: 'connecting', attempt: 1});
		expect(events[0]!.at).toMatch(/^\d{4}-\d\d-\d\dT/);

		store.dispatch({type: 'hop', hop: 'reverse', patch: {state: 'ready', readySince: Date.now()}});
		store.dispatch({type: 'log', lines: ['[I] hello']});
		await waitFor(() => events.length >= 3, {message: 'changes'});
		expect(events.slice(1).map(({at: _at, ...rest}) => rest)).toEqual([
			{
				type: 'hop',
				hop: 'reverse',
				index: 0,
				name: 'relay (listening :1)',
				state: 'ready',
				attempt: 1,
				reconnects: 0,
				rttMs: null,
				error: null,
			},
			{type: 'log', source: 'jupyter', line: '[I] hello', seq: 1},
		]);
	});

	test('a re-subscribe with logAfter of the same run replays only the newer lines', async () => {
		const {socketPath, store} = await setup();
		store.dispatch({type: 'log', lines: ['one', 'two', 'three']});
		const subscribe = async (logAfter?: {instance: string; seq: number}) => {
			const connection = new ControlConnection(net.connect({path: socketPath}));
			cleanups.push(() => connection.close());
			const lines: Array<{line: string; seq: number | undefined}> = [];
			connection.on('event', (event) => {
				if (event.type === 'log') lines.push({line: event.line, seq: event.seq});
			});
			const result = (await connection.request('subscribe', 5000, logAfter ? {logAfter} : {})) as {
				instance: string;
				logSeq: number;
			};
			return {result, lines};
		};

		const first = await subscribe();
		await waitFor(() => first.lines.length >= 3, {message: 'the replay'});
		expect(first.result.logSeq).toBe(3);
		expect(first.lines).toEqual([
			{line: 'one', seq: 1},
			{line: 'two', seq: 2},
			{line: 'three', seq: 3},
		]);
		store.dispatch({type: 'log', lines: ['four']});
		const again = await subscribe({instance: first.result.instance, seq: 2});
		await waitFor(() => again.lines.length >= 2, {message: 'the resumed replay'});
		expect(again.result.instance).toBe(first.result.instance);
		expect(again.lines).toEqual([
			{line: 'three', seq: 3},
			{line: 'four', seq: 4},
		]);
		// Another run's position means nothing here: the whole replay.
		const other = await subscribe({instance: 'another-run', seq: 3});
		await waitFor(() => other.lines.length >= 4, {message: 'the full replay'});
		expect(other.lines.map((l) => l.line)).toEqual(['one', 'two', 'three', 'four']);
	});

	test('notify events carry their number; a re-subscribe of the same run gets the ones it missed, once', async () => {
		const {socketPath, store} = await setup();
		const note = (title: string) => ({
			type: 'notify' as const,
			notification: {kind: 'tunnel-back' as const, title, message: title, notebook: null},
			at: Date.now(),
		});
		store.dispatch(note('before'));
		const subscribe = async (logAfter?: {instance: string; seq: number; notifySeq?: number}) => {
			const connection = new ControlConnection(net.connect({path: socketPath}));
			cleanups.push(() => connection.close());
			const notes: Array<{title: string; seq: number | undefined}> = [];
			connection.on('event', (event) => {
				if (event.type === 'notify') notes.push({title: event.title, seq: event.seq});
			});
			const result = (await connection.request('subscribe', 5000, logAfter ? {logAfter} : {})) as {
				instance: string;
				notifySeq: number;
			};
			return {result, notes, connection};
		};

		// A new reader gets no past notification, but learns where they stand.
		const first = await subscribe();
		expect(first.result.notifySeq).toBe(1);
		store.dispatch(note('while connected'));
		await waitFor(() => first.notes.length >= 1, {message: 'the live notification'});
		expect(first.notes).toEqual([{title: 'while connected', seq: 2}]);
		first.connection.close();

		store.dispatch(note('while away'));
		store.dispatch(note('also while away'));
		const back = await subscribe({instance: first.result.instance, seq: 0, notifySeq: 2});
		await waitFor(() => back.notes.length >= 2, {message: 'the missed notifications'});
		store.dispatch(note('after'));
		await waitFor(() => back.notes.length >= 3, {message: 'the next one'});
		expect(back.notes).toEqual([
			{title: 'while away', seq: 3},
			{title: 'also while away', seq: 4},
			{title: 'after', seq: 5},
		]);
		// Another run's numbers mean nothing here; an older client (no notifySeq) gets none.
		const other = await subscribe({instance: 'another-run', seq: 0, notifySeq: 0});
		const older = await subscribe({instance: first.result.instance, seq: 0});
		store.dispatch(note('last'));
		await waitFor(() => other.notes.length >= 1 && older.notes.length >= 1, {
			message: 'the live one at both',
		});
		expect(other.notes).toEqual([{title: 'last', seq: 6}]);
		expect(older.notes).toEqual([{title: 'last', seq: 6}]);
	});

	test('a second server on a live path is refused, naming the pid; a stale socket file is replaced', async () => {
		const {socketPath, store, server} = await setup();
		const handlers = {
			token: () => null,
			restartJupyter: async () => {},
			reconnect: () => {},
		};
		const second = startControlServer({path: socketPath, store, handlers});
		await expect(second).rejects.toThrow(AlreadyRunningError);
		await expect(startControlServer({path: socketPath, store, handlers})).rejects.toThrow(
			`gpujup host is already running for profile default (pid ${process.pid})`,
		);

		await server.dispose();
		expect(existsSync(socketPath)).toBe(false);
		// A process that died without removing its socket leaves a file nobody answers on.
		execFileSync('/usr/bin/python3', [
			'-c',
			'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])',
			socketPath,
		]);
		expect(lstatSync(socketPath).isSocket()).toBe(true);
		const third = await startControlServer({path: socketPath, store, handlers});
		cleanups.push(async () => third.dispose());
		expect((await requestControl(socketPath, 'status')) as {pid: number}).toMatchObject({
			pid: process.pid,
		});
	});

	test('with nobody serving, requests fail with the connection error', async () => {
		const dir = await tempDir('ctl-none');
		cleanups.push(async () => dir.dispose());
		await expect(requestControl(path.join(dir.path, 'host.sock'), 'status')).rejects.toMatchObject({
			code: 'ENOENT',
		});
	});
});
