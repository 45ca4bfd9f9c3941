/**
 * Reaches into ssh2's client (client.js `sendKA`: `_protocol.ping()` and the `_callbacks` queue)
 * to send an OpenSSH keepalive whose reply we see.
 */

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
