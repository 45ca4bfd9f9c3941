import type {Duplex} from 'node:stream';
import type {Client} from 'ssh2';
import type {ControlToken, LogResume} from '../core/control-protocol.js';
import type {JsonEvent} from '../core/events.js';
import {ControlConnection, ControlError} from './control-connection.js';
import {execText} from './remote-exec.js';

/**
 * Where `gpujup host` keeps its socket on the GPU host for this profile, if one is there. The
 * path must be absolute for stream-local forwarding, so one exec asks the remote shell.
 */
export async function discoverAgentSocket(client: Client, profile: string): Promise<string | null> {
	const safeProfile = profile.replaceAll(/[^\w.-]/g, '_');
	const {stdout} = await execText(
		client,
		`p="\${XDG_STATE_HOME:-$HOME/.local/state}/gpujup/${safeProfile}/host.sock"; [ -S "$p" ] && printf '%s' "$p"; true`,
		{timeoutMs: 10_000},
	);
	const path = stdout.trim();
	return path.startsWith('/') ? path : null;
}

/** Opens a stream to a Unix socket on the SSH server (OpenSSH's direct-streamlocal). */
export async function openStreamLocal(client: Client, socketPath: string): Promise<Duplex> {
	return new Promise((resolve, reject) => {
		client.openssh_forwardOutStreamLocal(socketPath, (error, channel) => {
			if (error) reject(error);
			else resolve(channel);
		});
	});
}

/** What the agent gave on connect. */
export type Agent = {
	readonly connection: ControlConnection;
	/** Its Jupyter's token and port; null while it has none (stopped, restarting). */
	readonly token: ControlToken | null;
	/** Its run (new after a `gpujup host` restart); null from an agent too old to say. */
	readonly instance: string | null;
	/** Its notifications' count when subscribed; null from an agent too old to say. */
	readonly notifySeq: number | null;
};

/**
 * The agent's Jupyter token. An error reply means "no token yet" (Jupyter stopped or restarting):
 * null, to ask again later; a closed or silent channel rejects.
 */
export async function requestAgentToken(
	connection: ControlConnection,
): Promise<ControlToken | null> {
	try {
		return await connection.request('token');
	} catch (error) {
		// An error reply, or a token of another shape: none to use yet.
		if (error instanceof ControlError) return null;
		throw error;
	}
}

/**
 * Reaches `gpujup host` through the second hop and subscribes to its events (after `resume`'s
 * line when it is the same run). Resolves null when no agent runs there; rejects when one runs but
 * cannot be used (the caller falls back, with a note saying why).
 */
export async function connectAgent(
	client: Client,
	profile: string,
	onEvent: (event: JsonEvent) => void,
	resume: LogResume | null = null,
	onDropped?: (note: string) => void,
): Promise<Agent | null> {
	const socketPath = await discoverAgentSocket(client, profile);
	if (!socketPath) return null;
	const connection = new ControlConnection(await openStreamLocal(client, socketPath));
	// Before subscribing: the snapshot follows the reply in the same read.
	connection.on('event', onEvent);
	if (onDropped) connection.on('dropped', onDropped);
	try {
		const token = await requestAgentToken(connection);
		const {instance, notifySeq} = await connection.request(
			'subscribe',
			5000,
			resume ? {logAfter: resume} : {},
		);
		return {connection, token, instance, notifySeq};
	} catch (error) {
		connection.close();
		throw error;
	}
}
