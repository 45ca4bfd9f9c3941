import {Duplex} from 'node:stream';
import ssh2 from 'ssh2';

/**
 * Lets `look` inspect a real ssh2 Client as connect() leaves it (its protocol object and callback
 * queue exist from then on), over a stream that goes nowhere: no server, no network, about 2 ms.
 * The client is destroyed before this returns; the errors it reports afterwards are expected.
 */
export function inspectSsh2Client<T>(look: (client: unknown) => T): T {
	const sock = new Duplex({
		read() {},
		write(_chunk, _encoding, callback) {
			callback();
		},
	});
	const client = new ssh2.Client();
	client.on('error', () => {});
	sock.on('error', () => {});
	try {
		client.connect({sock, username: 'probe', readyTimeout: 0, keepaliveInterval: 0});
		return look(client);
	} finally {
		client.destroy();
		sock.destroy();
	}
}
