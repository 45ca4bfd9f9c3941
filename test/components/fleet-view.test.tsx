/**
 * The fleet view (issue 13): a row per GPU host from that host's store — hops, GPUs (mean
 * utilisation, memory summed), Jupyter, kernels — and the fleet's keys: ↑/↓, Enter opens the
 * host's full dashboard and Esc comes back, c/o act on the selected host, ? help, q quits.
 */
import {cleanup, render} from 'ink-testing-library';
import {afterEach, describe, expect, test} from 'vitest';
import {FleetApp, type FleetAppHost} from '../../source/fleet-app.js';
import {FleetView} from '../../source/components/fleet-view.js';
import {initialHop, reduce, type AppState} from '../../source/core/app-state.js';
import {fleetRow} from '../../source/core/fleet.js';
import type {Commands} from '../../source/core/view-commands.js';
import {waitFor} from '../helpers/wait-for.js';
import {
	frameWhere,
	gpuStatus,
	kernelStatus,
	keys,
	laptopState,
	now,
	readyRelay,
	storeOf,
} from './fixtures.js';

afterEach(() => {
	cleanup();
});

type Call = readonly [string, string];

function commandsFor(name: string, calls: Call[]): Commands {
	return {
		reconnect: () => calls.push([name, 'reconnect']),
		restartJupyter: () => calls.push([name, 'restartJupyter']),
		restartBlocked: () => null,
		copyUrl: () => calls.push([name, 'copyUrl']),
		openBrowser: () => calls.push([name, 'openBrowser']),
		kernelAction: () => calls.push([name, 'kernelAction']),
		answerPrompt: () => calls.push([name, 'answerPrompt']),
		quit: () => calls.push([name, 'quit']),
	};
}

/** p507 up with four GPUs and two kernels (one busy); p508 behind the same relay, its tunnel down. */
function fleetStates(): [AppState, AppState] {
	let p507 = laptopState({
		gpus: 4,
		hops: [
			{...readyRelay, name: 'relay'},
			{...initialHop('host', 'p507 (via :19506)', {name: 'p507'}), state: 'ready', readySince: now},
		],
	});
	p507 = reduce(p507, {type: 'kernel', kernel: kernelStatus()});
	p507 = reduce(p507, {
		type: 'kernel',
		kernel: kernelStatus({id: 'k2', state: 'idle', notebook: 'eda.ipynb'}),
	});
	let p508 = laptopState({
		gpus: 1,
		hops: [
			{...readyRelay, name: 'relay'},
			{...initialHop('host', 'p508 (via :19516)', {name: 'p508'}), state: 'waiting'},
		],
	});
	p508 = reduce(p508, {type: 'title', title: 'p508'});
	p508 = reduce(p508, {
		type: 'jupyter',
		jupyter: {...p508.jupyter!, state: 'unreachable', message: 'the GPU host hop is down'},
	});
	return [p507, p508];
}

describe('fleetRow', () => {
	test('GPU utilisation is the mean of the GPUs, memory is summed, dead kernels do not count', () => {
		const [p507] = fleetStates();
		const four = gpuStatus(4);
		const gpu = {
			...four,
			gpus: four.gpus.map((info, index) =>
				index === 1
					? {...info, utilizationGpu: 2, memoryUsedMiB: 1000}
					: index === 2
						? {...info, utilizationGpu: null, memoryUsedMiB: null}
						: info,
			),
		};
		let state = reduce(p507, {type: 'gpu', gpu});
		state = reduce(state, {type: 'kernel', kernel: kernelStatus({id: 'k3', state: 'dead'})});
		expect(fleetRow('p507', state)).toMatchObject({
			name: 'p507',
			up: true,
			gpus: 4,
			// (78 + 2 + 78) / 3: the GPU without a value is left out, not counted as 0.
			utilization: 53,
			memoryUsedMiB: 10_035 * 2 + 1000,
			memoryTotalMiB: 16_376 * 4,
			jupyter: 'running',
			kernels: 2,
			busy: 1,
			asking: false,
		});
		const none = reduce(p507, {
			type: 'gpu',
			gpu: {...gpuStatus(0), error: {kind: 'no-driver', message: 'nvidia-smi: not found'}},
		});
		expect(fleetRow('p507', none)).toMatchObject({
			gpus: 0,
			utilization: null,
			memoryUsedMiB: null,
			gpuError: 'nvidia-smi: not found',
		});
	});
});

describe('FleetView', () => {
	test('a row per host at 80 columns: hops, GPUs, Jupyter, kernels; a host that is down says so', () => {
		const rows = fleetStates().map((state, index) => fleetRow(['p507', 'p508'][index]!, state));
		const {lastFrame} = render(
			<FleetView
				rows={rows}
				selected={0}
				via="via relay"
				columns={80}
				height={23}
				color={false}
				help={false}
				notice={null}
			/>,
		);
		expect(lastFrame()).toBe(
			[
				' gpujup fleet · 2 GPU hosts via relay                           1 of 2 hosts up',
				'',
				'   HOST  HOPS                    GPUS                   JUPYTER      KERNELS',
				' › p507  ● relay ● p507          4× 78%  39.2/64.0 GiB  running      2 (1 busy)',
				'   p508  ● relay ◐ p508 waiting  1× 78%  9.8/16.0 GiB   unreachable  –',
				'',
				' ↑↓ select  enter open  c copy url  o browser  ? help  q quit',
			].join('\n'),
		);
		expect(
			Math.max(
				...lastFrame()!
					.split('\n')
					.map((line) => line.length),
			),
		).toBeLessThan(80);
	});
});

describe('FleetView with more hosts than rows', () => {
	test('the rows around the selection are shown, never more lines than the height', () => {
		const [p507] = fleetStates();
		const rows = Array.from({length: 12}, (_, index) => fleetRow(`gpu${index}`, p507));
		const frame = (selected: number) =>
			render(
				<FleetView
					rows={rows}
					selected={selected}
					via="via relay"
					columns={80}
					height={10}
					color={false}
					help={false}
					notice={null}
				/>,
			).lastFrame()!;
		const shown = (text: string) => [...text.matchAll(/^ (?:›| ) (gpu\d+) /gm)].map((m) => m[1]);
		expect(shown(frame(0))).toEqual(['gpu0', 'gpu1', 'gpu2', 'gpu3', 'gpu4']);
		const last = frame(11);
		expect(shown(last)).toEqual(['gpu7', 'gpu8', 'gpu9', 'gpu10', 'gpu11']);
		expect(last).toContain(' › gpu11 ');
		expect(last.split('\n').length).toBeLessThanOrEqual(10);
	});
});

describe('FleetApp', () => {
	async function start() {
		const calls: Call[] = [];
		const [p507, p508] = fleetStates();
		const hosts: FleetAppHost[] = [
			{name: 'p507', store: storeOf(p507), commands: commandsFor('p507', calls)},
			{name: 'p508', store: storeOf(p508), commands: commandsFor('p508', calls)},
		];
		let quits = 0;
		const instance = render(
			<FleetApp
				hosts={hosts}
				quit={() => {
					quits += 1;
				}}
				now={() => now}
				color={false}
				columns={100}
				rows={24}
			/>,
		);
		await waitFor(() => instance.stdin.listenerCount('readable') > 0, {
			timeoutMs: 3000,
			message: 'stdin listener',
		});
		const press = async (key: string, shows: (frame: string) => boolean, what: string) => {
			await new Promise((resolve) => setImmediate(resolve));
			instance.stdin.write(key);
			return frameWhere(instance.lastFrame, shows, what);
		};

		return {instance, hosts, calls, press, quits: () => quits};
	}

	test('↓ selects, c and o act on the selected host, Enter opens its dashboard and Esc comes back', async () => {
		const {instance, hosts, calls, press} = await start();
		await frameWhere(instance.lastFrame, (f) => f.includes('› p507'), 'p507 selected');
		await press(keys.down, (f) => f.includes('› p508'), 'p508 selected');
		instance.stdin.write('c');
		instance.stdin.write('o');
		instance.stdin.write('r');
		await waitFor(() => calls.length === 3, {timeoutMs: 3000, message: 'c, o and r called'});
		expect(calls).toEqual([
			['p508', 'copyUrl'],
			['p508', 'openBrowser'],
			['p508', 'reconnect'],
		]);
		// A host's notice shows in the fleet's header with its name.
		hosts[1]!.store.dispatch({type: 'notice', notice: {text: 'copied ✓', level: 'info', at: now}});
		await frameWhere(instance.lastFrame, (f) => f.includes('p508: copied ✓'), 'the notice');

		// Enter: p508's own dashboard (its header, its hop down), a line saying how to come back.
		let frame = await press(keys.enter, (f) => f.includes('back to the fleet'), "p508's dashboard");
		expect(frame.split('\n')[0]).toBe(' esc back to the fleet (2 GPU hosts) · p508');
		expect(frame).toContain('p508');
		expect(frame).not.toContain('HOPS');
		// Keys there are that dashboard's: `r` reconnects p508.
		await new Promise((resolve) => setImmediate(resolve));
		instance.stdin.write('r');
		await waitFor(() => calls.length === 4, {timeoutMs: 3000, message: 'r called'});
		expect(calls.at(-1)).toEqual(['p508', 'reconnect']);
		// Esc while its help is open closes the help only; the next Esc goes back.
		await press('?', (f) => /help/i.test(f) && f.includes('close help'), "the dashboard's help");
		frame = await press(keys.escape, (f) => !f.includes('close help'), 'help closed');
		expect(frame).toContain('back to the fleet');
		frame = await press(keys.escape, (f) => f.includes('HOPS'), 'the fleet view again');
		expect(frame).toContain('› p508');
	});

	test("a host's question shows in the fleet view; Enter on it opens the dashboard that asks", async () => {
		const {instance, hosts, calls, press} = await start();
		hosts[1]!.store.dispatch({
			type: 'prompt',
			prompt: {
				kind: 'host-key',
				id: 1,
				hop: 'relay',
				host: '[relay.example.org]:22',
				keyType: 'ssh-ed25519',
				fingerprint: 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
			},
		});
		const frame = await frameWhere(
			instance.lastFrame,
			(f) => f.includes('p508 asks a question'),
			'the question line',
		);
		expect(frame).toContain('   p508?');
		await press(keys.down, (f) => f.includes('› p508?'), 'p508 selected');
		const asked = await press(
			keys.enter,
			(f) => f.includes('back to the fleet'),
			"p508's dashboard",
		);
		expect(asked).toContain('SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA');
		// Esc there answers the question (refuses the key), it does not leave the dashboard.
		await new Promise((resolve) => setImmediate(resolve));
		instance.stdin.write(keys.escape);
		await waitFor(() => calls.some(([name, what]) => name === 'p508' && what === 'answerPrompt'), {
			timeoutMs: 3000,
			message: 'the prompt answered',
		});
		expect(instance.lastFrame()).toContain('back to the fleet');
	});

	test('? shows the fleet keys, q quits', async () => {
		const {instance, press, quits} = await start();
		await frameWhere(instance.lastFrame, (f) => f.includes('› p507'), 'p507 selected');
		const help = await press('?', (f) => f.includes('Fleet keys'), 'the help');
		expect(help).toContain("open the selected host's dashboard (esc comes back here)");
		await press(keys.escape, (f) => f.includes('HOPS'), 'help closed');
		instance.stdin.write('q');
		await waitFor(() => quits() === 1, {timeoutMs: 3000, message: 'q quits'});
	});
});
