/**
 * The dashboard's terminal: the alternate screen, a hidden cursor, and a restore that runs on
 * every way out (q, Ctrl+C, SIGTERM, a crash), so the user's shell is never left broken.
 */
const enter = '\u001B[?1049h\u001B[H';
const leave = '\u001B[?25h\u001B[?1049l';

let active = false;

export function enterAlternateScreen(out: NodeJS.WriteStream = process.stdout): void {
	if (active || !out.isTTY) return;
	active = true;
	out.write(enter);
	process.on('exit', restoreTerminal);
}

export function restoreTerminal(): void {
	if (!active) return;
	active = false;
	try {
		if (process.stdin.isTTY && process.stdin.isRaw) process.stdin.setRawMode(false);
	} catch {
		// stdin may be gone already.
	}

	process.stdout.write(leave);
}
