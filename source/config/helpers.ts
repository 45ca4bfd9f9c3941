/** Small helpers of config resolution: key spellings, lists, paths, "did you mean". */
import {userInfo} from 'node:os';
import {isAbsolute} from 'node:path';

export function splitList(value: string): string[] {
	return value
		.split(',')
		.map((item) => item.trim())
		.filter((item) => item !== '');
}

export function normalizeKey(key: string): string {
	return key.replaceAll('_', '-');
}

export function camelCase(name: string): string {
	return name.replaceAll(/-([a-z])/g, (_match, letter: string) => letter.toUpperCase());
}

export function isTable(value: unknown): value is Record<string, unknown> {
	return (
		typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date)
	);
}

export function nonEmpty(value: string | undefined): string | undefined {
	return value === undefined || value === '' ? undefined : value;
}

/**
 * A setting read before the config file is (`--config`, `--profile`): the flag's string, else the
 * variable when it is set and not empty, each with where it came from; null when neither gives it.
 */
export function flagOrVariable(
	flag: unknown,
	flagName: string,
	env: NodeJS.ProcessEnv,
	variable: string,
): {value: string; origin: string} | null {
	if (typeof flag === 'string') return {value: flag, origin: flagName};
	const value = nonEmpty(env[variable]);
	return value === undefined ? null : {value, origin: variable};
}

export function absoluteOrNull(value: string | undefined): string | null {
	// The XDG spec says relative values are invalid and must be ignored.
	return value && isAbsolute(value) ? value : null;
}

export function expandHome(path: string, home: string): string {
	return path === '~' || path.startsWith('~/') ? home + path.slice(1) : path;
}

export function osUser(): string {
	try {
		return userInfo().username;
	} catch {
		// No passwd entry for this uid (a container's arbitrary user): what the login said.
		return process.env['USER'] ?? 'root';
	}
}

export function escapeRegExp(text: string): string {
	return text.replaceAll(/[\\^$.*+?()[\]{}|]/g, '\\$&');
}

/** The candidate within edit distance 2 (3 for long words) of `word`, for "did you mean". */
export function closest(word: string, candidates: readonly string[]): string | null {
	let best: string | null = null;
	let bestDistance = word.length > 6 ? 4 : 3;
	for (const candidate of candidates) {
		const distance = editDistance(word, candidate);
		if (distance < bestDistance) {
			best = candidate;
			bestDistance = distance;
		}
	}

	return best;
}

function editDistance(a: string, b: string): number {
	let previous = Array.from({length: b.length + 1}, (_, index) => index);
	for (let i = 1; i <= a.length; i++) {
		const current = [i];
		for (let j = 1; j <= b.length; j++) {
			const cost = a[i - 1] === b[j - 1] ? 0 : 1;
			current[j] = Math.min(
				(previous[j] ?? 0) + 1,
				(current[j - 1] ?? 0) + 1,
				(previous[j - 1] ?? 0) + cost,
			);
		}

		previous = current;
	}

	return previous[b.length] ?? 0;
}
