import type {KernelAction} from './kernels.js';

/**
 * The side effects the dashboard asks for: the view calls them, the session shell
 * (shell/session.ts) runs them. A type only, so neither side imports the other.
 */
export type Commands = {
	reconnect(): void;
	restartJupyter(): void;
	/** Why a restart cannot happen now (no `gpujup host` to ask), or null: then `j` confirms first. */
	restartBlocked(): string | null;
	copyUrl(): void;
	openBrowser(): void;
	/** Interrupt, restart or shut down kernel `id` (restart and shut down were confirmed). */
	kernelAction(id: string, action: KernelAction): void;
	/** Answer the current prompt: host-key -> boolean; secret -> string, or null when cancelled. */
	answerPrompt(id: number, answer: boolean | string | null): void;
	/** The shell disposes services and exits; stopJupyter only from the host's quit question. */
	quit(options: {stopJupyter: boolean}): void;
};
