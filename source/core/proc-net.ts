/**
 * Who listens on a TCP port, from Linux's `/proc/net/tcp` and `/proc/net/tcp6` (readable without
 * privilege): the Jupyter token is only ever sent to a listener that belongs to the user.
 */

/** One socket in LISTEN state. */
export type TcpListener = {
	readonly port: number;
	/** Owner uid of the socket. */
	readonly uid: number;
	readonly inode: string;
};

/** Listening sockets in the text of `/proc/net/tcp{,6}` (header lines and other states skipped). */
export function parseTcpListeners(text: string): TcpListener[] {
	const listeners: TcpListener[] = [];
	for (const line of text.split('\n')) {
		const fields = line.trim().split(/\s+/);
		const local = fields[1];
		// Columns: sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode …
		if (!local || fields[3] !== '0A' || fields.length < 10) continue;
		const port = Number.parseInt(local.slice(local.lastIndexOf(':') + 1), 16);
		const uid = Number(fields[7]);
		if (!Number.isInteger(port) || !Number.isInteger(uid)) continue;
		listeners.push({port, uid, inode: fields[9]!});
	}

	return listeners;
}

/**
 * One exec on the GPU host: the SSH user's uid, then its listening sockets. POSIX sh; the grep
 * keeps the output small on a busy box (only LISTEN rows).
 */
export const listenerCheckCommand =
	"printf 'uid %s\\n' \"$(id -u)\"; grep -h ' 0A ' /proc/net/tcp /proc/net/tcp6 2>/dev/null; true";

/** What {@link listenerCheckCommand} printed, or null when it told nothing usable. */
export function parseListenerCheck(
	stdout: string,
): {readonly uid: number; readonly listeners: TcpListener[]} | null {
	const match = /^uid (\d+)\s*$/m.exec(stdout);
	if (!match) return null;
	const listeners = parseTcpListeners(stdout);
	// No table at all (not Linux, /proc hidden): unknown, not "nothing listens".
	if (listeners.length === 0 && !/^\s*\d+:\s/m.test(stdout)) return null;
	return {uid: Number(match[1]), listeners};
}

/** Whose listener is on `port`: none there, only the user's, or someone else's (by uid). */
export type PortOwnership =
	| {readonly kind: 'free'}
	| {readonly kind: 'ours'}
	| {readonly kind: 'foreign'; readonly uid: number};

/**
 * Every listener on the port (any address) must be the user's: a socket of another uid on the same
 * port may be the one that accepts the connection.
 */
export function portOwnership(
	listeners: readonly TcpListener[],
	port: number,
	uid: number,
): PortOwnership {
	const onPort = listeners.filter((l) => l.port === port);
	if (onPort.length === 0) return {kind: 'free'};
	const other = onPort.find((l) => l.uid !== uid);
	if (other) return {kind: 'foreign', uid: other.uid};
	return {kind: 'ours'};
}

/** The user name in one `getent passwd` / `/etc/passwd` line for `uid`, when it looks like one. */
export function passwdName(text: string, uid: number): string | null {
	for (const line of text.split('\n')) {
		const [name, , id] = line.split(':');
		if (id !== undefined && Number(id) === uid && name && /^[\w.-]{1,32}$/.test(name)) return name;
	}

	return null;
}

/** `uid 65534 (nobody)`, the way gpujup names the owner of a port. */
export function describeUid(uid: number, name: string | null): string {
	return `uid ${uid}${name ? ` (${name})` : ''}`;
}
