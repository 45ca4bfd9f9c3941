/**
 * Reaches into ssh2's client (client.js `sendKA`: `_protocol.ping()` and the `_callbacks` queue)
 * to send an OpenSSH keepalive whose reply we see: it keeps the link alive and measures its RTT.
 *
 * The dangerous one: if a future ssh2 moved these, no keepalive would be sent while our deadline
 * (keepalive × count of silence) still ran, so an idle healthy link would be cut every period.
 * When the probe finds them missing, ssh2's public `keepaliveInterval` sends the keepalives
 * instead (its own counter disarmed: our deadline still counts any inbound byte as life), and the
 * RTT is not measured (rttMs null).
 */
import type {ConnectConfig} from 'ssh2';
import type {WorkaroundObject} from '../../core/events.js';
import {inspectSsh2Client} from './ssh2-client-probe.js';

export const name = 'ssh2-ping';

/** ssh2 internals used for OpenSSH-style keepalives (see client.js `sendKA`). */
type ClientInternals = {
	_protocol?: {ping?: unknown};
	_callbacks?: unknown;
};

/** Whether a connected ssh2 client carries the internals this workaround uses. */
export function probeClient(client: unknown): WorkaroundObject {
	const internals = (client ?? {}) as ClientInternals;
	const missing = [
		typeof internals._protocol?.ping === 'function' ? null : '_protocol.ping()',
		Array.isArray(internals._callbacks) ? null : '_callbacks[]',
	].filter((m) => m !== null);
	return missing.length === 0
		? {name, active: true, detail: 'keepalives through ssh2 internals; RTT measured'}
		: {
				name,
				active: false,
				detail: `ssh2 has no ${missing.join(' or ')}: ssh2's own keepaliveInterval sends the keepalives, RTT not measured`,
			};
}

let probed: WorkaroundObject | undefined;

/** This install's ssh2, probed once on a client that goes nowhere. */
export function probe(): WorkaroundObject {
	probed ??= inspectSsh2Client(probeClient);
	return probed;
}

/**
 * ssh2's keepalive settings for a connection. With the workaround active ours replace ssh2's: its
 * counter resets only on replies, which would cut a slow but healthy download. Off, ssh2 sends
 * them (often enough that a reply lands inside even a one-interval deadline), never giving up on
 * its own: the deadline stays ours.
 */
export function keepaliveConfig(
	active: boolean,
	keepaliveMs: number,
	keepaliveCount: number,
): Pick<ConnectConfig, 'keepaliveInterval' | 'keepaliveCountMax'> {
	if (active) return {keepaliveInterval: 0};
	return {
		keepaliveInterval: Math.max(1, Math.round(keepaliveCount > 1 ? keepaliveMs : keepaliveMs / 2)),
		keepaliveCountMax: Number.MAX_SAFE_INTEGER,
	};
}

/**
 * Send one `keepalive@openssh.com` global request; `onReply` runs when its reply (success or
 * failure, OpenSSH answers failure) comes back. False when nothing was sent: the client does not
 * look like ssh2's, or its connection is going away.
 */
export function sendPing(client: unknown, onReply: () => void): boolean {
	const internals = client as {
		_protocol?: {ping?: () => void};
		_callbacks?: Array<(hadError: unknown) => void>;
	};
	const protocol = internals._protocol;
	const callbacks = internals._callbacks;
	if (!protocol?.ping || !Array.isArray(callbacks)) return false;
	// Same order trick as ssh2's own keepalive: the global request's reply pops the next callback.
	callbacks.push(() => onReply());
	try {
		protocol.ping();
		return true;
	} catch {
		return false;
	}
}
