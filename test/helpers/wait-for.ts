/** Options for {@link waitFor}. */
export type WaitForOptions = {
	/** Give up after this long (default 30 s: sshd and Jupyter start slowly on a busy 2-core box). */
	readonly timeoutMs?: number;
	/** Pause between polls (default 50 ms). */
	readonly intervalMs?: number;
	/** Said first in the error thrown at the deadline. */
	readonly message?: string;
};

const describe = (value: unknown): string => {
	if (value instanceof Error) return `${value.name}: ${value.message}`;
	if (typeof value === 'string')
		return JSON.stringify(value.length > 2000 ? value.slice(-2000) : value);
	try {
		const text = JSON.stringify(value);
		return text === undefined ? String(value) : text.slice(0, 2000);
	} catch {
		return String(value);
	}
};

/**
 * Poll `fn` until it returns a truthy value and resolve with it. A throw or a rejection counts as
 * "not yet". At the deadline, reject with `message` and the last value or error seen, so a failing
 * test says what it was waiting for and what it saw instead.
 */
export async function waitFor<T>(
	fn: () => T | Promise<T>,
	options: WaitForOptions = {},
): Promise<NonNullable<T>> {
	const timeoutMs = options.timeoutMs ?? 30_000;
	const intervalMs = options.intervalMs ?? 50;
	const deadline = Date.now() + timeoutMs;
	let last: unknown = undefined;
	let lastWasError = false;
	for (;;) {
		try {
			const value = await fn();
			if (value) return value as NonNullable<T>;
			last = value;
			lastWasError = false;
		} catch (error: unknown) {
			last = error;
			lastWasError = true;
		}
		if (Date.now() >= deadline) break;
		await new Promise((resolve) =>
			setTimeout(resolve, Math.min(intervalMs, deadline - Date.now())),
		);
	}
	const what = options.message ?? 'condition';
	throw new Error(
		`waitFor timed out after ${timeoutMs} ms: ${what}; last ${lastWasError ? 'error' : 'value'}: ${describe(last)}`,
		lastWasError ? {cause: last} : undefined,
	);
}
