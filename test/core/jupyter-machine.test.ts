import {describe, expect, it} from 'vitest';
import {stableResetMs} from '../../source/core/backoff.js';
import {missingIpykernelExitCode} from '../../source/core/exit-codes.js';
import {
	initialJupyterMachine,
	probeEvent,
	transition,
	type JupyterEffect,
	type JupyterEvent,
	type JupyterMachineState,
} from '../../source/core/jupyter-machine.js';

const policy = {initialMs: 200, stepMs: 1000, multiplier: 2, maxMs: 20_000, jitter: 0};

function fresh(): JupyterMachineState {
	return initialJupyterMachine({
		url: 'http://127.0.0.1:8888/',
		env: {kind: 'venv', path: '/opt/venv'},
		policy,
		startTimeoutMs: 120_000,
	});
}

/** Run events in order, collecting every effect. */
function run(
	events: readonly JupyterEvent[],
	state: JupyterMachineState = fresh(),
): {state: JupyterMachineState; effects: JupyterEffect[]} {
	const effects: JupyterEffect[] = [];
	for (const event of events) {
		const next = transition(state, event);
		state = next.state;
		effects.push(...next.effects);
	}

	return {state, effects};
}

const types = (effects: readonly JupyterEffect[]) => effects.map((e) => e.type);

/** A Jupyter spawned (epoch 1, pid 100 at t=1000) and answering (t=2000). */
function runningJupyter(): JupyterMachineState {
	return run([
		{type: 'start'},
		{type: 'nothing-to-adopt'},
		{type: 'spawned', epoch: 1, pid: 100, now: 1000},
		{type: 'probe-answered', epoch: 1, now: 2000, kernels: 0, lastActivity: null},
	]).state;
}

const died = (
	epoch: number,
	exitCode: number | null,
	signal: string | null = null,
): JupyterEvent => ({
	type: 'died',
	epoch,
	exitCode,
	signal,
	lastLine: 'Traceback: boom',
	random: 0.5,
});

describe('jupyter machine', () => {
	it('spawns when there is nothing to adopt, and runs once /api/status answers', () => {
		const started = run([{type: 'start'}, {type: 'nothing-to-adopt'}]);
		expect(types(started.effects)).toEqual(['publish', 'spawn']);
		expect(started.effects[1]).toEqual({type: 'spawn', epoch: 1});
		const spawned = run([{type: 'spawned', epoch: 1, pid: 100, now: 1000}], started.state);
		expect(spawned.effects).toEqual([
			{type: 'record', pid: 100, startedAt: 1000},
			{type: 'publish', status: expect.objectContaining({state: 'starting', pid: 100})},
		]);
		expect(run([{type: 'poll-due'}], spawned.state).effects).toEqual([
			{type: 'check', epoch: 1, pid: 100},
		]);
		const answered = run(
			[{type: 'probe-answered', epoch: 1, now: 2000, kernels: 2, lastActivity: 'x'}],
			spawned.state,
		);
		expect(answered.state.status).toMatchObject({state: 'running', kernels: 2, message: null});
		expect(answered.state.runningSince).toBe(2000);
	});

	it('adopts a Jupyter of ours that answers, and waits for one still starting', () => {
		const answering = run([
			{type: 'start'},
			{
				type: 'adopt-candidate',
				pid: 42,
				startedAt: 5,
				differs: true,
				probe: {reachable: true, status: 200, kernels: 1, lastActivity: null},
				now: 1000,
			},
		]);
		expect(types(answering.effects)).toEqual(['publish', 'follow-log', 'publish']);
		expect(answering.state.status).toMatchObject({
			state: 'running',
			pid: 42,
			origin: 'adopted',
			startedAt: 5,
			message: expect.stringMatching(/other settings/),
		});
		const quiet = run([
			{
				type: 'adopt-candidate',
				pid: 42,
				startedAt: 5,
				differs: false,
				probe: {reachable: false, message: 'nothing listens yet'},
				now: 1000,
			},
		]);
		expect(quiet.state.status).toMatchObject({state: 'starting', pid: 42, origin: 'adopted'});
		expect(quiet.state.spawnedAt).toBe(1000);
	});

	it('does not adopt a server that refuses the token (403): it spawns its own', () => {
		const {effects, state} = run([
			{
				type: 'adopt-candidate',
				pid: 42,
				startedAt: 5,
				differs: false,
				probe: {reachable: true, status: 403, kernels: null, lastActivity: null},
				now: 1000,
			},
		]);
		expect(effects).toEqual([{type: 'spawn', epoch: 1}]);
		expect(state.pid).toBeNull();
	});

	it('a crash schedules a restart with backoff, logged with its exit code and last log line', () => {
		const first = run([died(1, 1)], runningJupyter());
		expect(types(first.effects)).toEqual(['log-line', 'publish', 'schedule-restart']);
		expect(first.effects[0]).toEqual({
			type: 'log-line',
			text: 'Jupyter (pid 100) exited with code 1; restarting',
		});
		expect(first.effects[2]).toEqual({type: 'schedule-restart', epoch: 1, ms: 0});
		expect(first.state.status).toMatchObject({
			state: 'restarting',
			pid: null,
			restarts: 1,
			message: 'Jupyter (pid 100) exited with code 1; last log line: Traceback: boom; restarting',
		});
		const due = run([{type: 'restart-due', epoch: 1}], first.state);
		expect(due.effects).toEqual([{type: 'spawn', epoch: 2}]);
		const again = run(
			[{type: 'spawned', epoch: 2, pid: 101, now: 3000}, died(2, null, 'SIGKILL')],
			due.state,
		);
		expect(again.effects.at(-1)).toEqual({type: 'schedule-restart', epoch: 2, ms: 200});
		expect(again.state.status.message).toMatch(
			/^Jupyter \(pid 101\) killed by SIGKILL; .* in 0\.2 s$/,
		);
		expect(again.effects[2]).toEqual({
			type: 'log-line',
			text: 'Jupyter (pid 101) died: SIGKILL; restarting in 0.2 s',
		});
		// An adopted process is no child of ours: its exit status is unknown.
		const adopted = run([died(1, null)], runningJupyter());
		expect(adopted.effects[0]).toMatchObject({text: expect.stringMatching(/status is unknown/)});
	});

	it('a missing ipykernel ends in exited, with the fix, and no restart', () => {
		const {state, effects} = run([died(1, missingIpykernelExitCode)], runningJupyter());
		expect(types(effects)).toEqual(['publish']);
		expect(state.status).toMatchObject({state: 'exited', pid: null, restarts: 0});
		expect(state.status.message).toMatch(/ipykernel/);
		expect(state.restartPending).toBe(false);
		expect(run([{type: 'poll-due'}], state).effects).toEqual([]);
	});

	it('the backoff attempt resets after a stable run, not after a short one', () => {
		// Two quick crashes: the third restart waits.
		const crashing = run(
			[
				died(1, 1),
				{type: 'restart-due', epoch: 1},
				{type: 'spawned', epoch: 2, pid: 101, now: 3000},
				{type: 'probe-answered', epoch: 2, now: 4000, kernels: 0, lastActivity: null},
			],
			runningJupyter(),
		);
		expect(crashing.state.attempt).toBe(1);
		const short = run(
			[
				{
					type: 'probe-answered',
					epoch: 2,
					now: 4000 + stableResetMs - 1,
					kernels: 0,
					lastActivity: null,
				},
				died(2, 1),
			],
			crashing.state,
		);
		expect(short.effects.at(-1)).toEqual({type: 'schedule-restart', epoch: 2, ms: 200});
		const stable = run(
			[
				{
					type: 'probe-answered',
					epoch: 2,
					now: 4000 + stableResetMs + 1,
					kernels: 0,
					lastActivity: null,
				},
				died(2, 1),
			],
			crashing.state,
		);
		expect(stable.effects.at(-1)).toEqual({type: 'schedule-restart', epoch: 2, ms: 0});
	});

	it('a death during a deliberate restart schedules no crash restart', () => {
		const requested = run([{type: 'restart-requested'}], runningJupyter());
		expect(requested.effects).toEqual([
			{type: 'publish', status: expect.objectContaining({state: 'restarting'})},
			{type: 'terminate', epoch: 2, pid: 100},
		]);
		// The old process dies (of our SIGTERM) while the restart waits for it.
		const dying = run([died(1, null, 'SIGTERM'), died(2, null, 'SIGTERM')], requested.state);
		expect(dying.effects).toEqual([]);
		expect(dying.state.status.restarts).toBe(0);
		const done = run([{type: 'terminated', epoch: 2}], dying.state);
		expect(done.effects).toEqual([{type: 'spawn', epoch: 3}]);
		const spawned = run([{type: 'spawned', epoch: 3, pid: 200, now: 9000}], done.state);
		expect(spawned.state.status).toMatchObject({state: 'restarting', pid: 200, restarts: 0});
	});

	it('a restart cancels a pending crash restart, whose timer then fires for nothing', () => {
		const crashed = run([died(1, 1)], runningJupyter());
		const {state, effects} = run(
			[{type: 'restart-requested'}, {type: 'restart-due', epoch: 1}],
			crashed.state,
		);
		expect(types(effects)).toEqual(['cancel-restart', 'publish', 'terminate']);
		expect(effects.at(-1)).toEqual({type: 'terminate', epoch: 2, pid: null});
		expect(state.busy).toBe('restart');
	});

	it('a second restart while one runs is refused; a stop takes over from it', () => {
		const requested = run([{type: 'restart-requested'}], runningJupyter()).state;
		expect(transition(requested, {type: 'restart-requested'}).state).toBe(requested);
		const stopping = run([{type: 'stop-requested'}], requested);
		expect(stopping.effects).toEqual([{type: 'terminate', epoch: 3, pid: 100}]);
		// The restart's own termination ends: it no longer spawns.
		expect(run([{type: 'terminated', epoch: 2}], stopping.state).effects).toEqual([]);
		const stopped = run([{type: 'terminated', epoch: 3}], stopping.state);
		expect(types(stopped.effects)).toEqual(['clear-records', 'publish']);
		expect(stopped.state.status).toMatchObject({state: 'exited', pid: null, message: 'stopped'});
	});

	it('a process spawned for an overtaken decision is killed, not recorded', () => {
		const spawning = run([{type: 'nothing-to-adopt'}]).state;
		const stopped = run([{type: 'stop-requested'}, {type: 'terminated', epoch: 2}], spawning);
		expect(stopped.state.status.state).toBe('exited');
		const late = run([{type: 'spawned', epoch: 1, pid: 300, now: 1}], stopped.state);
		expect(late.effects).toEqual([{type: 'kill', pid: 300}]);
		expect(late.state.status.pid).toBeNull();
	});

	it('a probe answer for an earlier epoch is dropped', () => {
		const requested = run([{type: 'restart-requested'}], runningJupyter()).state;
		const late = transition(requested, {
			type: 'probe-answered',
			epoch: 1,
			now: 5000,
			kernels: 3,
			lastActivity: null,
		});
		expect(late.state).toBe(requested);
		expect(late.effects).toEqual([]);
	});

	it('a start is unreachable only after its deadline; a lost answer at once', () => {
		const spawned = run([
			{type: 'nothing-to-adopt'},
			{type: 'spawned', epoch: 1, pid: 100, now: 1000},
		]).state;
		const early = run([probeEvent(1, 60_000, {reachable: false, message: 'refused'})], spawned);
		expect(early.effects).toEqual([]);
		const late = run([probeEvent(1, 122_000, {reachable: false, message: 'refused'})], spawned);
		expect(late.state.status).toMatchObject({
			state: 'unreachable',
			message: 'no answer 120 s after start: refused',
		});
		const lost = run(
			[probeEvent(1, 3000, {reachable: true, status: 403, kernels: null, lastActivity: null})],
			runningJupyter(),
		);
		expect(lost.state.status).toMatchObject({
			state: 'unreachable',
			message: '/api/status answered 403 (another server on the port?)',
		});
	});

	it('a foreign listener is said at once, and the state only leaves starting once it ran', () => {
		const spawned = run([
			{type: 'nothing-to-adopt'},
			{type: 'spawned', epoch: 1, pid: 100, now: 1000},
		]).state;
		const foreign = {reachable: false, message: 'something else holds it', foreign: true} as const;
		const starting = run([probeEvent(1, 2000, foreign)], spawned);
		expect(starting.state.status).toMatchObject({
			state: 'starting',
			message: 'something else holds it',
		});
		const running = run([probeEvent(1, 3000, foreign)], runningJupyter());
		expect(running.state.status.state).toBe('unreachable');
	});

	it('a busy port ends the start in exited, without a restart', () => {
		const {state, effects} = run([
			{type: 'nothing-to-adopt'},
			{type: 'port-busy', epoch: 1, message: 'port 8888 is in use'},
		]);
		expect(types(effects)).toEqual(['spawn', 'publish']);
		expect(state.status).toMatchObject({state: 'exited', message: 'port 8888 is in use'});
		expect(run([{type: 'poll-due'}], state).effects).toEqual([]);
	});

	it('after dispose nothing is published or started, and a pending restart is cancelled', () => {
		const crashed = run([died(1, 1)], runningJupyter());
		const disposed = run([{type: 'dispose'}], crashed.state);
		expect(disposed.effects).toEqual([{type: 'cancel-restart'}]);
		const after = run(
			[{type: 'restart-due', epoch: 1}, {type: 'restart-requested'}, {type: 'poll-due'}],
			disposed.state,
		);
		expect(after.effects).toEqual([]);
		// A stop still ends Jupyter (quit with stop), silently.
		const stopped = run(
			[{type: 'stop-requested'}, {type: 'terminated', epoch: 2}],
			run([{type: 'dispose'}], runningJupyter()).state,
		);
		expect(stopped.effects).toEqual([
			{type: 'terminate', epoch: 2, pid: 100},
			{type: 'clear-records'},
		]);
		expect(stopped.state.status.state).toBe('exited');
	});
});
