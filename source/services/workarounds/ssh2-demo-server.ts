/**
 * The demo's two reaches into ssh2's server side: a forbidden forward refused as OpenSSH refuses
 * it (`_protocol.channelOpenFail` with ADMINISTRATIVELY_PROHIBITED; ssh2's public reject() can
 * only say "connect failed"), and an outage simulated by destroying a connection's socket
 * (`_sock`; ssh2's public end() waits for the peer). Off, the demo uses the public calls: the
 * refusal reads "connect failed" and a simulated outage ends politely.
 */
import type {Connection} from 'ssh2';
import type {WorkaroundObject} from '../../core/events.js';
import {inspectSsh2Client} from './ssh2-client-probe.js';

export const name = 'ssh2-demo-server';

type Protocol = {
	channelOpenFail?: (recipient: number, reason: number, description: string) => void;
};

/** Whether ssh2's protocol object (shared by client and server) has channelOpenFail(). */
export function probeProtocol(protocol: unknown): WorkaroundObject {
	return typeof (protocol as Protocol | undefined)?.channelOpenFail === 'function'
		? {name, active: true, detail: "demo only: forbidden forwards refused as OpenSSH's are"}
		: {
				name,
				active: false,
				detail:
					'demo only: ssh2 has no _protocol.channelOpenFail(), forbidden forwards read "connect failed"',
			};
}

let probed: WorkaroundObject | undefined;

/** This install's ssh2, probed once. */
export function probe(): WorkaroundObject {
	probed ??= inspectSsh2Client((client) =>
		probeProtocol((client as {_protocol?: unknown})._protocol),
	);
	return probed;
}

/** ssh2's reject() can only say "connect failed"; OpenSSH says this for a forbidden forward. */
export function rejectProhibited(connection: Connection, reject: () => void): void {
	const protocol = (connection as unknown as {_protocol?: Protocol})._protocol;
	const original = protocol?.channelOpenFail;
	if (probe().active && protocol && typeof original === 'function') {
		// One call only, synchronously inside reject(): code 1 is ADMINISTRATIVELY_PROHIBITED.
		protocol.channelOpenFail = (recipient) => {
			protocol.channelOpenFail = original;
			original.call(protocol, recipient, 1, 'administratively prohibited: open failed');
		};
	}
	reject();
	if (protocol && original) protocol.channelOpenFail = original;
}

/** Drop a connection as a network outage would: end() waits for the peer, so cut its socket too. */
export function dropConnection(connection: Connection): void {
	try {
		connection.end();
	} catch {
		// Already gone.
	}
	const sock = (connection as unknown as {_sock?: {destroy?: unknown}})._sock;
	if (typeof sock?.destroy === 'function') (sock.destroy as () => void).call(sock);
}
