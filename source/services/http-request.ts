/**
 * One HTTP request with `node:http` (or `node:https` for an https URL, loaded only then), its
 * body read whole up to a bound. The dashboard's process asks Jupyter's REST API every 2 s:
 * Node's `fetch` would load undici and its HTTP/2, TLS and web-stream modules for it, about
 * 14 MB of a dashboard whose budget is 100 MB. Redirects are not followed.
 */
import http from 'node:http';

export type HttpResponse = {
	readonly status: number;
	readonly body: string;
};

export type HttpRequestOptions = {
	readonly method?: string;
	readonly headers?: Readonly<Record<string, string>>;
	readonly body?: string;
	/** The whole exchange, from connecting to the body's end. */
	readonly timeoutMs: number;
	/** A longer body is cut here (default 4 MiB). */
	readonly maxBytes?: number;
};

export class HttpTimeoutError extends Error {
	constructor(method: string, url: URL, timeoutMs: number) {
		super(`${method} ${url.pathname}: no answer within ${Math.round(timeoutMs / 1000)} s`);
		this.name = 'HttpTimeoutError';
	}
}

export async function httpRequest(
	target: string | URL,
	options: HttpRequestOptions,
): Promise<HttpResponse> {
	const url = new URL(target);
	const method = options.method ?? 'GET';
	const client = url.protocol === 'https:' ? await import('node:https') : http;
	const maxBytes = options.maxBytes ?? 4 * 1024 * 1024;
	return new Promise((resolve, reject) => {
		const headers: Record<string, string> = {...options.headers};
		if (options.body !== undefined)
			headers['content-length'] = String(Buffer.byteLength(options.body));
		const request = client.request(url, {method, headers}, (response) => {
			const chunks: Buffer[] = [];
			let size = 0;
			response.on('data', (chunk: Buffer) => {
				if (size >= maxBytes) return;
				chunks.push(chunk);
				size += chunk.length;
			});
			response.on('end', () => {
				clearTimeout(timer);
				resolve({
					status: response.statusCode ?? 0,
					body: Buffer.concat(chunks).subarray(0, maxBytes).toString('utf8'),
				});
			});
			response.on('error', fail);
		});
		const timer = setTimeout(() => {
			request.destroy(new HttpTimeoutError(method, url, options.timeoutMs));
		}, options.timeoutMs);
		function fail(error: Error) {
			clearTimeout(timer);
			reject(error);
		}

		request.on('error', fail);
		request.end(options.body);
	});
}
