import {cleanup} from 'ink-testing-library';
import {afterEach, describe, expect, test} from 'vitest';
import {Dashboard} from '../../source/components/dashboard.js';
import {computeLayout} from '../../source/components/layout.js';
import {reduce, type AppAction, type AppState} from '../../source/core/app-state.js';
import {textWidth} from '../../source/core/format.js';
import type {KernelStatus} from '../../source/core/kernels.js';
import {
	initialView,
	viewReducer,
	type ViewAction,
	type ViewState,
} from '../../source/core/view-state.js';
import {kernelStatus, laptopState, now, readyHost, readyRelay} from './fixtures.js';
import {renderAt} from './render.js';

afterEach(() => {
	cleanup();
});

/** A store snapshot and what the view keeps beside it (overlay, focus, selection). */
type Screen = AppState & {readonly view?: ViewState};

function draw(screen: Screen, columns: number, rows: number, draft = '', again = false): string {
	const {view, ...state} = screen;
	return (
		renderAt(
			<Dashboard
				state={state}
				view={view}
				now={now}
				columns={columns}
				rows={rows}
				color={false}
				draft={draft}
				promptAgain={again}
			/>,
			columns,
		).lastFrame() ?? ''
	);
}

const isViewAction = (action: AppAction | ViewAction): action is ViewAction =>
	['overlay', 'focus', 'scroll', 'filter', 'select-kernel'].includes(action.type);

/** Store actions go to the store's reducer, the view's to the view's. */
const apply = (screen: Screen, ...actions: Array<AppAction | ViewAction>): Screen =>
	actions.reduce<Screen>(
		(at, action) =>
			isViewAction(action)
				? {...at, view: viewReducer(at.view ?? initialView, action)}
				: {...reduce(at, action), view: at.view},
		screen,
	);

const hostKey: AppAction = {
	type: 'prompt',
	prompt: {
		kind: 'host-key',
		id: 1,
		hop: 'host',
		host: 'p507 (via relay:19506)',
		keyType: 'ssh-ed25519',
		fingerprint: 'SHA256:n4SvXyWJ7mKQy5Pkq3VbE0yZtqvSg1r2cG0aX3k9sYw',
	},
};
const secret: AppAction = {
	type: 'prompt',
	prompt: {
		kind: 'secret',
		id: 2,
		hop: 'relay',
		message: "Enter passphrase for key '/home/alice/.ssh/id_ed25519':",
		echo: false,
	},
};
const lost: AppAction = {
	type: 'hop',
	hop: 'relay',
	patch: {
		state: 'lost',
		readySince: null,
		error: {kind: 'timeout', message: 'no reply for 15 s'},
		retryAt: now + 3000,
	},
};
const manyLogs: AppAction = {
	type: 'log',
	lines: Array.from({length: 80}, (_, i) => `[I 14:0${i % 10}] line ${i} ${'y'.repeat(i * 3)}`),
};

describe('never taller than the terminal, nothing wraps', () => {
	const screens: Array<[string, Array<AppAction | ViewAction>]> = [
		['plain', []],
		['many log lines', [manyLogs]],
		['help', [{type: 'overlay', overlay: 'help'}]],
		['host-key prompt', [manyLogs, hostKey]],
		['secret prompt', [secret]],
		['restart question', [{type: 'overlay', overlay: 'confirm-restart'}]],
		['relay lost', [lost]],
	];
	for (const [columns, rows] of [
		[80, 24],
		[160, 48],
		[120, 30],
		[100, 12],
	] as const) {
		for (const gpus of [1, 4]) {
			for (const role of ['connect', 'host'] as const) {
				test.each(screens)(`${columns}×${rows}, ${gpus} GPU(s), ${role}: %s`, (_, actions) => {
					const frame = draw(apply(laptopState({gpus, role}), ...actions), columns, rows);
					const lines = frame.split('\n');
					expect(lines.length).toBeLessThanOrEqual(rows);
					for (const line of lines) expect(textWidth(line), line).toBeLessThanOrEqual(columns);
					expect(frame).not.toContain('\u001B');
				});
			}
		}
	}
});

describe('80×24, the UI.md sketch', () => {
	test('every line but the GPU pane’s (its own tests draw it)', () => {
		const state = laptopState({gpus: 1});
		const layout = computeLayout(state, 80, 24);
		const lines = draw(state, 80, 24).split('\n');
		const gpuRows = new Set(
			Array.from({length: layout.gpu}, (_, i) => layout.header + layout.path + i),
		);
		expect(lines.filter((_, i) => !gpuRows.has(i)).map((line) => line.trimEnd())).toEqual([
			' gpujup p507 via relay.example.org                     hops up · 2h13m · ? help',
			'›laptop ● relay ● p507 ● jupyter  → http://127.0.0.1:19507   rc 1',
			' jupyter running · 2 kernels · up 3d4h',
			' ─ log · jupyter · following ───────────────────────────────────────────────────',
			' [I 14:02:11 ServerApp] Kernel started: 5b1e',
			' [I 14:02:13 ServerApp] Connecting to kernel 5b1e',
			' [W 14:05:40 ServerApp] 404 GET /api/kernels/x?token=… (127.0.0.1)',
			...Array.from({length: 24 - 8 - layout.gpu}, () => ''),
			' r reconnect j restart c copy o open ? help q quit',
		]);
	});

	test('a lost relay: the header and the path say so, and what happens next', () => {
		const lines = draw(apply(laptopState(), lost), 80, 24).split('\n');
		expect(lines[0]).toBe(
			' gpujup p507 via relay.example.org           relay lost · retry in 3 s · ? help',
		);
		expect(lines[1]?.trimEnd()).toBe(
			'›laptop ◐ relay ● p507 ◐ jupyter  → http://127.0.0.1:19507   rc 1',
		);
		expect(lines[2]?.trimEnd()).toBe(
			' relay: lost (no reply for 15 s) · retrying in 3 s · r to retry now',
		);
	});

	test('prompts sit above the footer, in ssh’s words; the secret shows as dots', () => {
		const lines = draw(apply(laptopState(), hostKey), 80, 24).split('\n');
		expect(lines.slice(-5).map((line) => line.trimEnd())).toEqual([
			' ─ Unknown host key (host hop) ─────────────────────────────────────────────────',
			" The authenticity of host 'p507 (via relay:19506)' can't be established.",
			' ED25519 key fingerprint is SHA256:n4SvXyWJ7mKQy5Pkq3VbE0yZtqvSg1r2cG0aX3k9sYw.',
			' Continue connecting (yes/no/[fingerprint])? ▏',
			' enter answer  esc refuse',
		]);
		// After an answer that was neither, ssh's words; a long paste shows its end.
		const again = draw(
			apply(laptopState(), hostKey),
			80,
			24,
			'SHA256:n4SvXyWJ7mKQy5Pkq3VbE0yZtqvSg1r2cG0aX3k9sYw',
			true,
		);
		expect(again.split('\n').at(-2)?.trimEnd()).toBe(
			" Please type 'yes', 'no' or the fingerprint: …5Pkq3VbE0yZtqvSg1r2cG0aX3k9sYw▏",
		);
		const secretFrame = draw(apply(laptopState(), secret), 80, 24, 'hunter2');
		expect(
			secretFrame
				.split('\n')
				.slice(-4)
				.map((line) => line.trimEnd()),
		).toEqual([
			' ─ relay hop asks ──────────────────────────────────────────────────────────────',
			" Enter passphrase for key '/home/alice/.ssh/id_ed25519': •••••••▏",
			' Enter submits · Esc cancels',
			' enter submit  esc cancel',
		]);
		expect(secretFrame).not.toContain('hunter2');
	});
});

describe('160×48, the wide sketch', () => {
	test('path box on top, Jupyter beside the GPUs, the log, the footer', () => {
		const state = laptopState({gpus: 1});
		const layout = computeLayout(state, 160, 48);
		const lines = draw(state, 160, 48).split('\n');
		expect(lines).toHaveLength(48);
		expect(lines.slice(0, 6).map((line) => line.trimEnd())).toEqual([
			' gpujup  p507 via relay.example.org                                                                                                all hops up · 2h13m · ? help',
			`┏ Path ${'━'.repeat(152)}┓`,
			`┃ ${'laptop ──● relay.example.org:22 ──● p507 (via :19506) ──● jupyter :19508 ──▶ http://127.0.0.1:19507'.padEnd(156)} ┃`,
			`┃ ${'relay: ready  rtt 38 ms  up 2h13m  reconnects 1 (last: timeout 41m ago)    p507: ready  rtt 41 ms  up 2h13m'.padEnd(156)} ┃`,
			`┃ ${'forwards  19507 → jupyter (3 open)  6006 → tensorboard (0 open)'.padEnd(156)} ┃`,
			`┗${'━'.repeat(158)}┛`,
		]);
		const jupyter = lines
			.slice(6, 6 + layout.jupyter)
			.map((line) => line.slice(-layout.jupyterWidth));
		expect(jupyter.slice(0, 6)).toEqual([
			`┌ Jupyter ${'─'.repeat(layout.jupyterWidth - 11)}┐`,
			`│ ${'running  pid 2113  up 3d4h  restarts 0'.padEnd(layout.jupyterWidth - 4)} │`,
			`│ ${'url  http://127.0.0.1:19507/?token=•••'.padEnd(layout.jupyterWidth - 4)} │`,
			`│ ${'kernels 2 · last activity 4s ago'.padEnd(layout.jupyterWidth - 4)} │`,
			`│ ${'runtime file · via agent'.padEnd(layout.jupyterWidth - 4)} │`,
			`│ ${''.padEnd(layout.jupyterWidth - 4)} │`,
		]);
		const logTop = 6 + layout.gpu;
		expect(lines.slice(logTop, logTop + 4).map((line) => line.trimEnd())).toEqual([
			`┌ Log  jupyter · following ${'─'.repeat(132)}┐`,
			`│ ${'[I 14:02:11 ServerApp] Kernel started: 5b1e'.padEnd(156)} │`,
			`│ ${'[I 14:02:13 ServerApp] Connecting to kernel 5b1e'.padEnd(156)} │`,
			`│ ${'[W 14:05:40 ServerApp] 404 GET /api/kernels/x?token=… (127.0.0.1)'.padEnd(156)} │`,
		]);
		expect(lines.at(-2)).toBe(`└${'─'.repeat(158)}┘`);
		expect(lines.at(-1)?.trimEnd()).toBe(
			' r reconnect  j restart jupyter  c copy url  o open  tab focus  / filter  ? help  q quit',
		);
	});

	test('the help overlay lists every key, grouped, and the config file', () => {
		const frame = draw(apply(laptopState(), {type: 'overlay', overlay: 'help'}), 160, 48);
		const lines = frame.split('\n').map((line) => line.slice(2).trimEnd().replace(/ *┃$/, ''));
		expect(lines.slice(2, 22)).toEqual([
			'Connection',
			'  r              reconnect now: skip the backoff wait and retry every hop that is down',
			'  q ctrl+c       quit (on the GPU host, asks whether Jupyter stops too; it keeps running by default)',
			'Jupyter',
			'  j              restart Jupyter (asks first: its kernels are stopped)',
			'  c              copy the Jupyter URL with its token to the clipboard (OSC 52)',
			'  o              open Jupyter in the browser (the token stays out of process arguments)',
			'Notebooks',
			"  i              interrupt the selected notebook's kernel (its running cell stops)",
			"  K              restart the selected notebook's kernel (asks first: its variables are lost)",
			"  x              shut the selected notebook's kernel down (asks first, naming the GPU memory it frees)",
			'View',
			'  tab shift+tab  focus the next pane / the previous one',
			'  ↑ ↓            scroll the log a line (in Notebooks: select the kernel above / below)',
			'  pgup pgdn      scroll the log a page',
			'  g home G end   jump to the oldest log line / follow the log again (newest at the bottom)',
			'  /              filter the log (Enter keeps the filter, Esc clears it)',
			'  ?              show or hide this help',
			'config  /home/alice/.config/gpujup/config.toml',
			'',
		]);
		expect(frame.split('\n').at(-1)?.trimEnd()).toBe(' ? esc close help  q quit');
	});
});

describe('what the screen must and must not say', () => {
	test('the token never shows: masked log lines, •••, even for a line stored unmasked', () => {
		const state = apply(laptopState(), {
			type: 'log',
			lines: [
				'open http://127.0.0.1:19507/lab?token=abc123def456&x=1',
				'Authorization: token abc123def456',
			],
		});
		for (const [columns, rows] of [
			[80, 24],
			[160, 48],
		] as const) {
			const frame = draw(state, columns, rows);
			expect(frame).not.toContain('abc123');
			expect(frame).toContain('?token=…&x=1');
		}
	});

	test('unknown values are a dash, never 0; a notice shows in the header', () => {
		const state = apply(
			laptopState(),
			{
				type: 'jupyter',
				jupyter: {
					state: 'starting',
					url: null,
					pid: null,
					kernels: null,
					restarts: 0,
					startedAt: null,
					lastActivity: null,
					origin: 'started',
					message: null,
				},
			},
			{type: 'notice', notice: {text: 'copied ✓', level: 'info', at: now - 1000}},
		);
		const lines = draw(state, 160, 48).split('\n');
		expect(lines[0]?.endsWith('copied ✓ · all hops up · 2h13m · ? help')).toBe(true);
		const {jupyterWidth} = computeLayout(state, 160, 48);
		const jupyter = lines.slice(7, 10).map((line) => line.slice(-jupyterWidth + 2, -2).trimEnd());
		expect(jupyter).toEqual([
			'starting  pid –  up –  restarts 0',
			'url  –',
			'kernels – · last activity –',
		]);
		const old = apply(state, {
			type: 'notice',
			notice: {text: 'copied ✓', level: 'info', at: now - 60_000},
		});
		expect(draw(old, 160, 48)).not.toContain('copied');
	});

	test('the focused pane has the heavier, coloured border', () => {
		const state = apply(laptopState(), {type: 'focus', delta: 3, panes: 4});
		const lines = draw(state, 160, 48).split('\n');
		expect(lines[1]?.startsWith('┌ Path ─')).toBe(true);
		expect(
			lines
				.find((line) => line.includes('Log  jupyter'))
				?.startsWith('┏ Log  jupyter · following ━'),
		).toBe(true);
	});

	test('moving the focus redraws every pane whole: no first line left blank (Tab at 160×48)', () => {
		let state: Screen = laptopState();
		const tree = (s: Screen) => (
			<Dashboard state={s} view={s.view} now={now} columns={160} rows={47} color={false} />
		);
		const instance = renderAt(tree(state), 160);
		const before = instance.lastFrame() ?? '';
		expect(before).toContain('laptop ──● relay');
		for (let press = 0; press < 4; press++) {
			state = apply(state, {type: 'focus', delta: 1, panes: 4});
			instance.rerender(tree(state));
			const frame = instance.lastFrame() ?? '';
			// The path line, the first GPU line and the first Jupyter line each keep their row.
			const lines = frame.split('\n');
			expect(lines[2]).toMatch(/^[│┃] laptop ──● relay/);
			expect(lines[3]).toMatch(/^[│┃] relay: ready/);
			expect(frame).toMatch(/[│┃] 0 RTX 4080 SUPER/);
			expect(frame).toMatch(/[│┃] running {2}pid 2113/);
		}
	});

	test('readySince of both hops: the header counts from the later one', () => {
		const state = laptopState({hops: [readyRelay, {...readyHost, readySince: now - 5 * 60_000}]});
		expect(draw(state, 80, 24).split('\n')[0]?.endsWith('hops up · 5m · ? help')).toBe(true);
	});
});

describe('the notebooks', () => {
	const kernel = (patch: Partial<KernelStatus>) =>
		kernelStatus({pids: [88_123], gpuMemoryMiB: {'GPU-0': 22_630}, ...patch});
	const withKernels = () =>
		apply(laptopState(), {
			type: 'kernels',
			kernels: [
				kernel({}),
				kernel({
					id: '6c2f0000-0000-4000-8000-000000000002',
					notebook: 'eda/explore.ipynb',
					state: 'idle',
					pids: [2211],
					gpuMemoryMiB: {},
				}),
			],
		});

	test('160×48: the Notebooks pane beside the GPUs under a Jupyter line; GPU rows name the notebook', () => {
		const frame = draw(withKernels(), 160, 48);
		const lines = frame.split('\n');
		expect(lines.length).toBeLessThanOrEqual(48);
		expect(lines.every((line) => textWidth(line) <= 160)).toBe(true);
		expect(frame).toMatch(/Notebooks {2}p507 · 2 kernels/);
		expect(frame).toMatch(
			/▸ train\/resnet\.ipynb\s+python3\s+busy 41m\s+0: 22\.1 GiB\s+98%\s+6\.2 GiB/,
		);
		expect(frame).toMatch(/ {2}eda\/explore\.ipynb\s+python3\s+idle/);
		expect(frame).toMatch(/jupyter running/);
		expect(frame).toMatch(/8\.9 GiB\s+train\/resnet\.ipynb/);
	});

	test('80×24: a line a kernel under the GPU line; a notification in the header', () => {
		const state = apply(withKernels(), {
			type: 'notify',
			at: now - 1000,
			notification: {
				kind: 'cell-done',
				title: 'Cell finished: train/resnet.ipynb',
				message: 'a cell in train/resnet.ipynb finished after 41 min 0 s',
				notebook: 'train/resnet.ipynb',
			},
		});
		const frame = draw(state, 80, 24);
		const lines = frame.split('\n');
		expect(lines.length).toBeLessThanOrEqual(24);
		expect(lines[0]).toContain('✓ Cell finished: train/resnet.ipynb');
		const gpuLine = lines.findIndex((line) => line.includes('GPU0'));
		expect(lines[gpuLine + 1]).toMatch(/^ {2}resnet\.ipynb busy 41m {2}22\.1 GiB/);
		expect(lines[gpuLine + 2]).toMatch(/^ {2}explore\.ipynb idle/);
		// Gone after a few seconds.
		expect(draw({...state}, 80, 24).split('\n')[0]).toContain('Cell finished');
	});

	test('with the Notebooks pane focused the footer shows its keys, and x asks naming the memory', () => {
		const focused = apply(withKernels(), {type: 'focus', delta: 4, panes: 5});
		expect(draw(focused, 160, 48).split('\n').at(-1)).toMatch(
			/↑↓ select {2}i interrupt {2}K restart kernel {2}x shut down {2}tab focus {2}\? help/,
		);
		const asking = apply(
			focused,
			{type: 'select-kernel', delta: 0, kernels: withKernels().kernels},
			{type: 'overlay', overlay: 'confirm-kernel-shutdown'},
		);
		expect(draw(asking, 160, 48).split('\n').at(-1)).toContain(
			'Shut down train/resnet.ipynb? frees 22.1 GiB on GPU 0 [y/N]',
		);
	});
});
