import {describe, expect, it} from 'vitest';
import {initialHop, initialState, reduce} from '../../source/core/app-state.js';
import {
	decodeEvent,
	decodeReply,
	decodeStatus,
	decodeToken,
} from '../../source/core/control-decode.js';
import {parseServerLine} from '../../source/core/control-protocol.js';
import {diffEvents, statusObject} from '../../source/core/events.js';

const at = '2026-01-01T00:00:00.000Z';

/** A state with every kind of event in it. */
const busy = () => {
	let state = initialState({role: 'host', title: 't', hops: [initialHop('reverse', 'relay')]});
	state = reduce(state, {
		type: 'hop',
		hop: 'reverse',
		patch: {state: 'waiting', error: {kind: 'timeout', message: 'slow'}, rttMs: 3.5},
	});
	state = reduce(state, {
		type: 'forward',
		forward: {
			local: '127.0.0.1:1',
			remote: '127.0.0.1:2',
			state: 'listening',
			connections: 0,
			label: 'j',
		},
	});
	state = reduce(state, {
		type: 'jupyter',
		jupyter: {
			state: 'running',
			url: 'http://127.0.0.1:1/',
			pid: 9,
			kernels: 2,
			restarts: 0,
			startedAt: null,
			lastActivity: null,
			origin: null,
			message: null,
		},
	});
	state = reduce(state, {
		type: 'gpu',
		gpu: {
			gpus: [
				{
					index: 0,
					uuid: 'GPU-1',
					name: 'H100',
					busId: null,
					mig: false,
					utilizationGpu: null,
					memoryUsedMiB: 1,
					memoryTotalMiB: 2,
					temperatureC: 30,
					powerW: null,
					powerLimitW: null,
					fanPercent: null,
				},
			],
			processes: [{gpuUuid: 'GPU-1', pid: 7, user: null, command: 'python', usedMemoryMiB: 1}],
			error: null,
			driverVersion: null,
			simulated: false,
		},
	});
	state = reduce(state, {
		type: 'host-stats',
		host: {cpuPercent: 5, memoryUsedMiB: 1, memoryTotalMiB: 2},
	});
	return reduce(state, {type: 'log', lines: ['[I] up']});
};

describe('decodeEvent', () => {
	it('takes back every event the writers make, unchanged', () => {
		const events = [
			...diffEvents(null, busy()),
			{type: 'error', kind: 'overflow', message: '3 events dropped'} as const,
		].map((event) => ({...event, at}));
		expect(events.map((e) => e.type)).toEqual([
			'hop',
			'forward',
			'jupyter',
			'gpu',
			'host',
			'log',
			'error',
		]);
		for (const event of events) expect(decodeEvent(event)).toEqual({ok: true, value: event});
	});

	it('refuses other shapes, naming the field, and unknown types', () => {
		expect(decodeEvent({type: 'gpu', gpus: 'x', processes: [], error: null, at})).toEqual({
			ok: false,
			message: 'the gpu event.gpus should be an array, not string',
		});
		expect(decodeEvent({type: 'hop', hop: 'relay', state: 'exploded', at})).toMatchObject({
			ok: false,
			message: expect.stringContaining('the hop event.state should be one of connecting'),
		});
		expect(decodeEvent({type: 'log', source: 'jupyter', line: 'x'})).toMatchObject({
			ok: false,
			message: 'the log event.at should be a string, not undefined',
		});
		expect(decodeEvent({type: 'teleport'})).toMatchObject({ok: false});
		expect(decodeEvent(5)).toMatchObject({ok: false});
		expect(decodeEvent(null)).toMatchObject({ok: false});
	});

	it('hands back clean strings', () => {
		const decoded = decodeEvent({
			type: 'log',
			source: 'jupyter',
			line: 'a\u001B]52;c;ZXZpbA==\u0007b',
			at,
		});
		expect(decoded).toMatchObject({ok: true, value: {line: 'ab'}});
	});
});

describe('parseServerLine', () => {
	it('drops what is malformed (the connection goes on); another version ends it', () => {
		expect(parseServerLine('not json').kind).toBe('dropped');
		expect(parseServerLine('[1]').kind).toBe('dropped');
		expect(parseServerLine('{"v":1,"event":{"type":"gpu"}}').kind).toBe('dropped');
		expect(parseServerLine('{"v":1}').kind).toBe('dropped');
		expect(parseServerLine('{"v":2,"event":{}}').kind).toBe('invalid');
		expect(parseServerLine('{"v":1,"id":3,"ok":false,"error":"no\\u001b[2J"}')).toEqual({
			kind: 'reply',
			reply: {v: 1, id: 3, ok: false, error: 'no'},
		});
	});
});

describe('decodeStatus and decodeToken', () => {
	it('status: the status object and who answers; wrong shapes refused', () => {
		const status = {...statusObject(busy()), pid: 4, role: 'host', profile: 'default'};
		expect(decodeStatus(status)).toEqual({ok: true, value: status});
		expect(decodeStatus({...status, hops: {}})).toMatchObject({ok: false});
	});

	it('status: the workarounds of who answers, absent from an older gpujup', () => {
		const status = {...statusObject(busy()), pid: 4, role: 'host', profile: 'default'};
		const workarounds = [{name: 'ssh2-ping', active: false, detail: 'moved\u001B[2J'}];
		expect(decodeStatus({...status, workarounds})).toMatchObject({
			ok: true,
			value: {workarounds: [{name: 'ssh2-ping', active: false, detail: 'moved'}]},
		});
		expect(decodeStatus(status)).toMatchObject({ok: true, value: {workarounds: undefined}});
		expect(decodeStatus({...status, workarounds: [{name: 'x', active: 'yes'}]})).toMatchObject({
			ok: false,
		});
	});

	it('token: a non-empty string and a port', () => {
		expect(decodeToken({token: 'abc', port: 19508})).toEqual({
			ok: true,
			value: {token: 'abc', port: 19508},
		});
		expect(decodeToken({token: '', port: 19508})).toMatchObject({ok: false});
		expect(decodeToken({token: 'abc', port: '19508\u001B[2J'})).toMatchObject({ok: false});
		expect(decodeToken(null)).toMatchObject({ok: false});
	});
});

describe('decodeReply: every op read through its own guard', () => {
	it('status, token and kernels use their decoders; a wrong shape names the field', () => {
		const status = {...statusObject(busy()), pid: 4, role: 'host', profile: 'default'};
		expect(decodeReply('status', status)).toEqual({ok: true, value: status});
		expect(decodeReply('token', {token: 'abc', port: 19508})).toEqual({
			ok: true,
			value: {token: 'abc', port: 19508},
		});
		expect(decodeReply('kernels', {kernels: [], gpus: [{index: 0, uuid: 'GPU-1'}]})).toEqual({
			ok: true,
			value: {kernels: [], gpus: [{index: 0, uuid: 'GPU-1'}]},
		});
		expect(decodeReply('kernels', {kernels: {}, gpus: []})).toEqual({
			ok: false,
			message: 'the kernels.kernels should be an array, not object',
		});
	});

	it('fields an older gpujup may leave out read as null; the ops without a result as null', () => {
		expect(decodeReply('subscribe', {instance: 'ab12', logSeq: 3, notifySeq: 2})).toEqual({
			ok: true,
			value: {instance: 'ab12', logSeq: 3, notifySeq: 2},
		});
		expect(decodeReply('subscribe', {instance: 'ab12', logSeq: 3})).toEqual({
			ok: true,
			value: {instance: 'ab12', logSeq: 3, notifySeq: null},
		});
		expect(decodeReply('subscribe', null)).toEqual({
			ok: true,
			value: {instance: null, logSeq: null, notifySeq: null},
		});
		expect(decodeReply('stop-jupyter', {pid: 42})).toEqual({ok: true, value: {pid: 42}});
		expect(decodeReply('stop-jupyter', {})).toEqual({ok: true, value: {pid: null}});
		expect(decodeReply('reconnect', {anything: 1})).toEqual({ok: true, value: null});
		expect(decodeReply('restart-jupyter', null)).toEqual({ok: true, value: null});
	});

	it("kernel-action's message is sanitised and cut to 200 characters", () => {
		expect(decodeReply('kernel-action', {message: `done\u001B[2J${'x'.repeat(300)}`})).toEqual({
			ok: true,
			value: {message: `done${'x'.repeat(196)}`},
		});
		expect(decodeReply('kernel-action', null)).toEqual({ok: true, value: {message: null}});
	});
});
