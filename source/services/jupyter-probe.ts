import http from 'node:http';
import type {Duplex} from 'node:stream';

/** What one look at Jupyter's `/api/status` tells. */
export type JupyterProbe =
	| {
			readonly reachable: true;
			/** The HTTP status: 200 with a good token, 403 without one. */
			readonly status: number;
			readonly kernels: number | null;
			readonly lastActivity: string | null;
			readonly started: string | null;
	  }
	| {readonly reachable: false; readonly message: string};

/**
 * GET /api/status over a stream of the caller's (an SSH channel to the GPU host's Jupyter port,
 * or a TCP socket). The token goes in a header, never in a URL that could be logged.
 */
export async function probeJupyter(
	openStream: () => Promise<Duplex>,
	token: string | null,
	timeoutMs = 5000,
): Promise<JupyterProbe> {
	let stream: Duplex;
	try {
		stream = await openStream();
	} catch (error) {
		return {reachable: false, message: error instanceof Error ? error.message : String(error)};
	}

	return new Promise((resolve) => {
		const headers: Record<string, string> = {host: '127.0.0.1', connection: 'close'};
		if (token) headers['authorization'] = `token ${token}`;
		const request = http.request(
			{
				method: 'GET',
				path: '/api/status',
				headers,
				createConnection: () => stream as never,
				timeout: timeoutMs,
			},
			(response) => {
				let body = '';
				response.setEncoding('utf8');
				response.on('data', (chunk: string) => {
					if (body.length < 65_536) body += chunk;
				});
				response.on('end', () => {
					let kernels: number | null = null;
					let lastActivity: string | null = null;
					let started: string | null = null;
					if (response.statusCode === 200) {
						try {
							const parsed = JSON.parse(body) as Record<string, unknown>;
							if (typeof parsed['kernels'] === 'number') kernels = parsed['kernels'];
							if (typeof parsed['last_activity'] === 'string')
								lastActivity = parsed['last_activity'];
							if (typeof parsed['started'] === 'string') started = parsed['started'];
						} catch {
							// Not Jupyter's JSON: still an HTTP answer.
						}
					}

					resolve({
						reachable: true,
						status: response.statusCode ?? 0,
						kernels,
						lastActivity,
						started,
					});
				});
				response.on('error', () => {
					resolve({reachable: false, message: 'connection closed while reading the answer'});
				});
			},
		);
		request.on('timeout', () => {
			request.destroy(new Error(`no answer from Jupyter within ${timeoutMs} ms`));
		});
		request.on('error', (error) => {
			stream.destroy();
			resolve({reachable: false, message: error.message});
		});
		request.end();
	});
}
