import {describe, expect, test} from 'vitest';
import {
	type ChannelMessage,
	channelMessage,
	channelOpened,
	channelState,
	closedChannel,
	parseChannelMessage,
	probeWaitMs,
} from '../../source/core/kernel-channel.js';
import type {RestKernel} from '../../source/core/kernels.js';

const rest = (state: RestKernel['state']): RestKernel => ({
	id: 'k1',
	name: 'python3',
	notebook: 'a.ipynb',
	state,
	lastActivity: null,
	connections: 2,
});

const status = (
	executionState: string,
	parentType: string | null,
	parentId: string | null,
): ChannelMessage => ({
	channel: 'iopub',
	msgType: 'status',
	parentId,
	parentType,
	executionState,
});

const frame = (msgType: string, parent: Record<string, string>, content: object) =>
	JSON.stringify({
		header: {msg_id: 'm', msg_type: msgType},
		parent_header: parent,
		metadata: {},
		content,
		channel: 'iopub',
	});

describe('parseChannelMessage', () => {
	test('reads a status with its parent request', () => {
		expect(
			parseChannelMessage(
				frame('status', {msg_id: 'e1', msg_type: 'execute_request'}, {execution_state: 'busy'}),
			),
		).toEqual({
			channel: 'iopub',
			msgType: 'status',
			parentId: 'e1',
			parentType: 'execute_request',
			executionState: 'busy',
		});
	});

	test('skips outputs, even ones that print the word status, and bad JSON', () => {
		expect(parseChannelMessage(frame('stream', {}, {text: 'status'}))).toBeNull();
		expect(parseChannelMessage(frame('stream', {}, {text: '"status"'}))).toBeNull();
		expect(parseChannelMessage('{"status"')).toBeNull();
	});
});

const probeReply: ChannelMessage = {
	channel: 'shell',
	msgType: 'kernel_info_reply',
	parentId: 'probe',
	parentType: 'kernel_info_request',
	executionState: null,
};

describe('channel view', () => {
	const t0 = 1_000_000;
	const open = channelMessage(
		channelOpened('probe', t0),
		{...status('idle', 'kernel_info_request', 'probe')},
		t0 + 5,
	);

	test('a closed channel leaves the state to REST', () => {
		expect(channelState(rest('idle'), closedChannel, t0)).toEqual({
			state: 'idle',
			since: null,
		});
		expect(channelState(rest('busy'), closedChannel, t0)).toEqual({
			state: 'busy',
			since: null,
		});
	});

	test('a prompt answer to the probe: idle, since unknown', () => {
		expect(open.probeId).toBeNull();
		expect(channelState(rest('idle'), open, t0 + 10)).toEqual({state: 'idle', since: null});
	});

	test('a control request mid-cell does not end the cell; the execute idle does', () => {
		let view = channelMessage(open, status('busy', 'execute_request', 'e1'), t0 + 100);
		view = channelMessage(view, status('busy', 'kernel_info_request', 'c1'), t0 + 200);
		view = channelMessage(view, status('idle', 'kernel_info_request', 'c1'), t0 + 210);
		expect(channelState(rest('idle'), view, t0 + 300)).toEqual({
			state: 'busy',
			since: t0 + 100,
		});
		view = channelMessage(view, status('idle', 'execute_request', 'e1'), t0 + 5000);
		expect(channelState(rest('idle'), view, t0 + 5100)).toEqual({
			state: 'idle',
			since: t0 + 5000,
		});
	});

	test('queued cells stay one busy run', () => {
		let view = channelMessage(open, status('busy', 'execute_request', 'e1'), t0 + 100);
		view = channelMessage(view, status('busy', 'execute_request', 'e2'), t0 + 150);
		view = channelMessage(view, status('idle', 'execute_request', 'e1'), t0 + 200);
		expect(channelState(rest('busy'), view, t0 + 250)).toEqual({
			state: 'busy',
			since: t0 + 100,
		});
	});

	test('an unanswered probe past its wait is a cell the monitor did not see start', () => {
		const waiting = channelOpened('probe', t0);
		// Not yet late: nothing known (REST may say busy for this websocket's own nudge).
		expect(channelState(rest('busy'), waiting, t0 + probeWaitMs - 1)).toEqual({state: 'before'});
		expect(channelState(rest('idle'), waiting, t0 + probeWaitMs)).toEqual({
			state: 'busy',
			since: null,
		});
		// That cell's own idle (an execute the view never saw start), then the probe's answer.
		const ended = channelMessage(waiting, status('idle', 'execute_request', 'e0'), t0 + 9000);
		const answered = channelMessage(ended, probeReply, t0 + 9001);
		expect(channelState(rest('idle'), answered, t0 + 9100)).toEqual({
			state: 'idle',
			since: t0 + 9000,
		});
	});

	test('a late answer with no cell ending before it: idle all along, no cell ended', () => {
		const slow = channelMessage(channelOpened('probe', t0), probeReply, t0 + 3000);
		expect(channelState(rest('idle'), slow, t0 + 3100)).toEqual({state: 'idle', since: 'before'});
		const next = channelMessage(slow, status('busy', 'execute_request', 'e1'), t0 + 4000);
		expect(channelState(rest('busy'), next, t0 + 4100)).toEqual({
			state: 'busy',
			since: t0 + 4000,
		});
	});

	test("REST's starting stands until the kernel answered on the channel, not after", () => {
		const waiting = channelOpened('probe', t0);
		expect(waiting.live).toBe(false);
		expect(channelState(rest('starting'), waiting, t0 + 10)).toEqual({
			state: 'starting',
			since: null,
		});
		// Jupyter's own watcher can keep saying starting after the kernel answered.
		expect(open.live).toBe(true);
		expect(channelState(rest('starting'), open, t0 + 10)).toEqual({state: 'idle', since: null});
		const nudged = channelMessage(waiting, status('busy', 'kernel_info_request', 'n1'), t0 + 20);
		expect(nudged.live).toBe(true);
		expect(nudged.probeId).toBe('probe');
	});

	test('a restart drops what ran; starting and dead come from REST', () => {
		const busy = channelMessage(open, status('busy', 'execute_request', 'e1'), t0 + 100);
		const restarted = channelMessage(busy, status('restarting', null, null), t0 + 200);
		expect(restarted.executing).toEqual([]);
		expect(restarted.open).toBe(true);
		expect(restarted.live).toBe(false);
		expect(channelState(rest('starting'), restarted, t0 + 300).state).toBe('starting');
		expect(channelState(rest('dead'), busy, t0 + 300).state).toBe('dead');
		expect(channelState(rest('idle'), restarted, t0 + 300).state).toBe('idle');
	});
});
