/**
 * What OpenSSH itself makes of a host when it dials it, past what `ssh -G` prints: `ssh -G`
 * shows IdentityFile and ProxyJump as written, while ssh expands their `%` tokens only once it
 * connects. So this runs the real `ssh -v` with nothing on the other end, on no network:
 *
 * - a host without ProxyJump gets `-o ProxyCommand=true` (its "connection" ends at once);
 * - a host with ProxyJump runs its implicit `ssh [-l U] [-p P] [-J rest] -W '[h]:p' last`
 *   through a stub named `ssh` first on PATH (ssh calls itself as `ssh` when its argv[0] has no
 *   slash), which records its arguments and exits.
 *
 * Either way ssh loads (and `-v` logs) the identity files, expanded, before it reads a banner.
 */
import {spawnSync} from 'node:child_process';
import {chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';

/** The next hop as ssh's ProxyJump command line names it, expanded by ssh. */
export type DialedJump = {
	readonly host: string;
	readonly user: string | null;
	readonly port: string | null;
	/** `-J rest`: the jumps before it. */
	readonly jump: string | null;
	/** `-W`: the hop this jump forwards to, `[host]:port`. */
	readonly forward: string;
};

export type Dialed = {
	/** The identity files ssh tries, in order, `%` tokens, `~` and `${VAR}` expanded. */
	readonly identityFiles: string[];
	/** Null for a host ssh dials directly. */
	readonly jump: DialedJump | null;
};

/**
 * Runs `ssh -v -F path ...args host` as above. `hasJump`: whether `ssh -G` shows a proxyjump
 * line for it (then the stub runs, otherwise `ProxyCommand=true`).
 */
export function sshDial(
	path: string,
	args: readonly string[],
	host: string,
	hasJump: boolean,
): Dialed {
	const dir = mkdtempSync(join(tmpdir(), 'gpujup-sshdial-'));
	try {
		const out = join(dir, 'args');
		const stub = join(dir, 'ssh');
		writeFileSync(stub, `#!/bin/sh\nprintf '%s\\0' "$@" > '${out}'\n`);
		chmodSync(stub, 0o755);
		const result = spawnSync(
			'/usr/bin/ssh',
			[
				'-v',
				'-F',
				path,
				'-o',
				'BatchMode=yes',
				...(hasJump ? [] : ['-o', 'ProxyCommand=true']),
				...args,
				host,
				'true',
			],
			{
				argv0: 'ssh',
				encoding: 'utf8',
				env: {...process.env, PATH: `${dir}:${process.env['PATH'] ?? '/usr/bin:/bin'}`},
				stdio: ['ignore', 'pipe', 'pipe'],
				timeout: 20_000,
			},
		);
		const lines = result.stderr.split(/\r?\n/);
		const identityFiles = lines
			.map((line) => /^debug1: identity file (.*) type -?\d+$/.exec(line)?.[1])
			.filter((file): file is string => file !== undefined && !file.endsWith('-cert'));
		if (identityFiles.length === 0)
			throw new Error(`ssh -v ${host}: no identity file lines\n${result.stderr}`);
		if (!hasJump) return {identityFiles, jump: null};
		const argv = readFileSync(out, 'utf8').split('\0').slice(0, -1);
		let user: string | null = null;
		let port: string | null = null;
		let jump: string | null = null;
		let forward = '';
		const positional: string[] = [];
		for (let index = 0; index < argv.length; index++) {
			const arg = argv[index]!;
			if (arg === '-l') user = argv[++index] ?? null;
			else if (arg === '-p') port = argv[++index] ?? null;
			else if (arg === '-J') jump = argv[++index] ?? null;
			else if (arg === '-W') forward = argv[++index] ?? '';
			else if (arg === '-F') index++;
			else if (/^-v+$/.test(arg)) continue;
			else positional.push(arg);
		}

		if (positional.length !== 1) throw new Error(`unexpected jump command: ${argv.join(' ')}`);
		return {identityFiles, jump: {host: positional[0]!, user, port, jump, forward}};
	} finally {
		rmSync(dir, {recursive: true, force: true});
	}
}
