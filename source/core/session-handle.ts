import type {KernelAction} from './kernels.js';

/** What a running role (connect, host, demo) offers the dashboard, the socket and the shell. */
export type SessionHandle = {
	reconnect(): void;
	restartJupyter(): Promise<void>;
	/** Why `restartJupyter` would fail now, or null (absent: it can always be tried). */
	restartBlocked?(): string | null;
	/** The Jupyter URL with its token as seen from this machine, or null while unknown. */
	urlWithToken(): string | null;
	/** For the control socket's `token` request. */
	token(): {token: string; port: number} | null;
	/** Interrupt, restart or shut down a notebook's kernel; resolves what was done, in words. */
	kernelAction?(id: string, action: KernelAction): Promise<string>;
	/** The GPU host's own Jupyter stopped (`gpujup host --stop-jupyter`): the pid it had. */
	stopJupyter?(): Promise<{readonly pid: number | null}>;
	dispose(options: {stopJupyter: boolean}): Promise<void>;
	/**
	 * What the user must still do once the session is gone (a job gpujup could not cancel), for
	 * the shell to print on stderr after the terminal is restored; asked after `dispose`.
	 */
	farewell?(): readonly string[];
};
