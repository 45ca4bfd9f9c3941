import {render} from 'ink-testing-library';
import {afterEach, describe, expect, test} from 'vitest';
import {cleanup} from 'ink-testing-library';
import {PathPane} from '../../source/components/path-pane.js';
import {initialHop} from '../../source/core/app-state.js';
import type {HopStatus} from '../../source/core/types.js';
import {laptopState, now, readyHost, readyRelay} from './fixtures.js';
import {renderAt} from './render.js';

afterEach(() => {
	cleanup();
});

function frames(hops: HopStatus[], role: 'connect' | 'host' = 'connect') {
	const state = laptopState({hops, role});
	const wide = render(
		<PathPane state={state} now={now} width={100} height={5} compact={false} focused={false} />,
	).lastFrame();
	const compact = render(
		<PathPane
			state={state}
			now={now}
			width={80}
			height={hops.every((hop) => hop.state === 'ready') ? 1 : 2}
			compact
			focused={false}
		/>,
	).lastFrame();
	return {wide, compact};
}

const box = (...lines: string[]) =>
	[
		'┌ Path ────────────────────────────────────────────────────────────────────────────────────────────┐',
		...lines.map((line) => `│ ${line.padEnd(96)} │`),
		'└──────────────────────────────────────────────────────────────────────────────────────────────────┘',
	].join('\n');

const forwards = 'forwards  19507 → jupyter (3 open)  6006 → tensorboard (0 open)';

describe('path pane, one glyph per hop, read left to right', () => {
	test('ready: green dots and every hop’s numbers', () => {
		const {wide, compact} = frames([readyRelay, readyHost]);
		expect(wide).toBe(
			box(
				'laptop ──● relay.example.org:22 ──● p507 (via :19506) ──● jupyter :19508 ──▶ http://127.0.0.1:1…',
				'relay: ready  rtt 38 ms  up 2h13m  reconnects 1 (last: timeout 41m ago)    p507: ready  rtt 41 …',
				forwards,
			),
		);
		expect(compact).toBe(' laptop ● relay ● p507 ● jupyter  → http://127.0.0.1:19507   rc 1');
	});

	test('connecting: half dots, and the attempt', () => {
		const {wide, compact} = frames([
			{...initialHop('relay', 'relay.example.org:22'), attempt: 2},
			initialHop('host', 'p507 (via :19506)'),
		]);
		expect(wide).toBe(
			box(
				'laptop ──◐ relay.example.org:22 ──◐ p507 (via :19506) ──◐ jupyter :19508 ──▶ http://127.0.0.1:1…',
				'relay: connecting (attempt 2)…',
				forwards,
			),
		);
		expect(compact).toBe(
			[
				' laptop ◐ relay ◐ p507 ◐ jupyter  → http://127.0.0.1:19507',
				' relay: connecting (attempt 2)…',
			].join('\n'),
		);
	});

	test('lost: why, and the retry countdown in words', () => {
		const {wide, compact} = frames([
			{
				...readyRelay,
				state: 'lost',
				readySince: null,
				error: {kind: 'timeout', message: 'no reply for 15 s'},
				retryAt: now + 2500,
			},
			{...readyHost, state: 'waiting', readySince: null},
		]);
		expect(wide).toBe(
			box(
				'laptop ──◐ relay.example.org:22 ──◐ p507 (via :19506) ──◐ jupyter :19508 ──▶ http://127.0.0.1:1…',
				'relay: lost (no reply for 15 s) · retrying in 3 s · r to retry now',
				forwards,
			),
		);
		expect(compact).toBe(
			[
				' laptop ◐ relay ◐ p507 ◐ jupyter  → http://127.0.0.1:19507   rc 1',
				' relay: lost (no reply for 15 s) · retrying in 3 s · r to retry now',
			].join('\n'),
		);
	});

	test('waiting: backing off after a refusal', () => {
		const {wide} = frames([
			{
				...readyRelay,
				state: 'waiting',
				readySince: null,
				attempt: 3,
				error: {kind: 'refused', message: 'connection refused'},
				retryAt: now + 8000,
			},
			{...readyHost, state: 'waiting', readySince: null},
		]);
		expect(wide).toBe(
			box(
				'laptop ──◐ relay.example.org:22 ──◐ p507 (via :19506) ──◐ jupyter :19508 ──▶ http://127.0.0.1:1…',
				'relay: down (connection refused) · retrying in 8 s · r to retry now',
				forwards,
			),
		);
	});

	test('failed: a changed host key says what to do, not “retry”', () => {
		const {wide, compact} = frames([
			readyRelay,
			{
				...readyHost,
				state: 'failed',
				readySince: null,
				error: {
					kind: 'host-key',
					message: 'host key changed — refusing (SHA256:ab… was SHA256:cd…); see gpujup doctor',
				},
			},
		]);
		expect(wide).toBe(
			box(
				'laptop ──● relay.example.org:22 ──○ p507 (via :19506) ──◐ jupyter :19508 ──▶ http://127.0.0.1:1…',
				'p507: host key changed — refusing (SHA256:ab… was SHA256:cd…); see gpujup doctor',
				forwards,
			),
		);
		expect(compact).toBe(
			[
				' laptop ● relay ○ p507 ◐ jupyter  → http://127.0.0.1:19507   rc 1',
				' p507: host key changed — refusing (SHA256:ab… was SHA256:cd…); see gpujup doct…',
			].join('\n'),
		);
	});

	test('failed auth offers r; closed says closed', () => {
		const failedAuth = frames([
			{
				...readyRelay,
				state: 'failed',
				readySince: null,
				error: {kind: 'auth', message: 'all keys refused'},
			},
			readyHost,
		]);
		expect(failedAuth.compact?.split('\n')[1]).toBe(' relay: all keys refused · r to retry');
		const closed = frames([{...readyRelay, state: 'closed', readySince: null}, readyHost]);
		expect(closed.compact).toBe(
			[' laptop ○ relay ● p507 ◐ jupyter  → http://127.0.0.1:19507   rc 1', ' relay: closed'].join(
				'\n',
			),
		);
	});

	test('GPU host role: the path reversed, ending in the probe', () => {
		const reverse: HopStatus = {
			...initialHop('reverse', 'relay.example.org (listening :19506)'),
			state: 'ready',
			rttMs: 12,
			readySince: now - 5 * 3_600_000,
		};
		const {wide, compact} = frames([reverse], 'host');
		expect(wide).toBe(
			[
				'┌ Path ────────────────────────────────────────────────────────────────────────────────────────────┐',
				`│ ${'p507 ──● relay.example.org (listening :19506) ──● probe ok'.padEnd(96)} │`,
				`│ ${'relay: ready  rtt 12 ms  up 5h0m'.padEnd(96)} │`,
				`│ ${''.padEnd(96)} │`,
				'└──────────────────────────────────────────────────────────────────────────────────────────────────┘',
			].join('\n'),
		);
		expect(compact).toBe(' p507 ● relay ● probe ok');
		const waiting = frames(
			[
				{
					...reverse,
					state: 'waiting',
					readySince: null,
					retryAt: now + 1000,
					error: {kind: 'port-in-use', message: 'relay port 19506 still held by a dead session'},
				},
			],
			'host',
		);
		expect(waiting.compact).toBe(
			[
				' p507 ◐ relay ◐ probe …',
				' relay: down (relay port 19506 still held by a dead session) · retrying in 1 s …',
			].join('\n'),
		);
	});
});

describe('a chain of three hops from ~/.ssh/config', () => {
	const bastion: HopStatus = {
		...readyRelay,
		...initialHop('relay', 'bastion (bastion.example.org)', {name: 'bastion'}),
		state: 'ready',
		rttMs: 12,
		readySince: readyRelay.readySince,
	};
	const relay: HopStatus = {
		...readyRelay,
		hop: 'jump',
		index: 1,
		name: 'relay',
		label: 'relay (relay.example.org)',
	};
	const host: HopStatus = {...readyHost, index: 2, name: 'p507'};

	const draw = (hops: HopStatus[], width: number, compact: boolean, height: number) =>
		renderAt(
			<PathPane
				state={laptopState({hops})}
				now={now}
				width={width}
				height={height}
				compact={compact}
				focused={false}
			/>,
			width,
		).lastFrame();

	test('160 columns: every hop on the path line, every hop’s numbers under it', () => {
		const frame = draw([bastion, relay, host], 160, false, 5)!.split('\n');
		expect(frame[1]).toBe(
			`│ ${'laptop ──● bastion (bastion.example.org) ──● relay (relay.example.org) ──● p507 (via :19506) ──● jupyter :19508 ──▶ http://127.0.0.1:19507'.padEnd(156)} │`,
		);
		expect(frame[2]).toBe(
			`│ ${'bastion: ready  rtt 12 ms   relay: ready  rtt 38 ms  rc 1   p507: ready  rtt 41 ms'.padEnd(156)} │`,
		);
	});

	test('80 columns: one glyph and name per hop; a down middle hop says so, by its name', () => {
		expect(draw([bastion, relay, host], 80, true, 1)).toBe(
			' laptop ● bastion ● relay ● p507 ● jupyter  → http://127.0.0.1:19507   rc 1',
		);
		const lost: HopStatus = {
			...relay,
			state: 'lost',
			readySince: null,
			retryAt: now + 3000,
			error: {kind: 'closed', message: 'connection reset'},
		};
		const waiting: HopStatus = {...host, state: 'waiting', readySince: null};
		expect(draw([bastion, lost, waiting], 80, true, 2)).toBe(
			[
				' laptop ● bastion ◐ relay ◐ p507 ◐ jupyter  → http://127.0.0.1:19507   rc 1',
				' relay: lost (connection reset) · retrying in 3 s · r to retry now',
			].join('\n'),
		);
	});
});
