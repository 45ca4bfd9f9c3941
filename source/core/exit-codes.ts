/**
 * Exit statuses beyond the usual three (0 ok, 1 a check failed or the chain is down, 2 bad usage
 * or config).
 */

/**
 * `gpujup host --no-tui` ends with this when the relay refuses its key or the relay's host key is
 * unknown or changed: retrying cannot fix either, so the systemd unit stops restarting on it
 * (`RestartPreventExitStatus`). 78 is `EX_CONFIG` of sysexits.h.
 */
export const hostCredentialsExitCode = 78;

/** Bad usage or config: the message names the flag, or the file, line and key. */
export const usageExitCode = 2;

/**
 * The Jupyter start script ends with this when the env (`--env`) has no ipykernel: the supervisor
 * then reports the fix instead of restarting into the same failure.
 */
export const missingIpykernelExitCode = 78;
