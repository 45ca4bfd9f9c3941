import {spawn} from 'node:child_process';
import {mkdir, writeFile} from 'node:fs/promises';
import path from 'node:path';

function escapeHtml(text: string): string {
	return text.replaceAll('&', '&amp;').replaceAll('"', '&quot;').replaceAll('<', '&lt;');
}

/**
 * Opens the URL through a 0600 redirect file, as Jupyter does, so the token is in no process's
 * arguments. Returns the file's path.
 */
export async function openInBrowser(url: string, dir: string): Promise<string> {
	await mkdir(dir, {recursive: true, mode: 0o700});
	const file = path.join(dir, 'open-jupyter.html');
	const html = `<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="0;url=${escapeHtml(url)}"><title>gpujup</title><p><a href="${escapeHtml(url)}">Open Jupyter</a></p>\n`;
	await writeFile(file, html, {mode: 0o600});
	const opener = process.platform === 'darwin' ? 'open' : 'xdg-open';
	const child = spawn(opener, [file], {stdio: 'ignore', detached: true});
	child.on('error', () => {
		// No opener on a headless box: the caller tells the user to use `c` instead.
	});
	child.unref();
	return file;
}
