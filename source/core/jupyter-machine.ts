import {defaultBackoff, nextDelay, stableResetMs, type BackoffPolicy} from './backoff.js';
import {missingIpykernelExitCode} from './exit-codes.js';
import {missingIpykernelMessage, type JupyterEnv} from './jupyter-command.js';
import {blankJupyterStatus, type JupyterStatus} from './types.js';

/**
 * The supervision of one Jupyter (`gpujup host`) as data, like the hop machine: the supervisor
 * feeds it events and runs the effects it returns. Every spawn and every deliberate restart or
 * stop bumps the epoch; an event of an older epoch (a probe that answered for the process just
 * stopped, the death of the Jupyter a restart is killing, a crash restart that came due after
 * the user's) is dropped, so a late answer can never undo a newer decision.
 */
export type JupyterMachineState = {
	/** What the store shows; `status.state` is the machine's phase. */
	readonly status: JupyterStatus;
	readonly epoch: number;
	/** The process supervised now (null between a death and the next spawn). */
	readonly pid: number | null;
	/** The phase a spawn in flight shows once its process exists. */
	readonly launching: 'starting' | 'restarting';
	/** Epoch ms of the last spawn (for the start deadline); 0 for a Jupyter adopted answering. */
	readonly spawnedAt: number;
	/** Since when it answers (not reset by a spell of unreachable); null until it first does. */
	readonly runningSince: number | null;
	/** Crash restarts since the last stable run (drives the backoff). */
	readonly attempt: number;
	/** A crash restart is scheduled. */
	readonly restartPending: boolean;
	/** A deliberate restart or stop runs: the monitor stands back. */
	readonly busy: 'restart' | 'stop' | null;
	/** Supervision ended (Jupyter left running): nothing is published or started any more. */
	readonly disposed: boolean;
	readonly policy: BackoffPolicy;
	readonly startTimeoutMs: number;
	readonly env: JupyterEnv;
};

/** What one look at `/api/status` told (services/jupyter-probe.ts), and whether another owns the port. */
export type ProbeResult =
	| {
			readonly reachable: true;
			readonly status: number;
			readonly kernels: number | null;
			readonly lastActivity: string | null;
	  }
	| {readonly reachable: false; readonly message: string; readonly foreign?: boolean};

export type JupyterEvent =
	/** Supervision begins (the token is loaded): publish the first status. */
	| {readonly type: 'start'}
	/** The profile's records name a live process of ours; `probe` is its answer. */
	| {
			readonly type: 'adopt-candidate';
			readonly pid: number;
			readonly startedAt: number;
			/** Started with another command line or notebook directory than asked now. */
			readonly differs: boolean;
			readonly probe: ProbeResult;
			readonly now: number;
	  }
	| {readonly type: 'nothing-to-adopt'}
	| {readonly type: 'port-busy'; readonly epoch: number; readonly message: string}
	| {readonly type: 'spawn-error'; readonly epoch: number; readonly message: string}
	| {readonly type: 'spawned'; readonly epoch: number; readonly pid: number; readonly now: number}
	/** The poll timer (or the child's exit) asks for a look. */
	| {readonly type: 'poll-due'}
	| {
			readonly type: 'probe-answered';
			readonly epoch: number;
			readonly now: number;
			readonly kernels: number | null;
			readonly lastActivity: string | null;
	  }
	| {
			readonly type: 'probe-failed';
			readonly epoch: number;
			readonly now: number;
			readonly message: string;
			/** Something else holds the port: the token was not sent. */
			readonly foreign: boolean;
	  }
	| {
			readonly type: 'died';
			readonly epoch: number;
			/** Null for an adopted process (not our child: its status is unknown). */
			readonly exitCode: number | null;
			readonly signal: string | null;
			readonly lastLine: string | undefined;
			/** In [0, 1): the backoff's jitter, passed in to keep this function pure. */
			readonly random: number;
	  }
	| {readonly type: 'restart-due'; readonly epoch: number}
	| {readonly type: 'restart-requested'}
	| {readonly type: 'stop-requested'}
	/** The process a restart or stop ended is gone. */
	| {readonly type: 'terminated'; readonly epoch: number}
	| {readonly type: 'dispose'};

export type JupyterEffect =
	| {readonly type: 'publish'; readonly status: JupyterStatus}
	/** Check the port, rotate the log, start Jupyter; report `spawned`, `port-busy` or `spawn-error`. */
	| {readonly type: 'spawn'; readonly epoch: number}
	/** Write the pid file and `jupyter.json` for the process just spawned. */
	| {readonly type: 'record'; readonly pid: number; readonly startedAt: number}
	| {readonly type: 'clear-records'}
	/** Follow the log from its last few KB (an adopted Jupyter's recent lines). */
	| {readonly type: 'follow-log'}
	/** Look at the process and `/api/status`; report `died`, `probe-answered` or `probe-failed`. */
	| {readonly type: 'check'; readonly epoch: number; readonly pid: number}
	/** A `[gpujup]` line in Jupyter's log, where the log pane and log events see it. */
	| {readonly type: 'log-line'; readonly text: string}
	| {readonly type: 'schedule-restart'; readonly epoch: number; readonly ms: number}
	| {readonly type: 'cancel-restart'}
	/** Stop `pid` (when there is one), then report `terminated` with `epoch`. */
	| {readonly type: 'terminate'; readonly epoch: number; readonly pid: number | null}
	/** Stop a process started for a decision since overtaken (a stop during its spawn). */
	| {readonly type: 'kill'; readonly pid: number};

export type JupyterTransition = {
	readonly state: JupyterMachineState;
	readonly effects: readonly JupyterEffect[];
};

/** The machine before `start`. */
export function initialJupyterMachine(options: {
	readonly url: string;
	readonly env: JupyterEnv;
	readonly policy?: BackoffPolicy;
	readonly startTimeoutMs?: number;
}): JupyterMachineState {
	return {
		status: blankJupyterStatus('starting', options.url),
		epoch: 0,
		pid: null,
		launching: 'starting',
		spawnedAt: 0,
		runningSince: null,
		attempt: 0,
		restartPending: false,
		busy: null,
		disposed: false,
		policy: options.policy ?? defaultBackoff,
		startTimeoutMs: options.startTimeoutMs ?? 120_000,
		env: options.env,
	};
}

/** The event a probe's answer is for the machine. */
export function probeEvent(
	epoch: number,
	now: number,
	probe: ProbeResult,
): Extract<JupyterEvent, {type: 'probe-answered' | 'probe-failed'}> {
	if (probe.reachable && probe.status === 200)
		return {
			type: 'probe-answered',
			epoch,
			now,
			kernels: probe.kernels,
			lastActivity: probe.lastActivity,
		};
	if (probe.reachable)
		return {
			type: 'probe-failed',
			epoch,
			now,
			message: `/api/status answered ${probe.status} (another server on the port?)`,
			foreign: false,
		};
	return {
		type: 'probe-failed',
		epoch,
		now,
		message: probe.message,
		foreign: probe.foreign === true,
	};
}

const same = (state: JupyterMachineState): JupyterTransition => ({state, effects: []});

/** The status patched; published unless supervision ended. */
function publish(
	state: JupyterMachineState,
	patch: Partial<JupyterStatus>,
	effects: JupyterEffect[] = [],
): JupyterTransition {
	const status = {...state.status, ...patch};
	const next = {...state, status};
	return {
		state: next,
		effects: state.disposed ? effects : [...effects, {type: 'publish', status}],
	};
}

function spawn(
	state: JupyterMachineState,
	launching: 'starting' | 'restarting',
): JupyterTransition {
	const epoch = state.epoch + 1;
	return {
		state: {...state, epoch, pid: null, runningSince: null, launching},
		effects: [{type: 'spawn', epoch}],
	};
}

/** Whether `event` belongs to the process supervised now, with nobody else deciding. */
function monitoring(state: JupyterMachineState, epoch: number): boolean {
	return (
		epoch === state.epoch &&
		state.pid !== null &&
		state.busy === null &&
		!state.disposed &&
		!state.restartPending
	);
}

function seconds(ms: number): string {
	return ms > 0 ? ` in ${(ms / 1000).toFixed(1)} s` : '';
}

/** Pure transition function: the next state and the side effects the supervisor must run. */
export function transition(state: JupyterMachineState, event: JupyterEvent): JupyterTransition {
	switch (event.type) {
		case 'start': {
			return publish(state, {});
		}

		case 'adopt-candidate': {
			if (state.disposed || state.epoch !== 0) return same(state);
			const {probe} = event;
			const answers = probe.reachable && probe.status === 200;
			// Ours but not answering yet (gpujup restarted while it was starting): wait for it. A
			// 403 means another token: not the Jupyter we started.
			if (!answers && probe.reachable) return spawn(state, 'starting');
			const next: JupyterMachineState = {
				...state,
				epoch: state.epoch + 1,
				pid: event.pid,
				spawnedAt: answers ? 0 : event.now,
				runningSince: answers ? event.now : null,
			};
			return publish(
				next,
				{
					state: answers ? 'running' : 'starting',
					pid: event.pid,
					startedAt: event.startedAt,
					origin: 'adopted',
					kernels: answers ? probe.kernels : null,
					lastActivity: answers ? probe.lastActivity : null,
					message: event.differs
						? 'adopted a Jupyter started with other settings; restart it (j) to apply the new ones'
						: null,
				},
				[{type: 'follow-log'}],
			);
		}

		case 'nothing-to-adopt': {
			if (state.disposed || state.epoch !== 0) return same(state);
			return spawn(state, 'starting');
		}

		case 'port-busy': {
			if (event.epoch !== state.epoch) return same(state);
			return publish(
				{...state, pid: null},
				{state: 'exited', pid: null, kernels: null, startedAt: null, message: event.message},
			);
		}

		case 'spawn-error': {
			if (event.epoch !== state.epoch) return same(state);
			return publish({...state, pid: null}, {state: 'exited', pid: null, message: event.message});
		}

		case 'spawned': {
			// Started for a decision since overtaken (a stop or restart during its spawn).
			if (event.epoch !== state.epoch) return {state, effects: [{type: 'kill', pid: event.pid}]};
			const next: JupyterMachineState = {
				...state,
				pid: event.pid,
				spawnedAt: event.now,
				runningSince: null,
			};
			return publish(
				next,
				{
					state: state.launching,
					pid: event.pid,
					startedAt: event.now,
					origin: 'started',
					kernels: null,
					lastActivity: null,
					message: null,
				},
				[{type: 'record', pid: event.pid, startedAt: event.now}],
			);
		}

		case 'poll-due': {
			if (!monitoring(state, state.epoch)) return same(state);
			return {state, effects: [{type: 'check', epoch: state.epoch, pid: state.pid!}]};
		}

		case 'probe-answered': {
			if (!monitoring(state, event.epoch)) return same(state);
			const runningSince = state.runningSince ?? event.now;
			// A stable run: the next crash restarts at once again.
			const attempt = event.now - runningSince > stableResetMs ? 0 : state.attempt;
			return publish(
				{...state, runningSince, attempt},
				{
					state: 'running',
					kernels: event.kernels,
					lastActivity: event.lastActivity,
					message: state.status.state === 'running' ? state.status.message : null,
				},
			);
		}

		case 'probe-failed': {
			if (!monitoring(state, event.epoch)) return same(state);
			const starting = state.runningSince === null;
			if (event.foreign)
				return publish(state, {
					state: starting ? state.status.state : 'unreachable',
					kernels: null,
					message: event.message,
				});
			// A start may take a while (first run, a slow disk): only its deadline makes it news.
			if (starting && event.now - state.spawnedAt < state.startTimeoutMs) return same(state);
			return publish(state, {
				state: 'unreachable',
				message: starting
					? `no answer ${Math.round(state.startTimeoutMs / 1000)} s after start: ${event.message}`
					: event.message,
			});
		}

		case 'died': {
			if (!monitoring(state, event.epoch)) return same(state);
			const pid = state.pid!;
			const {exitCode, signal} = event;
			const gone: JupyterMachineState = {...state, pid: null};
			if (exitCode === missingIpykernelExitCode) {
				// The env cannot run kernels: restarting would fail the same way until the user fixes it.
				return publish(gone, {
					state: 'exited',
					pid: null,
					kernels: null,
					startedAt: null,
					message: missingIpykernelMessage(state.env),
				});
			}

			const attempt = state.attempt + 1;
			const ms = nextDelay(attempt, state.policy, () => event.random);
			const how =
				signal !== null
					? `killed by ${signal}`
					: exitCode !== null
						? `exited with code ${exitCode}`
						: 'exited';
			// Said in the log too, where a laptop's log pane and the log events see it.
			const died =
				signal !== null
					? `died: ${signal}`
					: exitCode !== null
						? `exited with code ${exitCode}`
						: 'died (adopted, so its exit status is unknown)';
			const message = `Jupyter (pid ${pid}) ${how}${event.lastLine ? `; last log line: ${event.lastLine}` : ''}; restarting${seconds(ms)}`;
			return withTail(
				publish(
					{...gone, attempt, restartPending: true},
					{
						state: 'restarting',
						pid: null,
						kernels: null,
						restarts: state.status.restarts + 1,
						message,
					},
					[{type: 'log-line', text: `Jupyter (pid ${pid}) ${died}; restarting${seconds(ms)}`}],
				),
				{type: 'schedule-restart', epoch: state.epoch, ms},
			);
		}

		case 'restart-due': {
			if (event.epoch !== state.epoch || !state.restartPending) return same(state);
			if (state.busy !== null || state.disposed) return same(state);
			return spawn({...state, restartPending: false}, 'restarting');
		}

		case 'restart-requested': {
			if (state.disposed || state.busy !== null) return same(state);
			const next: JupyterMachineState = {
				...state,
				epoch: state.epoch + 1,
				busy: 'restart',
				restartPending: false,
			};
			const effects: JupyterEffect[] = state.restartPending ? [{type: 'cancel-restart'}] : [];
			return withTail(
				publish(next, {state: 'restarting', message: 'restarting on request'}, effects),
				{type: 'terminate', epoch: next.epoch, pid: state.pid},
			);
		}

		case 'stop-requested': {
			if (state.busy === 'stop') return same(state);
			const epoch = state.epoch + 1;
			const effects: JupyterEffect[] = state.restartPending ? [{type: 'cancel-restart'}] : [];
			effects.push({type: 'terminate', epoch, pid: state.pid});
			return {state: {...state, epoch, busy: 'stop', restartPending: false}, effects};
		}

		case 'terminated': {
			if (event.epoch !== state.epoch || state.busy === null) return same(state);
			const next: JupyterMachineState = {...state, pid: null, busy: null};
			if (state.busy === 'stop')
				return publish(
					next,
					{state: 'exited', pid: null, kernels: null, startedAt: null, message: 'stopped'},
					[{type: 'clear-records'}],
				);
			// A deliberate restart is no crash: the backoff starts over.
			const restarted = {...next, attempt: 0};
			return state.disposed ? same(restarted) : spawn(restarted, 'restarting');
		}

		case 'dispose': {
			if (state.disposed) return same(state);
			return {
				state: {...state, disposed: true, restartPending: false},
				effects: state.restartPending ? [{type: 'cancel-restart'}] : [],
			};
		}
	}
}

function withTail(transition: JupyterTransition, effect: JupyterEffect): JupyterTransition {
	return {state: transition.state, effects: [...transition.effects, effect]};
}
