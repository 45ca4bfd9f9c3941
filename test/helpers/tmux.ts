/**
 * Drive a program in a real terminal: a private tmux server per instance (`tmux -L <unique>
 * -f /dev/null`), one detached session, `set-clipboard on` so OSC 52 copies land in a paste buffer.
 */
import {execFile} from 'node:child_process';
import {randomBytes} from 'node:crypto';
import {readFile, rm} from 'node:fs/promises';
import path from 'node:path';
import {promisify} from 'node:util';
import {tempDir} from './ports.js';
import {descendants, killAll, waitGone} from './proc.js';
import {waitFor} from './wait-for.js';

const execFileP = promisify(execFile);

export type TmuxOptions = {
	/** The program's environment (CI=false and TERM=xterm-256color are forced). */
	readonly env: NodeJS.ProcessEnv;
	readonly width?: number;
	readonly height?: number;
	readonly cwd?: string;
	/**
	 * A file that gets every byte the program writes to the pane, raw (`pipe-pane`, set in the same
	 * command as the session, before the pane's first output is read).
	 */
	readonly rawOutputFile?: string;
};

export type Tmux = {
	/** The socket name (`tmux -L <name>`), for debugging by hand. */
	readonly socketName: string;
	/** The visible screen, one line per row, trailing spaces trimmed by tmux. */
	capture(): Promise<string>;
	/** Poll the screen until it matches; resolve with that screen, or throw with the last one. */
	waitForText(pattern: RegExp | string, timeoutMs?: number): Promise<string>;
	/**
	 * Poll the screen until `check` holds for it; resolve with that screen, or throw naming `what`
	 * with the last screen.
	 */
	waitForScreen(
		check: (screen: string) => boolean,
		options?: {readonly timeoutMs?: number; readonly what?: string},
	): Promise<string>;
	/** tmux key names: 'q', 'Enter', 'C-c', 'Escape', 'Up' … (each argument is one key). */
	sendKeys(...keys: string[]): Promise<void>;
	/** Type literal text (send-keys -l). */
	sendText(text: string): Promise<void>;
	/** The most recent paste buffer (what an OSC 52 copy stored), '' when there is none. */
	buffer(): Promise<string>;
	/** The program's exit status once it has ended (128+n for a signal), else null. */
	exitCode(): Promise<number | null>;
	/** Whether the program left the cursor visible (tmux `#{cursor_flag}`). */
	cursorVisible(): Promise<boolean>;
	/** Whether the alternate screen is active (`#{alternate_on}`). */
	alternateScreen(): Promise<boolean>;
	/** Resize the window (the program gets SIGWINCH). */
	resize(width: number, height: number): Promise<void>;
	/** Kill the server and anything still running in the pane. */
	dispose(): Promise<void>;
};

let counter = 0;

/**
 * Start `command` (argv, no shell parsing) in a fresh tmux server. The program runs under a small
 * `sh` wrapper that records its exit status and then keeps the pane (and its last screen) open.
 */
export async function startTmux(command: readonly string[], options: TmuxOptions): Promise<Tmux> {
	if (command.length === 0) throw new Error('startTmux: empty command');
	const socketName = `gpujup-${process.pid}-${++counter}-${randomBytes(3).toString('hex')}`;
	const scratch = await tempDir('tmux');
	const statusFile = path.join(scratch.path, 'exit-status');
	const width = options.width ?? 160;
	const height = options.height ?? 48;

	const env: NodeJS.ProcessEnv = {...options.env, CI: 'false', TERM: 'xterm-256color'};
	delete env.TMUX;
	delete env.TMUX_PANE;

	const tmux = async (...args: string[]): Promise<string> => {
		const {stdout} = await execFileP('tmux', ['-L', socketName, ...args], {
			env,
			maxBuffer: 16 * 1024 * 1024,
		});
		return stdout;
	};

	// A trapped (not ignored) SIGINT keeps the wrapper alive to record the status while the program
	// gets the default disposition; `exec sleep` keeps the last screen for capture().
	const wrapper = 'trap ":" INT; "$@"; echo $? > "$GPUJUP_TMUX_STATUS"; exec sleep 2147483647';
	// Where `-L` puts the socket, for cleanup when the start itself fails.
	const defaultSocket = path.join(
		process.env.TMUX_TMPDIR ?? '/tmp',
		`tmux-${process.getuid?.() ?? 0}`,
		socketName,
	);
	const start = execFileP(
		'tmux',
		[
			'-L',
			socketName,
			'-f',
			'/dev/null',
			'start-server',
			';',
			'set',
			'-s',
			'exit-empty',
			'off',
			';',
			'set',
			'-s',
			'set-clipboard',
			'on',
			';',
			'set',
			'-s',
			'escape-time',
			'0',
			';',
			'set',
			'-g',
			'status',
			'off',
			';',
			'set',
			'-g',
			'default-terminal',
			'xterm-256color',
			';',
			'set',
			'-g',
			'history-limit',
			'5000',
			';',
			'new-session',
			'-d',
			'-s',
			'main',
			'-x',
			String(width),
			'-y',
			String(height),
			'-c',
			options.cwd ?? process.cwd(),
			'-e',
			`GPUJUP_TMUX_STATUS=${statusFile}`,
			'--',
			'sh',
			'-c',
			wrapper,
			'sh',
			...command,
			// After the session exists: set before it, this option crashes tmux 3.3a's server.
			';',
			'set',
			'-g',
			'window-size',
			'manual',
			...(options.rawOutputFile
				? [';', 'pipe-pane', '-t', 'main', '-o', `cat >> '${options.rawOutputFile}'`]
				: []),
		],
		{env},
	);
	try {
		await start;
	} catch (error: unknown) {
		await tmux('kill-server').catch(() => '');
		await rm(defaultSocket, {force: true});
		await scratch.dispose();
		throw error;
	}
	const panePid = Number((await tmux('display', '-p', '-t', 'main', '#{pane_pid}')).trim());
	const socketPath = (await tmux('display', '-p', '-t', 'main', '#{socket_path}')).trim();

	const capture = async () => tmux('capture-pane', '-p', '-t', 'main');
	const flag = async (name: string) =>
		(await tmux('display', '-p', '-t', 'main', `#{${name}}`)).trim() === '1';

	const waitForScreen: Tmux['waitForScreen'] = async (check, {timeoutMs = 30_000, what} = {}) => {
		let last = '';
		const name = what ?? 'the screen to change as expected';
		try {
			return await waitFor(
				async () => {
					last = await capture();
					return check(last) ? last : undefined;
				},
				{timeoutMs, intervalMs: 100, message: name},
			);
		} catch {
			throw new Error(`timed out after ${timeoutMs} ms waiting for ${name}; screen:\n${last}`);
		}
	};

	return {
		socketName,
		capture,
		waitForScreen,
		async waitForText(pattern, timeoutMs = 30_000) {
			return waitForScreen(
				(screen) => (typeof pattern === 'string' ? screen.includes(pattern) : pattern.test(screen)),
				{timeoutMs, what: String(pattern)},
			);
		},
		async sendKeys(...keys) {
			await tmux('send-keys', '-t', 'main', ...keys);
		},
		async sendText(text) {
			await tmux('send-keys', '-t', 'main', '-l', text);
		},
		async buffer() {
			try {
				return await tmux('show-buffer');
			} catch {
				return '';
			}
		},
		async exitCode() {
			try {
				const text = (await readFile(statusFile, 'utf8')).trim();
				return text === '' ? null : Number(text);
			} catch {
				return null;
			}
		},
		cursorVisible: async () => flag('cursor_flag'),
		alternateScreen: async () => flag('alternate_on'),
		async resize(w, h) {
			await tmux('resize-window', '-t', 'main', '-x', String(w), '-y', String(h));
		},
		async dispose() {
			const left = [panePid, ...(await descendants(panePid).catch(() => []))];
			await tmux('kill-server').catch(() => '');
			// Programs that ignore SIGHUP would outlive the server.
			killAll(left);
			await waitGone(left, 5000);
			await rm(socketPath, {force: true});
			await scratch.dispose();
		},
	};
}

/** tmux's buffer once it holds a URL with a token (what `c` copies, through OSC 52), trimmed. */
export async function copiedUrl(tmux: Tmux): Promise<string> {
	const copied = await waitFor(async () => {
		const buffer = await tmux.buffer();
		return buffer.includes('token=') ? buffer : undefined;
	});
	return copied.trim();
}
