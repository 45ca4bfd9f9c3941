import type {Writable} from 'node:stream';

type Callback = (error?: Error | null) => void;

/**
 * The writes made in one turn of the event loop, handed to `stream` as one. For the second hop's
 * socket (a direct-tcpip channel through the relay): ssh2 writes each SSH packet on its own, each
 * becomes a CHANNEL_DATA, and the relay's sshd writes each to its TCP socket on its own. Nagle is
 * on there (OpenSSH sets TCP_NODELAY for interactive sessions only), so a second small packet
 * (SERVICE_REQUEST after NEWKEYS) waits for the first's ACK, which the receiver delays up to
 * 40 ms. Three such waits made the GPU host's handshake about 170 ms instead of 85 (bench: time to
 * ready). Reading is untouched; end() sends what is queued first.
 */
export function coalesceWrites(stream: Writable): void {
	const write = stream.write.bind(stream) as (chunk: Buffer, callback: Callback) => boolean;
	const end = stream.end.bind(stream) as (...args: unknown[]) => Writable;
	let queue: Buffer[] = [];
	let callbacks: Callback[] = [];
	let scheduled = false;

	const flush = () => {
		scheduled = false;
		if (queue.length === 0) return;
		const chunk = queue.length === 1 ? queue[0]! : Buffer.concat(queue);
		const waiting = callbacks;
		queue = [];
		callbacks = [];
		// A channel closed meanwhile: what was queued goes nowhere, as it would have unqueued.
		if (stream.destroyed || stream.writableEnded) return;
		write(chunk, (error) => {
			for (const callback of waiting) callback(error);
		});
	};

	stream.write = ((chunk: unknown, encoding?: unknown, callback?: unknown): boolean => {
		const done = typeof encoding === 'function' ? encoding : callback;
		queue.push(
			Buffer.isBuffer(chunk)
				? chunk
				: Buffer.from(
						chunk as string,
						typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8',
					),
		);
		if (typeof done === 'function') callbacks.push(done as Callback);
		if (!scheduled) {
			scheduled = true;
			setImmediate(flush);
		}
		return !stream.writableNeedDrain;
	}) as Writable['write'];

	stream.end = ((...args: unknown[]): Writable => {
		flush();
		return end(...args);
	}) as Writable['end'];
}
