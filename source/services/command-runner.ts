/**
 * Run a shell command here or on the GPU host, the same way: the GPU stream does not care whether
 * nvidia-smi runs locally (`gpujup host`) or over the second hop (`connect`, `status`).
 *
 * Either way the command runs under a guard (a POSIX `sh` script) that kills it, in its own process
 * group, when the guard's stdin closes. That matters over SSH: closing an exec channel does not kill
 * the remote process, and a hung nvidia-smi would otherwise stay on the GPU host forever. Locally,
 * it means a crashed gpujup leaves nothing behind either (its end of the pipe closes with it).
 */
import {spawn as spawnChild} from 'node:child_process';
import {PassThrough, type Readable} from 'node:stream';
import type {Client, ClientChannel} from 'ssh2';
import {shCommand} from '../core/shell.js';

/** How a command ended: its exit code, or the signal that ended it (null, null: the link died). */
export type CommandExit = {readonly code: number | null; readonly signal: string | null};

/** A command that was started. */
export type RunningCommand = {
	readonly stdout: Readable;
	readonly stderr: Readable;
	/** Stop it: the guard sends SIGTERM to its group, SIGKILL a second later. Idempotent. */
	kill(): void;
	/** Settles once the command is gone (never rejects). */
	readonly exited: Promise<CommandExit>;
};

/** Options for {@link CommandRunner.spawn}. */
export type SpawnOptions = {
	/**
	 * A deadline enforced where the command runs (seconds are rounded up): the guard kills the
	 * command when it has run this long, even if this side can no longer reach it.
	 */
	readonly deadlineMs?: number;
};

/** Starts shell commands somewhere. */
export type CommandRunner = {
	spawn(command: string, options?: SpawnOptions): RunningCommand;
};

/**
 * The guard, run as `sh -c GUARD gpujup-guard COMMAND DEADLINE_S`. The command runs in a session of
 * its own (setsid, where there is one: dash has no job control without a tty), so one signal to the
 * group reaches nvidia-smi and whatever wrapper scripts started it. A watcher reads stdin and kills
 * the group at EOF; an optional timer does the same at the deadline. When the command ends first,
 * the guard removes its watcher and timer (their groups too) and exits with the command's status.
 */
export const guardScript = [
	'c=$1; d=${2:-0}',
	'exec 3<&0',
	'if command -v setsid >/dev/null 2>&1; then s=setsid; else s=; fi',
	// The command gets no stdin: it must not eat the channel's EOF.
	'$s sh -c "$c" </dev/null 3<&- & p=$!',
	'k=\'kill -TERM -"$1" 2>/dev/null || kill -TERM "$1" 2>/dev/null; sleep 1; kill -KILL -"$1" 2>/dev/null || kill -KILL "$1" 2>/dev/null\'',
	'$s sh -c "cat >/dev/null; $k" gpujup-watch "$p" <&3 >/dev/null 2>&1 & w=$!',
	'exec 3<&-',
	't=',
	'if [ "$d" -gt 0 ] 2>/dev/null; then $s sh -c "sleep $d; $k" gpujup-deadline "$p" </dev/null >/dev/null 2>&1 & t=$!; fi',
	'wait "$p"; r=$?',
	// The group may outlive its leader (a child that ignores SIGTERM): give it the grace, then KILL.
	'if kill -TERM -"$p" 2>/dev/null; then sleep 1; kill -KILL -"$p" 2>/dev/null; fi',
	'for g in $w $t; do kill -TERM -"$g" 2>/dev/null || kill -TERM "$g" 2>/dev/null; done',
	'exit $r',
	// One line: tcsh cannot take a newline inside quotes (see core/shell.ts).
].join('; ');

/** The command line that runs `command` under the guard. */
export function guardedCommand(command: string, deadlineMs = 0): string {
	const seconds = deadlineMs > 0 ? Math.max(1, Math.ceil(deadlineMs / 1000)) : 0;
	return shCommand(guardScript, [command, String(seconds)], 'gpujup-guard');
}

/** A command that could not start at all: empty output, `message` on stderr, exit (null, null). */
function failedCommand(message: string): RunningCommand {
	const stdout = new PassThrough();
	const stderr = new PassThrough();
	stdout.end();
	stderr.end(`${message}\n`);
	return {stdout, stderr, kill() {}, exited: Promise.resolve({code: null, signal: null})};
}

/**
 * Run commands on this machine with `sh -c`, under the guard. `env` replaces the environment
 * (tests put a fake nvidia-smi first on PATH this way).
 */
export function localRunner(env?: NodeJS.ProcessEnv): CommandRunner {
	return {
		spawn(command, options = {}) {
			const child = spawnChild(
				'sh',
				['-c', guardScript, 'gpujup-guard', command, String(deadlineSeconds(options))],
				// Own process group: a Ctrl+C in the terminal goes to gpujup, which stops this itself.
				{env: env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'], detached: true},
			);
			let killed = false;
			let backstop: NodeJS.Timeout | undefined;
			const exited = new Promise<CommandExit>((resolve) => {
				child.once('error', () => resolve({code: null, signal: null}));
				child.once('close', (code, signal) => {
					if (backstop) clearTimeout(backstop);
					resolve({code, signal});
				});
			});
			// EPIPE when the guard is already gone: nothing to do.
			child.stdin.on('error', () => {});
			return {
				stdout: child.stdout,
				stderr: child.stderr,
				exited,
				kill() {
					if (killed) return;
					killed = true;
					child.stdin.end();
					// The guard should be gone within its 1 s grace; if sh itself is stuck, end it.
					backstop = setTimeout(() => {
						try {
							if (child.pid) process.kill(-child.pid, 'SIGKILL');
						} catch {
							// Already gone.
						}
					}, 5000);
					backstop.unref();
				},
			};
		},
	};
}

function deadlineSeconds(options: SpawnOptions): number {
	const ms = options.deadlineMs ?? 0;
	return ms > 0 ? Math.max(1, Math.ceil(ms / 1000)) : 0;
}

/**
 * Run commands on the GPU host over an exec channel of whatever client `getClient` returns now (the
 * second hop; null while it is down, which fails the command at once). The remote command runs
 * under the guard, so it dies when the channel closes, the link drops, or `kill()` is called.
 */
export function sshRunner(getClient: () => Client | null): CommandRunner {
	return {
		spawn(command, options = {}) {
			const client = getClient();
			if (!client) return failedCommand('gpujup: the GPU host is not connected');
			const stdout = new PassThrough();
			const stderr = new PassThrough();
			let channel: ClientChannel | null = null;
			let killed = false;
			let resolveExit!: (exit: CommandExit) => void;
			const exited = new Promise<CommandExit>((resolve) => (resolveExit = resolve));
			let exit: CommandExit = {code: null, signal: null};
			let done = false;
			const finish = () => {
				if (done) return;
				done = true;
				client.removeListener('close', finish);
				stdout.end();
				stderr.end();
				resolveExit(exit);
			};
			// The channel of a dead connection may never emit close: the client's close ends it.
			client.once('close', finish);
			const closeChannel = (ch: ClientChannel) => {
				try {
					// EOF first: that is what the guard watches for; then the channel itself.
					ch.end();
					ch.close();
				} catch {
					// The connection is already gone.
				}
			};
			try {
				client.exec(guardedCommand(command, options.deadlineMs ?? 0), (error, ch) => {
					if (error) {
						stderr.write(`gpujup: exec failed: ${error.message}\n`);
						finish();
						return;
					}
					channel = ch;
					ch.on('error', () => {});
					ch.on('exit', (code: number | null, signal?: string) => {
						exit = {code: code ?? null, signal: signal ?? null};
					});
					ch.on('close', finish);
					ch.on('data', (chunk: Buffer) => stdout.write(chunk));
					ch.stderr.on('data', (chunk: Buffer) => stderr.write(chunk));
					if (killed) closeChannel(ch);
				});
			} catch (error: unknown) {
				stderr.write(
					`gpujup: exec failed: ${error instanceof Error ? error.message : String(error)}\n`,
				);
				finish();
			}
			return {
				stdout,
				stderr,
				exited,
				kill() {
					if (killed) return;
					killed = true;
					if (channel) closeChannel(channel);
				},
			};
		},
	};
}

/** What {@link runText} collected. */
export type TextResult = {
	readonly stdout: string;
	readonly stderr: string;
	/** The exit code; null when the command did not exit by itself (the link died, a signal). */
	readonly code: number | null;
	readonly signal: string | null;
};

/**
 * Run `command` to its end and collect its output (stdout up to 8 MiB, stderr up to 64 KiB). The
 * deadline is enforced where it runs, and here too a little later (a dead link never answers):
 * past it the promise rejects.
 */
export async function runText(
	runner: CommandRunner,
	command: string,
	options: {readonly timeoutMs?: number} = {},
): Promise<TextResult> {
	const timeoutMs = options.timeoutMs ?? 30_000;
	const running = runner.spawn(command, {deadlineMs: timeoutMs});
	let stdout = '';
	let stderr = '';
	running.stdout.setEncoding('utf8');
	running.stderr.setEncoding('utf8');
	running.stdout.on('data', (chunk: string) => {
		if (stdout.length < 8 * 1024 * 1024) stdout += chunk;
	});
	running.stderr.on('data', (chunk: string) => {
		if (stderr.length < 65_536) stderr += chunk;
	});
	const ended = async (stream: Readable) =>
		new Promise<void>((resolve) => {
			stream.once('end', resolve);
			stream.once('close', resolve);
			stream.once('error', () => resolve());
		});
	const done = Promise.all([ended(running.stdout), ended(running.stderr)]).then(
		async () => running.exited,
	);
	let timer: NodeJS.Timeout | undefined;
	const late = new Promise<null>((resolve) => {
		timer = setTimeout(() => resolve(null), timeoutMs + 5000);
	});
	const exit = await Promise.race([done, late]);
	clearTimeout(timer);
	if (exit === null) {
		running.kill();
		throw new Error(`no answer within ${Math.round(timeoutMs / 1000)} s`);
	}
	return {stdout, stderr, code: exit.code, signal: exit.signal};
}
