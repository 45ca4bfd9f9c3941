/**
 * The data model every part of gpujup shares. The JSON contract of SPEC.md is a projection of
 * these types (see `core/events.ts`); the dashboard renders them. No token ever lives here.
 */

export const hopStates = ['connecting', 'ready', 'lost', 'waiting', 'failed', 'closed'] as const;
/** States of one SSH hop (SPEC: `hop` events). */
export type HopState = (typeof hopStates)[number];

export const errorKinds = [
	'auth',
	'host-key',
	'dns',
	'refused',
	'timeout',
	'port-in-use',
	'forbidden',
	'protocol',
	'closed',
] as const;
/** Every failure is classified into one of these (core/classify-error.ts). */
export type ErrorKind = (typeof errorKinds)[number];

export type ClassifiedError = {
	readonly kind: ErrorKind;
	readonly message: string;
};

/**
 * A hop's place in the laptop's chain: the first is `relay`, the last `host`, any between `jump`
 * (a chain of one is its `host`); `reverse` is the GPU host's tunnel.
 */
export type HopName = 'relay' | 'jump' | 'host' | 'reverse';

export type HopStatus = {
	readonly hop: HopName;
	/** Place in the chain, 0 = first (SPEC `index`). */
	readonly index: number;
	/** The alias or host the user wrote for it (SPEC `name`). */
	readonly name: string;
	/** What the user reads: `relay.example.org:22`, `p507 (via :19506)`. */
	readonly label: string;
	readonly state: HopState;
	/** Tries since the last ready. */
	readonly attempt: number;
	/** Returns to ready after a loss. */
	readonly reconnects: number;
	readonly rttMs: number | null;
	readonly error: ClassifiedError | null;
	/** Epoch ms when the hop last became ready (null unless ready). */
	readonly readySince: number | null;
	/** Epoch ms of the next try while `waiting`. */
	readonly retryAt: number | null;
	/** The last error that caused a reconnect, and when (for "reconnects 1 (last: timeout 41m ago)"). */
	readonly lastLoss: {readonly kind: ErrorKind; readonly at: number} | null;
};

export type ForwardState = 'listening' | 'closed';

export type ForwardStatus = {
	/** `127.0.0.1:19507` */
	readonly local: string;
	/** `127.0.0.1:19508` */
	readonly remote: string;
	readonly state: ForwardState;
	/** Connections open now. */
	readonly connections: number;
	/** `jupyter`, `tensorboard`, `6006`… */
	readonly label: string;
};

export type JupyterState = 'starting' | 'running' | 'exited' | 'restarting' | 'unreachable';

export type JupyterStatus = {
	readonly state: JupyterState;
	/** Never carries the token. */
	readonly url: string | null;
	readonly pid: number | null;
	readonly kernels: number | null;
	readonly restarts: number;
	/** Epoch ms Jupyter started (its uptime), when known. */
	readonly startedAt: number | null;
	/** Jupyter's own `last_activity` from /api/status (ISO), when known. */
	readonly lastActivity: string | null;
	/** `started`, `adopted`, `runtime file` (exec fallback), `stand-in` (demo). */
	readonly origin: string | null;
	readonly message: string | null;
	/** Every Jupyter server of the user's on the GPU host, where the laptop has looked. */
	readonly servers?: readonly JupyterServerSummary[];
};

/** A Jupyter status with nothing known yet but its state, URL and why. */
export function blankJupyterStatus(
	state: JupyterState,
	url: string,
	message: string | null = null,
): JupyterStatus {
	return {
		state,
		url,
		pid: null,
		kernels: null,
		restarts: 0,
		startedAt: null,
		lastActivity: null,
		origin: null,
		message,
	};
}

/** One Jupyter server on the GPU host, without its token. */
export type JupyterServerSummary = {
	readonly port: number;
	readonly pid: number | null;
	/** As seen on the GPU host: `http://127.0.0.1:19508/`. */
	readonly url: string;
};

export type GpuInfo = {
	readonly index: number;
	readonly uuid: string;
	readonly name: string;
	readonly busId: string | null;
	readonly mig: boolean;
	readonly utilizationGpu: number | null;
	readonly memoryUsedMiB: number | null;
	readonly memoryTotalMiB: number | null;
	readonly temperatureC: number | null;
	readonly powerW: number | null;
	readonly powerLimitW: number | null;
	readonly fanPercent: number | null;
};

export type GpuProcess = {
	readonly gpuUuid: string;
	readonly pid: number;
	readonly user: string | null;
	readonly command: string;
	readonly usedMemoryMiB: number | null;
};

export type GpuErrorKind = 'no-driver' | 'timeout' | 'failed';

export type GpuStatus = {
	readonly gpus: readonly GpuInfo[];
	readonly processes: readonly GpuProcess[];
	readonly error: {readonly kind: GpuErrorKind; readonly message: string} | null;
	readonly driverVersion: string | null;
	/** True for the demo's simulated GPUs: the dashboard labels them. */
	readonly simulated: boolean;
	/**
	 * Pids of `processes` the kernel monitor found in no process table of the GPU host: another PID
	 * namespace (a container), never matched to a notebook. Absent until the monitor has looked.
	 */
	readonly foreignPids?: readonly number[];
};

export type HostStats = {
	readonly cpuPercent: number;
	readonly memoryUsedMiB: number;
	readonly memoryTotalMiB: number;
};

/** A question the dashboard must ask the user (ssh-style prompts). */
export type Prompt =
	| {
			readonly kind: 'host-key';
			readonly id: number;
			readonly hop: HopName;
			readonly host: string;
			readonly keyType: string;
			readonly fingerprint: string;
	  }
	| {
			readonly kind: 'secret';
			readonly id: number;
			readonly hop: HopName;
			/** `Enter passphrase for key '/home/u/.ssh/id_ed25519':`, `Verification code:` */
			readonly message: string;
			readonly echo: boolean;
	  };

export type Notice = {
	readonly text: string;
	readonly level: 'info' | 'warn' | 'error';
	readonly at: number;
};
