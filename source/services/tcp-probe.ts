import net from 'node:net';

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

/**
 * One cheap knock: connect, optionally read the start of the SSH banner, close. Resolves true when
 * the far side answered, false otherwise; never rejects.
 */
export async function probeTcp(options: TcpProbeOptions): Promise<boolean> {
	const timeoutMs = options.timeoutMs ?? 2000;
	return new Promise((resolve) => {
		let settled = false;
		let received = '';
		const socket = net.connect({host: options.host, port: options.port});
		const finish = (ok: boolean) => {
			if (settled) return;
			settled = true;
			clearTimeout(timer);
			socket.destroy();
			resolve(ok);
		};
		const timer = setTimeout(() => finish(false), timeoutMs);
		socket.on('error', () => finish(false));
		socket.on('close', () => finish(false));
		socket.on('connect', () => {
			if (!options.banner) finish(true);
		});
		socket.on('data', (chunk: Buffer) => {
			received += chunk.toString('latin1');
			if (received.length >= 4) finish(received.startsWith('SSH-'));
		});
	});
}

/** A running probe loop; `dispose()` stops it. */
export type TcpProbeLoop = {dispose(): void};

/**
 * Knock every `intervalMs` (default 1 s) until the far side answers, then call `onAnswer` once and
 * stop. Used while a hop waits out its backoff, so recovery takes seconds rather than a backoff
 * step when the relay comes back.
 */
export function startTcpProbe(
	options: TcpProbeOptions & {readonly intervalMs?: number; readonly onAnswer: () => void},
): TcpProbeLoop {
	const intervalMs = options.intervalMs ?? 1000;
	let stopped = false;
	let timer: NodeJS.Timeout | undefined;
	const knock = async () => {
		timer = undefined;
		const ok = await probeTcp(options);
		if (stopped) return;
		if (ok) {
			stopped = true;
			options.onAnswer();
			return;
		}
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
