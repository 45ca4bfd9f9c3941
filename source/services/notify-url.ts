/**
 * Notifications POSTed to `--notify-url` in ntfy's format (a plain-text body, `Title` and `Tags`
 * headers), which any webhook also takes. Retried with backoff from a bounded queue, so a receiver
 * that is down never grows memory. The URL may carry a secret: it is never logged or shown, only
 * its origin.
 */
import {notificationLogLine, type AppAction, type AppState} from '../core/app-state.js';
import type {Notification, NotifyKind} from '../core/kernels.js';
import type {Store} from '../core/store.js';
import {httpRequest} from './http-request.js';

/** ntfy's tags (emoji short codes), one per kind. */
const tags: Record<NotifyKind, string> = {
	'cell-done': 'white_check_mark',
	'kernel-died': 'skull',
	'kernel-restarted': 'arrows_counterclockwise',
	'jupyter-restarted': 'arrows_counterclockwise',
	'tunnel-back': 'link',
	'job-ending': 'hourglass',
	'job-ended': 'stop_sign',
};

/**
 * A header value HTTP can carry: ASCII as it is, anything else as an RFC 2047 encoded word
 * (ntfy decodes it).
 */
export function headerText(text: string): string {
	if (/^[\u0020-\u007E]*$/.test(text)) return text;
	return `=?UTF-8?B?${Buffer.from(text, 'utf8').toString('base64')}?=`;
}

/** Where the notifications go, without path, query or credentials (for messages). */
export function safeOrigin(url: string): string {
	try {
		return new URL(url).origin;
	} catch {
		return 'an invalid URL';
	}
}

export type NotifyUrlOptions = {
	readonly url: string;
	/** At most this many notifications wait; older ones are dropped first (default 50). */
	readonly capacity?: number;
	/** First retry delay, doubling to `maxDelayMs` (defaults 1 s and 60 s). */
	readonly retryDelayMs?: number;
	readonly maxDelayMs?: number;
	/** A delivery failed (it is retried) or notifications were dropped: a line for the log. */
	readonly onProblem?: (message: string) => void;
};

export class NotifyUrl {
	readonly #options: NotifyUrlOptions;
	readonly #queue: Notification[] = [];
	#dropped = 0;
	#delayMs: number;
	#timer: NodeJS.Timeout | undefined;
	#sending = false;
	#disposed = false;
	/** Notifications delivered so far. */
	delivered = 0;

	constructor(options: NotifyUrlOptions) {
		this.#options = options;
		this.#delayMs = options.retryDelayMs ?? 1000;
	}

	/** Waiting to be delivered. */
	get pending(): number {
		return this.#queue.length;
	}

	send(notification: Notification): void {
		if (this.#disposed) return;
		this.#queue.push(notification);
		const capacity = this.#options.capacity ?? 50;
		while (this.#queue.length > capacity) {
			this.#queue.shift();
			this.#dropped++;
		}

		if (!this.#timer) void this.#drain();
	}

	async #drain(): Promise<void> {
		if (this.#sending || this.#disposed) return;
		this.#sending = true;
		try {
			while (this.#queue.length > 0 && !this.#disposed) {
				const next = this.#queue[0]!;
				try {
					await this.#post(next);
				} catch (error) {
					const why = error instanceof Error ? error.message : String(error);
					this.#options.onProblem?.(
						`notification to ${safeOrigin(this.#options.url)} failed (${why}); retrying in ${Math.round(this.#delayMs / 1000)} s`,
					);
					this.#timer = setTimeout(() => {
						this.#timer = undefined;
						void this.#drain();
					}, this.#delayMs);
					this.#timer.unref();
					this.#delayMs = Math.min(this.#delayMs * 2, this.#options.maxDelayMs ?? 60_000);
					return;
				}

				this.#queue.shift();
				this.delivered++;
				this.#delayMs = this.#options.retryDelayMs ?? 1000;
				if (this.#dropped > 0) {
					this.#options.onProblem?.(
						`${this.#dropped} notification(s) to ${safeOrigin(this.#options.url)} were dropped while it did not answer`,
					);
					this.#dropped = 0;
				}
			}
		} finally {
			this.#sending = false;
		}
	}

	async #post(notification: Notification): Promise<void> {
		const response = await httpRequest(this.#options.url, {
			method: 'POST',
			headers: {
				'content-type': 'text/plain; charset=utf-8',
				title: headerText(notification.title),
				tags: tags[notification.kind],
			},
			body: notification.message,
			timeoutMs: 10_000,
			maxBytes: 65_536,
		});
		// A redirect is not followed (the URL may carry a secret): it fails like any other answer.
		if (response.status < 200 || response.status > 299) throw new Error(`HTTP ${response.status}`);
	}

	dispose(): void {
		this.#disposed = true;
		clearTimeout(this.#timer);
		this.#timer = undefined;
	}
}

/**
 * Where a notification decided on this machine goes: the store (the header, the log line, the
 * `notify` event every subscriber gets) and, when configured, the notify URL.
 */
export function deliverNotification(
	dispatch: Store<AppState, AppAction>['dispatch'],
	notification: Notification,
	url?: NotifyUrl | null,
): void {
	dispatch({type: 'log', lines: [notificationLogLine(notification)]});
	dispatch({type: 'notify', notification, at: Date.now()});
	url?.send(notification);
}
