/**
 * One websocket per kernel on Jupyter's `/api/kernels/<id>/channels`, listened to for IOPub
 * status messages (core/kernel-channel.ts says what they mean). The monitor sends one message of
 * its own on each: a `kernel_info_request` on the shell, the probe. Where the websocket cannot be
 * opened (the demo's stand-in, a proxy that refuses upgrades), the kernel is left to REST and
 * tried again later.
 */
import {randomUUID} from 'node:crypto';
import type WebSocket from 'ws';
import {
	type ChannelView,
	channelMessage,
	channelOpened,
	closedChannel,
	parseChannelMessage,
	probeWaitMs,
} from '../core/kernel-channel.js';

/** A Jupyter server the caller verified as the user's own (the token goes to it only). */
export type ChannelServer = {
	readonly port: number;
	readonly token: string;
	readonly baseUrl?: string;
};

export type KernelChannelsOptions = {
	/** Wait this long after a websocket failed or closed before trying it again (default 10 s). */
	readonly retryMs?: number;
	/**
	 * Give up opening a websocket after this long (default 65 s: Jupyter answers the first one on
	 * a kernel only once the kernel answered its `kernel_info_request`, up to its
	 * `kernel_info_timeout` of 60 s on a kernel still starting).
	 */
	readonly openTimeoutMs?: number;
	/** How long a round waits for new websockets to be ready before going on with REST (2 s). */
	readonly readyWaitMs?: number;
};

type Channel = {
	readonly ws: WebSocket;
	view: ChannelView;
	/** Settles once the probe is answered, its wait is over, or the websocket failed. */
	readonly ready: Promise<void>;
	closedAt: number | null;
};

/** `ws`, loaded on the first websocket: not on every start-up's path (about 10 ms). */
let wsModule: Promise<typeof WebSocket> | undefined;
const loadWebSocket = async () => {
	wsModule ??= import('ws').then((m) => m.default);
	return wsModule;
};

const serverKey = (s: ChannelServer) => `${s.port} ${s.baseUrl ?? '/'} ${s.token}`;

function channelsUrl(server: ChannelServer, kernelId: string, session: string): URL {
	const base = (server.baseUrl ?? '/').replace(/\/?$/, '/');
	const url = new URL(`ws://127.0.0.1:${server.port}${base}api/kernels/${kernelId}/channels`);
	url.searchParams.set('session_id', session);
	return url;
}

/** The probe: Jupyter messaging 5.3 `kernel_info_request` on the shell channel. */
function probe(msgId: string, session: string): string {
	return JSON.stringify({
		header: {
			msg_id: msgId,
			msg_type: 'kernel_info_request',
			username: 'gpujup',
			session,
			date: new Date().toISOString(),
			version: '5.3',
		},
		parent_header: {},
		metadata: {},
		content: {},
		channel: 'shell',
		buffers: [],
	});
}

export class KernelChannels {
	readonly #options: KernelChannelsOptions;
	readonly #channels = new Map<string, Channel>();
	#server: string | null = null;
	#disposed = false;

	constructor(options: KernelChannelsOptions = {}) {
		this.#options = options;
	}

	/**
	 * Watch exactly the kernels `ids` of `server` (null: none): open websockets for new ones (and
	 * for those whose websocket closed a while ago), close those of kernels gone. Resolves once
	 * every new websocket is ready to be read, or failed, or after `readyWaitMs` (those still
	 * opening are read once open; REST stands for them meanwhile).
	 */
	async sync(server: ChannelServer | null, ids: readonly string[]): Promise<void> {
		if (this.#disposed) return;
		const key = server ? serverKey(server) : null;
		if (key !== this.#server) {
			this.#closeAll();
			this.#server = key;
		}

		const wanted = new Set(server ? ids : []);
		for (const [id, channel] of this.#channels) {
			if (!wanted.has(id)) {
				channel.ws.terminate();
				this.#channels.delete(id);
			}
		}

		const now = Date.now();
		const retryMs = this.#options.retryMs ?? 10_000;
		const due = [...wanted].filter((id) => {
			const channel = this.#channels.get(id);
			return !channel || (channel.closedAt !== null && now - channel.closedAt >= retryMs);
		});
		if (due.length === 0) return;
		const Socket = await loadWebSocket();
		if (this.#disposed || this.#server !== key) return;
		const waits: Array<Promise<void>> = [];
		for (const id of due) {
			this.#channels.get(id)?.ws.terminate();
			const opened = this.#open(Socket, server!, id);
			this.#channels.set(id, opened);
			waits.push(opened.ready);
		}

		let timer: NodeJS.Timeout | undefined;
		await Promise.race([
			Promise.all(waits),
			new Promise<void>((resolve) => {
				timer = setTimeout(resolve, this.#options.readyWaitMs ?? 2000);
			}),
		]);
		clearTimeout(timer);
	}

	/** What kernel `id`'s websocket has seen; a closed view where there is none. */
	view(id: string): ChannelView {
		return this.#channels.get(id)?.view ?? closedChannel;
	}

	/** The kernels whose websocket is open now. */
	openIds(): Set<string> {
		const ids = new Set<string>();
		for (const [id, channel] of this.#channels) if (channel.view.open) ids.add(id);
		return ids;
	}

	#open(Socket: typeof WebSocket, server: ChannelServer, id: string): Channel {
		const session = randomUUID();
		const ws = new Socket(channelsUrl(server, id, session), {
			headers: {authorization: `token ${server.token}`},
			handshakeTimeout: this.#options.openTimeoutMs ?? 65_000,
			perMessageDeflate: false,
		});
		let settle: () => void = () => {};
		const ready = new Promise<void>((resolve) => {
			settle = resolve;
		});
		const channel: Channel = {ws, view: closedChannel, ready, closedAt: null};
		const probeId = randomUUID();
		let wait: NodeJS.Timeout | undefined;
		const done = () => {
			clearTimeout(wait);
			settle();
		};

		ws.on('open', () => {
			channel.view = channelOpened(probeId, Date.now());
			ws.send(probe(probeId, session), (error) => {
				if (error) ws.terminate();
			});
			wait = setTimeout(done, probeWaitMs + 50);
			wait.unref();
		});
		ws.on('message', (data, isBinary) => {
			if (isBinary) return;
			const message = parseChannelMessage(String(data));
			if (!message) return;
			const before = channel.view;
			channel.view = channelMessage(before, message, Date.now());
			if (before.probeId !== null && channel.view.probeId === null) done();
		});
		// Refused, a proxy without upgrades, a bad token: REST alone for this kernel, for a while.
		ws.on('error', () => {});
		ws.on('close', () => {
			channel.view = closedChannel;
			channel.closedAt = Date.now();
			done();
		});
		return channel;
	}

	#closeAll(): void {
		for (const channel of this.#channels.values()) channel.ws.terminate();
		this.#channels.clear();
	}

	dispose(): void {
		this.#disposed = true;
		this.#closeAll();
	}
}
