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
import {fingerprintSha256} from '../core/known-hosts.js';
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
const agentListTimeoutMs = 5000;

/** `ssh-ed25519` -> `ED25519`, `sk-ecdsa-sha2-nistp256@openssh.com` -> `ECDSA-SK`, as ssh-keygen -l. */
function keyTypeName(type: string): string {
	const base = type.replace(/@openssh\.com$/, '');
	const sk = base.startsWith('sk-');
	const bare = (sk ? base.slice(3) : base)
		.replace(/^ssh-/, '')
		.replace(/^ecdsa-sha2-nistp\d+$/, 'ecdsa');
	return `${bare.toUpperCase()}${sk ? '-SK' : ''}`;
}

/** `ED25519 SHA256:… (me@x390)`, as `ssh-add -l` names a key. */
function describeKey(key: ParsedKey): string {
	const comment = key.comment ? ` (${key.comment})` : '';
	return `${keyTypeName(key.type)} ${fingerprintSha256(key.getPublicSSH())}${comment}`;
}

/** The agent's keys (public halves), for the failure message and to skip files it holds. */
async function agentKeys(socket: string): Promise<ParsedKey[]> {
	return new Promise((resolve, reject) => {
		const timer = setTimeout(() => {
			reject(new Error(`no answer in ${agentListTimeoutMs / 1000} s`));
		}, agentListTimeoutMs);
		new ssh2.OpenSSHAgent(socket).getIdentities((error, keys) => {
			clearTimeout(timer);
			if (error) reject(error);
			// OpenSSH's agent answers parsed keys; the type also allows entries it never sends.
			else
				resolve(
					(keys ?? []).filter(
						(key): key is ParsedKey => typeof (key as ParsedKey).getPublicSSH === 'function',
					),
				);
		});
	});
}

/** The public key blob of an identity file, from its `.pub` (readable when the file is encrypted). */
async function publicBlobOf(file: string): Promise<Buffer | null> {
	try {
		const parsed = ssh2.utils.parseKey(await readFile(`${file}.pub`));
		const key = Array.isArray(parsed) ? (parsed[0] as ParsedKey | undefined) : parsed;
		return key && !(key instanceof Error) ? key.getPublicSSH() : null;
	} catch {
		return null;
	}
}
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
	/** Blobs of the keys the agent offered: files holding one of them are not tried again. */
	const agentBlobs: Buffer[] = [];
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
					let keys: ParsedKey[];
					try {
						keys = await agentKeys(method.socket);
					} catch (error) {
						notes.push(`ssh-agent could not list its keys (${(error as Error).message})`);
						continue;
					}
					if (keys.length === 0) {
						notes.push('ssh-agent holds no keys (ssh-add adds one)');
						continue;
					}
					agentBlobs.push(...keys.map((key) => key.getPublicSSH()));
					tried.push(`ssh-agent offered ${keys.map((key) => describeKey(key)).join(', ')}`);
					return {type: 'agent', username: o.username, agent: method.socket};
				}
				case 'key': {
					if (!allowed('publickey')) continue;
					// As OpenSSH does: a file whose key the agent already offered is not tried (nor
					// its passphrase asked for) again.
					const blob = agentBlobs.length > 0 ? await publicBlobOf(method.file) : null;
					if (blob && agentBlobs.some((offered) => offered.equals(blob))) {
						notes.push(`${tildify(method.file)} not tried again: the agent holds its key`);
						continue;
					}
					const key = await loadKey(method.file, method.explicit);
					if (!key) continue;
					tried.push(`key file ${tildify(method.file)} (${describeKey(key)})`);
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
			// What was offered and skipped first: that is what tells one failure from another.
			const triedText =
				tried.length > 0
					? `the server accepted none of: ${tried.join('; ')}`
					: 'nothing was offered (no agent key, no usable key file)';
			const noteText = notes.length > 0 ? `; ${notes.join('; ')}` : '';
			const offered =
				serverMethods && serverMethods.length > 0
					? `; the server accepts ${serverMethods.join(', ')}`
					: '';
			const keysOffered = tried.some((t) => t.startsWith('ssh-agent') || t.startsWith('key'));
			const advice = keysOffered
				? `add one of these public keys to ~/.ssh/authorized_keys of ${o.username} there, check the user name, or pass the right key with -i`
				: `check the user name, that your public key is in ~/.ssh/authorized_keys there, or pass the right key with -i`;
			return {
				kind: 'auth',
				message: `authentication as ${o.username}@${o.where} failed: ${triedText}${noteText}${offered} — ${advice}`,
			};
		},
	};
}
