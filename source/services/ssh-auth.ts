import {readFile} from 'node:fs/promises';
import os from 'node:os';
import ssh2 from 'ssh2';
import type {
	AnyAuthMethod,
	AuthHandlerMiddleware,
	AuthenticationType,
	ParsedKey,
	Prompt,
} from 'ssh2';
import type {ClassifiedError} from '../core/types.js';

/** Where credentials come from (SPEC `-i`, agent, ~/.ssh/id_*). */
export type SshAuthOptions = {
	/** SSH_AUTH_SOCK, or null for no agent. */
	readonly agentSocket: string | null;
	/** Explicit `-i` files and ssh-config IdentityFile: when any is given, the defaults are not tried. */
	readonly identities: readonly string[];
	/** `~/.ssh/id_*` that exist. */
	readonly defaultIdentities: readonly string[];
	/**
	 * Ask the user (passphrases, keyboard-interactive). Resolves null when they cancel. Absent
	 * under --no-tui: encrypted keys are then skipped with a clear note.
	 */
	readonly askSecret?: (message: string, echo: boolean) => Promise<string | null>;
	/**
	 * Decrypted keys shared by every hop of a session (in memory only), so the relay hop and the
	 * GPU host hop ask for one key's passphrase once; absent: each hop keeps its own.
	 */
	readonly keyCache?: KeyCache;
};

/** Decrypted keys kept for the life of a hop, so a reconnect does not ask for the passphrase again. */
export type KeyCache = Map<string, ParsedKey>;

/** One authentication run (one connection attempt). */
export type AuthSession = {
	readonly handler: AuthHandlerMiddleware;
	/** What was tried, in words, for the failure message. */
	tried(): readonly string[];
	/** Record a non-fatal problem ssh2 reported on the way (an agent that did not answer). */
	note(text: string): void;
	/** The classified error to show when every method failed. */
	failure(): ClassifiedError;
};

/** `/home/u/.ssh/id_ed25519` -> `~/.ssh/id_ed25519`: shorter, and it is what users type. */
export function tildify(file: string, home: string = os.homedir()): string {
	return home && file.startsWith(`${home}/`) ? `~${file.slice(home.length)}` : file;
}

const encryptedPattern = /encrypted|passphrase/i;
const maxPassphraseTries = 3;

type Method =
	| {readonly type: 'none'}
	| {readonly type: 'agent'; readonly socket: string}
	| {readonly type: 'key'; readonly file: string; readonly explicit: boolean}
	| {readonly type: 'keyboard-interactive'};

/**
 * Build an ssh2 `authHandler` that tries, like OpenSSH: the agent, then each identity file (asking
 * for a passphrase when one is encrypted), then keyboard-interactive (asking per prompt). `where` is
 * `user@host:port` for messages.
 */
export function createAuthSession(o: {
	readonly username: string;
	readonly where: string;
	readonly auth: SshAuthOptions;
	readonly cache: KeyCache;
	readonly signal?: AbortSignal;
}): AuthSession {
	// `none` first, as OpenSSH does: the server's answer lists the methods it takes, so no
	// passphrase is asked for a key the server would never look at.
	const methods: Method[] = [{type: 'none'}];
	if (o.auth.agentSocket) methods.push({type: 'agent', socket: o.auth.agentSocket});
	const explicit = o.auth.identities.length > 0;
	const files = explicit ? o.auth.identities : o.auth.defaultIdentities;
	for (const file of new Set(files)) methods.push({type: 'key', file, explicit});
	methods.push({type: 'keyboard-interactive'});

	const tried: string[] = [];
	const notes: string[] = [];
	let serverMethods: readonly AuthenticationType[] | null = null;

	const ask = async (message: string, echo: boolean): Promise<string | null> => {
		if (!o.auth.askSecret || o.signal?.aborted) return null;
		return o.auth.askSecret(message, echo);
	};

	const loadKey = async (file: string, isExplicit: boolean): Promise<ParsedKey | null> => {
		const cached = o.cache.get(file);
		if (cached) return cached;
		let data: Buffer;
		try {
			data = await readFile(file);
		} catch (error) {
			// A missing default key is normal; a missing -i file is the user's typo.
			if (isExplicit)
				notes.push(`key ${tildify(file)} cannot be read (${(error as Error).message})`);
			return null;
		}
		let parsed = ssh2.utils.parseKey(data);
		if (parsed instanceof Error && encryptedPattern.test(parsed.message)) {
			if (!o.auth.askSecret) {
				notes.push(
					`key ${tildify(file)} is encrypted: load it into ssh-agent or run gpujup with its dashboard to type the passphrase`,
				);
				return null;
			}
			for (let i = 0; i < maxPassphraseTries && parsed instanceof Error; i++) {
				const question = `Enter passphrase for key '${tildify(file)}':`;
				const passphrase = await ask(
					i === 0 ? question : `Wrong passphrase, try again. ${question}`,
					false,
				);
				if (passphrase === null) {
					notes.push(`passphrase for ${tildify(file)} not given`);
					return null;
				}
				parsed = ssh2.utils.parseKey(data, passphrase);
			}
			if (parsed instanceof Error) {
				notes.push(`wrong passphrase for ${tildify(file)}`);
				return null;
			}
		}
		if (parsed instanceof Error) {
			notes.push(`key ${tildify(file)} is not usable: ${parsed.message}`);
			return null;
		}
		const key = Array.isArray(parsed) ? (parsed[0] as ParsedKey | undefined) : parsed;
		if (!key || !key.isPrivateKey()) {
			notes.push(`${tildify(file)} holds no private key`);
			return null;
		}
		o.cache.set(file, key);
		return key;
	};

	const allowed = (type: AuthenticationType): boolean =>
		serverMethods === null || serverMethods.includes(type);

	const nextMethod = async (): Promise<AnyAuthMethod | false> => {
		for (;;) {
			const method = methods.shift();
			if (!method || o.signal?.aborted) return false;
			switch (method.type) {
				case 'none': {
					return {type: 'none', username: o.username};
				}
				case 'agent': {
					if (!allowed('publickey')) continue;
					tried.push('ssh-agent');
					return {type: 'agent', username: o.username, agent: method.socket};
				}
				case 'key': {
					if (!allowed('publickey')) continue;
					const key = await loadKey(method.file, method.explicit);
					if (!key) continue;
					tried.push(`key ${tildify(method.file)}`);
					return {type: 'publickey', username: o.username, key};
				}
				case 'keyboard-interactive': {
					if (!allowed('keyboard-interactive')) continue;
					if (!o.auth.askSecret) {
						if (serverMethods?.includes('keyboard-interactive'))
							notes.push('keyboard-interactive needs the dashboard to answer its prompts');
						continue;
					}
					tried.push('keyboard-interactive');
					return {
						type: 'keyboard-interactive',
						username: o.username,
						prompt(_name, _instructions, _lang, prompts: Prompt[], finish) {
							void (async () => {
								const answers: string[] = [];
								for (const p of prompts) {
									const answer = await ask(p.prompt, p.echo ?? false);
									if (answer === null) break;
									answers.push(answer);
								}
								finish(answers);
							})();
						},
					};
				}
			}
		}
	};

	const handler: AuthHandlerMiddleware = (authsLeft, _partial, next) => {
		if (Array.isArray(authsLeft)) serverMethods = authsLeft;
		// ssh2 takes `false` for "no more methods" although its types do not say so.
		const done = next as (method: AnyAuthMethod | false) => void;
		nextMethod().then(done, (error: unknown) => {
			notes.push(String(error));
			done(false);
		});
	};

	return {
		handler,
		tried: () => [...tried],
		note(text) {
			notes.push(text);
		},
		failure() {
			const triedText = tried.length > 0 ? tried.join(', ') : 'nothing (no agent, no usable key)';
			const noteText = notes.length > 0 ? `; ${notes.join('; ')}` : '';
			const offered =
				serverMethods && serverMethods.length > 0
					? `; the server accepts ${serverMethods.join(', ')}`
					: '';
			return {
				kind: 'auth',
				message: `authentication as ${o.username}@${o.where} failed (tried ${triedText}${noteText}${offered}) — check the user name, that your public key is in ~/.ssh/authorized_keys there, or pass the right key with -i`,
			};
		},
	};
}
