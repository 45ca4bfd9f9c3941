/**
 * Files only the user may read (the token, the pid and runtime records): written whole to a
 * temporary file beside the target, then renamed over it, so no reader sees half a file and the
 * mode is 0600 from the first byte.
 */
import {chmodSync, mkdirSync, renameSync, writeFileSync} from 'node:fs';

/** Create `dir` (and missing parents) as 0700, and tighten it if it exists. */
export function ensurePrivateDir(dir: string): void {
	mkdirSync(dir, {recursive: true, mode: 0o700});
	chmodSync(dir, 0o700);
}

/** Write `text` to `file` as 0600, atomically (temporary file + rename). */
export function writePrivateFile(file: string, text: string): void {
	const temporary = `${file}.${process.pid}.tmp`;
	writeFileSync(temporary, text, {mode: 0o600});
	chmodSync(temporary, 0o600);
	renameSync(temporary, file);
}
