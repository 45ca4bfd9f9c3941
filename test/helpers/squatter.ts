/**
 * A port squatter for the token tests: a tiny HTTP server running as another user (`nobody`, via
 * `setpriv`) on a loopback port, answering every request like Jupyter's `/api/status` and writing
 * each request (line and headers) to its stdout, which the test reads.
 */
import {spawn, type ChildProcess} from 'node:child_process';
import {stopChild} from './proc.js';
import {waitFor} from './wait-for.js';

const script = String.raw`
import http.server, json, sys
class H(http.server.BaseHTTPRequestHandler):
    def answer(self):
        print("REQUEST " + self.requestline + " HEADERS " + json.dumps(dict(self.headers.items())), flush=True)
        body = b'{"kernels": 0, "started": "2024-01-01T00:00:00Z", "last_activity": "2024-01-01T00:00:00Z"}'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_GET = answer
    do_POST = answer
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
`;

export type Squatter = {
	readonly uid: 65_534;
	readonly child: ChildProcess;
	/** Every request it got so far (request line and headers, one per line). */
	requests(): string;
	dispose(): Promise<void>;
};

/** Start the squatter as `nobody` on 127.0.0.1:`port` and wait until it answers. */
export async function startSquatter(port: number): Promise<Squatter> {
	const child = spawn(
		'/usr/bin/setpriv',
		[
			'--reuid=nobody',
			'--regid=nogroup',
			'--clear-groups',
			'/usr/bin/python3',
			'-c',
			script,
			String(port),
		],
		{stdio: ['ignore', 'pipe', 'pipe'], cwd: '/'},
	);
	let out = '';
	let err = '';
	child.stdout!.setEncoding('utf8');
	child.stderr!.setEncoding('utf8');
	child.stdout!.on('data', (chunk: string) => {
		out += chunk;
	});
	child.stderr!.on('data', (chunk: string) => {
		err += chunk;
	});
	child.on('error', () => {});
	const squatter: Squatter = {
		uid: 65_534,
		child,
		requests: () => out,
		async dispose() {
			await stopChild(child, {graceMs: 2000});
		},
	};
	try {
		await waitFor(
			async () => {
				if (child.exitCode !== null) throw new Error(`squatter exited: ${err}`);
				const response = await fetch(`http://127.0.0.1:${port}/probe-by-test`, {
					signal: AbortSignal.timeout(2000),
				});
				await response.arrayBuffer();
				return response.status === 200 && out.includes('probe-by-test');
			},
			{timeoutMs: 30_000, message: `the squatter on 127.0.0.1:${port}`},
		);
	} catch (error: unknown) {
		await squatter.dispose();
		throw error;
	}
	return squatter;
}
