import type {Client} from 'ssh2';
import {shCommand} from '../core/shell.js';

/**
 * Runs a short POSIX sh script (one line) over an exec channel and returns its stdout. It goes
 * out as `sh -c '…'`, so the user's login shell (fish, tcsh…) does not matter. The command is
 * killed with its channel at the deadline, so a hung remote never blocks the caller.
 */
export async function execText(
	client: Client,
	command: string,
	options: {readonly timeoutMs?: number; readonly maxBytes?: number} = {},
): Promise<{stdout: string; stderr: string; code: number | null}> {
	const timeoutMs = options.timeoutMs ?? 10_000;
	const maxBytes = options.maxBytes ?? 1_048_576;
	return new Promise((resolve, reject) => {
		client.exec(shCommand(command), (error, channel) => {
			if (error) {
				reject(error);
				return;
			}

			let stdout = '';
			let stderr = '';
			let code: number | null = null;
			const timer = setTimeout(() => {
				channel.destroy();
				reject(new Error(`remote command did not finish within ${timeoutMs} ms`));
			}, timeoutMs);
			channel.on('error', (channelError: Error) => {
				clearTimeout(timer);
				reject(channelError);
			});
			channel.on('data', (chunk: Buffer) => {
				if (stdout.length < maxBytes) stdout += chunk.toString('utf8');
			});
			channel.stderr.on('data', (chunk: Buffer) => {
				if (stderr.length < 65_536) stderr += chunk.toString('utf8');
			});
			channel.on('exit', (exitCode: number | null) => {
				code = exitCode;
			});
			channel.on('close', () => {
				clearTimeout(timer);
				resolve({stdout, stderr, code});
			});
		});
	});
}
