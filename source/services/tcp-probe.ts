import net from 'node:net';
import type {Duplex} from 'node:stream';

/** Where and how to knock. */
export type TcpProbeOptions = {
	readonly host: string;
	readonly port: number;
	/** Give up on one knock after this long (default 2000 ms). */
	readonly timeoutMs?: number;
	/**
	 * Also wait for the first bytes of an SSH banner. A plain TCP connect succeeds against a proxy
	 * or load balancer whose far side is still dead; the banner proves sshd itself answers.
	 */
	readonly banner?: boolean;
};

/** What {@link readBanner} read: the text, and whether the far side closed before it was enough. */
export type BannerRead = {readonly text: string; readonly closed: boolean};

/**
 * Read what a freshly opened stream says first, then destroy it: until `enough(text)` (default:
 * a whole line, or 256 bytes), the far side closing or failing, or the deadline. Never rejects.
 */
export async function readBanner(
	stream: Duplex,
	timeoutMs: number,
	enough: (text: string) => boolean = (text) => text.includes('\n') || text.length > 255,
): Promise<BannerRead> {
	return new Promise((resolve) => {
		let settled = false;
		let text = '';
		const finish = (closed: boolean) => {
			if (settled) return;
			settled = true;
			clearTimeout(timer);
			stream.removeAllListeners('data');
			stream.destroy();
			resolve({text, closed});
		};
		const timer = setTimeout(() => finish(false), timeoutMs);
		stream.on('error', () => finish(true));
		stream.on('close', () => finish(true));
		stream.on('end', () => finish(true));
		stream.on('data', (chunk: Buffer) => {
			text += chunk.toString('latin1');
			if (enough(text)) finish(false);
		});
	});
}

/**
 * Wait on a freshly opened stream for the start of an SSH banner (`SSH-`), then destroy it.
 * Resolves true on a banner, false on anything else, an error, a close or the deadline.
 */
export async function readsSshBanner(stream: Duplex, timeoutMs = 2000): Promise<boolean> {
	const {text} = await readBanner(stream, timeoutMs, (received) => received.length >= 4);
	return text.startsWith('SSH-');
}

/** Whether 127.0.0.1:`port` can be bound now (port 0 always can). */
export async function loopbackPortFree(port: number): Promise<boolean> {
	if (port === 0) return true;
	return new Promise((resolve) => {
		const server = net.createServer();
		server.unref();
		server.once('error', () => resolve(false));
		server.listen({host: '127.0.0.1', port, exclusive: true}, () => {
			server.close(() => resolve(true));
		});
	});
}

/**
 * One cheap knock: connect, optionally read the start of the SSH banner, close. Resolves true when
 * the far side answered, false otherwise; never rejects.
 */
export async function probeTcp(options: TcpProbeOptions): Promise<boolean> {
	const timeoutMs = options.timeoutMs ?? 2000;
	const socket = net.connect({host: options.host, port: options.port});
	if (options.banner) return readsSshBanner(socket, timeoutMs);
	return new Promise((resolve) => {
		const finish = (ok: boolean) => {
			clearTimeout(timer);
			socket.destroy();
			resolve(ok);
		};
		const timer = setTimeout(() => finish(false), timeoutMs);
		socket.on('error', () => finish(false));
		socket.on('close', () => finish(false));
		socket.on('connect', () => finish(true));
	});
}

/** A running probe loop; `dispose()` stops it. */
export type TcpProbeLoop = {dispose(): void};

/** How often and with what to knock, and whom to tell. */
export type ProbeLoopOptions = {
	/** One knock: true when the far side answered; must never reject. */
	readonly knock: () => Promise<boolean>;
	readonly intervalMs?: number;
	readonly onAnswer: () => void;
	/** Each knock that got no answer (the hop machine cuts a wait short only after one). */
	readonly onFail?: () => void;
};

/**
 * Knock every `intervalMs` (default 1 s) until the far side answers, then call `onAnswer` once and
 * stop. Used while a hop waits out its backoff, so recovery takes seconds rather than a backoff
 * step when the far side comes back.
 */
export function startProbeLoop(options: ProbeLoopOptions): TcpProbeLoop {
	const intervalMs = options.intervalMs ?? 1000;
	let stopped = false;
	let timer: NodeJS.Timeout | undefined;
	const knock = async () => {
		timer = undefined;
		const ok = await options.knock().catch(() => false);
		if (stopped) return;
		if (ok) {
			stopped = true;
			options.onAnswer();
			return;
		}
		options.onFail?.();
		if (stopped) return;
		timer = setTimeout(() => void knock(), intervalMs);
	};
	timer = setTimeout(() => void knock(), intervalMs);
	return {
		dispose() {
			stopped = true;
			if (timer) clearTimeout(timer);
		},
	};
}

/** {@link startProbeLoop} with {@link probeTcp} as the knock. */
export function startTcpProbe(
	options: TcpProbeOptions & Omit<ProbeLoopOptions, 'knock'>,
): TcpProbeLoop {
	return startProbeLoop({...options, knock: async () => probeTcp(options)});
}
