/**
 * Reaches into ssh2's channels (Channel.js: `incoming.window`, `outgoing.id`,
 * `_client._protocol.channelWindowAdjust`) to grant the peer a wider receive window than ssh2's
 * fixed 2 MiB. When the probe finds them changed, channels keep ssh2's default window: slower
 * over a long fat link, but correct.
 */
import {createRequire} from 'node:module';
import type {WorkaroundObject} from '../../core/events.js';
import {inspectSsh2Client} from './ssh2-client-probe.js';

export const name = 'ssh2-window';

/** ssh2 channel internals used to widen a channel's receive window (see Channel.js). */
type ChannelInternals = {
	incoming?: {window?: unknown; state?: string};
	outgoing?: {id?: number};
	_client?: {_protocol?: {channelWindowAdjust?: (id: number, amount: number) => void}};
};

/**
 * Extra receive window granted on our direct-tcpip channels, on top of ssh2's fixed 2 MiB (which
 * it refills only once half is used). Measured on the two-hop loopback bench: 2 MiB in total gave
 * about 0.7 × OpenSSH, 8 MiB (here and on the hop channel) about 2.5 ×; 16 MiB on both channels
 * fell back to the slow case, so keep it moderate.
 */
export const extraChannelWindow = 6 * 1024 * 1024;

/**
 * Give the peer `extra` more bytes of window than ssh2 accounts for, for the channel's whole life.
 * ssh2 tops its window up to a fixed 2 MiB whenever half is used (and holds back while the reader
 * is backpressured); here its counter is shown `real - extra`, so the same logic keeps the real
 * window `extra` larger, with the same backpressure. A shown value of exactly 0 would make ssh2
 * drop data the peer may still send, so that one value reads as the smallest negative number
 * instead (arithmetic on it rounds back to integers). Does nothing on a channel that does not look
 * like ssh2's (a future version): the default window still works, only slower.
 */
export function widenChannelWindow(
	channel: unknown,
	extra = extraChannelWindow,
	active = probe().active,
): void {
	if (!active) return;
	const internals = channel as ChannelInternals;
	const incoming = internals.incoming;
	const id = internals.outgoing?.id;
	const protocol = internals._client?._protocol;
	if (
		extra <= 0 ||
		!incoming ||
		incoming.state !== 'open' ||
		typeof incoming.window !== 'number' ||
		typeof id !== 'number' ||
		typeof protocol?.channelWindowAdjust !== 'function'
	)
		return;
	const descriptor = Object.getOwnPropertyDescriptor(incoming, 'window');
	if (!descriptor || !('value' in descriptor)) return; // already widened
	let real = incoming.window + extra;
	try {
		protocol.channelWindowAdjust(id, extra);
	} catch {
		return; // the connection is going away
	}
	Object.defineProperty(incoming, 'window', {
		configurable: true,
		enumerable: true,
		get() {
			const shown = real - extra;
			return shown === 0 ? -Number.MIN_VALUE : shown;
		},
		set(value: number) {
			real = Math.round(value) + extra;
		},
	});
}

/** What the probe needs of ssh2: Channel.js's exports and a client's protocol object. */
export type ChannelModule = {
	readonly Channel?: unknown;
	readonly MAX_WINDOW?: unknown;
	readonly windowAdjust?: unknown;
};

/**
 * Whether ssh2 still keeps a channel's receive window as this workaround expects: a Channel built
 * by ssh2 holds the `incoming` and `_client` it was given, ssh2's refill (`windowAdjust`) tops
 * `incoming.window` up to MAX_WINDOW through `_client._protocol.channelWindowAdjust(outgoing.id,
 * amount)`, and a real client's protocol has that method.
 */
export function probeChannelModule(module: ChannelModule, protocol: unknown): WorkaroundObject {
	const off = (why: string): WorkaroundObject => ({
		name,
		active: false,
		detail: `${why}: channels keep ssh2's default 2 MiB window (slower over a far relay)`,
	});
	const {Channel, MAX_WINDOW: max, windowAdjust} = module;
	if (
		typeof Channel !== 'function' ||
		typeof max !== 'number' ||
		typeof windowAdjust !== 'function'
	)
		return off('ssh2/lib/Channel.js no longer exports Channel, MAX_WINDOW and windowAdjust');
	if (typeof (protocol as {channelWindowAdjust?: unknown})?.channelWindowAdjust !== 'function')
		return off('ssh2 has no _protocol.channelWindowAdjust()');
	const adjusts: Array<[number, number]> = [];
	const client = {
		_protocol: {
			channelWindowAdjust(id: number, amount: number) {
				adjusts.push([id, amount]);
			},
		},
	};
	const incoming = {id: 1, window: max / 4, packetSize: 32 * 1024, state: 'open'};
	const outgoing = {id: 7, window: max, packetSize: 32 * 1024, state: 'open'};
	let channel: {incoming?: unknown; _client?: unknown};
	try {
		channel = new (Channel as new (...args: unknown[]) => typeof channel)(client, {
			type: 'direct-tcpip',
			incoming,
			outgoing,
		});
		(windowAdjust as (channel: unknown) => void)(channel);
	} catch (error) {
		return off(`ssh2's Channel did not build as expected (${(error as Error).message})`);
	}
	if (channel.incoming !== incoming || channel._client !== client)
		return off("ssh2's Channel no longer keeps incoming and _client");
	const [adjust] = adjusts;
	if (
		incoming.window !== max ||
		adjusts.length !== 1 ||
		adjust?.[0] !== 7 ||
		adjust[1] !== (max * 3) / 4
	)
		return off("ssh2's windowAdjust no longer tops incoming.window up through channelWindowAdjust");
	return {
		name,
		active: true,
		detail: `forward and hop channels get ${extraChannelWindow / 1024 / 1024} MiB more than ssh2's ${max / 1024 / 1024} MiB window`,
	};
}

let probed: WorkaroundObject | undefined;

/** This install's ssh2, probed once. */
export function probe(): WorkaroundObject {
	if (probed) return probed;
	let module: ChannelModule;
	try {
		module = createRequire(import.meta.url)('ssh2/lib/Channel.js') as ChannelModule;
	} catch {
		module = {};
	}
	probed = inspectSsh2Client((client) =>
		probeChannelModule(module, (client as {_protocol?: unknown})._protocol),
	);
	return probed;
}
