import {spawn} from 'node:child_process';
import {mkdir, writeFile} from 'node:fs/promises';
import path from 'node:path';
import {sanitizeLine} from '../core/sanitize.js';

function escapeHtml(text: string): string {
	return text.replaceAll('&', '&amp;').replaceAll('"', '&quot;').replaceAll('<', '&lt;');
}

/** How long an opener that is still running counts as having started a browser. */
const openerGraceMs = 3000;

/**
 * Opens the URL through a 0600 redirect file, as Jupyter does, so the token is in no process's
 * arguments. Resolves with the file's path once the opener (`xdg-open`, `open`) exits 0 or is
 * still running after a grace period; rejects with what failed (no opener, its exit status and
 * first line of stderr) and the file's path, which a browser opened by hand can still use.
 */
export async function openInBrowser(url: string, dir: string): Promise<string> {
	await mkdir(dir, {recursive: true, mode: 0o700});
	const file = path.join(dir, 'open-jupyter.html');
	const html = `<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="0;url=${escapeHtml(url)}"><title>gpujup</title><p><a href="${escapeHtml(url)}">Open Jupyter</a></p>\n`;
	await writeFile(file, html, {mode: 0o600});
	const opener = process.platform === 'darwin' ? 'open' : 'xdg-open';
	return new Promise((resolve, reject) => {
		const fail = (why: string) => {
			reject(new BrowserError(why, file));
		};

		const child = spawn(opener, [file], {stdio: ['ignore', 'ignore', 'pipe'], detached: true});
		let stderr = '';
		child.stderr?.on('data', (chunk: Buffer) => {
			if (stderr.length < 500) stderr += chunk.toString('utf8');
		});
		const timer = setTimeout(() => {
			child.stderr?.destroy();
			child.unref();
			resolve(file);
		}, openerGraceMs);
		timer.unref();
		child.on('error', (error: NodeJS.ErrnoException) => {
			clearTimeout(timer);
			fail(error.code === 'ENOENT' ? `${opener} not found` : `${opener}: ${error.message}`);
		});
		child.on('exit', (code, signal) => {
			clearTimeout(timer);
			if (code === 0) {
				resolve(file);
				return;
			}

			const said = sanitizeLine(stderr.trim().split('\n')[0] ?? '').slice(0, 120);
			fail(
				`${opener} ${signal ? `died of ${signal}` : `exited ${code}`}${said ? ` (${said})` : ''}`,
			);
		});
	});
}

/** No browser was opened: why, and the redirect file that still holds the link. */
export class BrowserError extends Error {
	constructor(
		readonly why: string,
		readonly file: string,
	) {
		super(`${why}; the link is in ${file}`);
	}
}
