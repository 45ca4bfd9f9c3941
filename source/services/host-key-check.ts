import {keyTypeLabel} from '../core/host-key-algorithms.js';
import {
	checkHostKey,
	fingerprintSha256,
	keyTypeOf,
	knownKeyTypes,
	type KnownHostsEntry,
} from '../core/known-hosts.js';
import {checkPinnedKey, type HostKeyPin} from '../core/pins.js';
import {appendKnownHost} from './known-hosts-file.js';
import {tildify} from './ssh-auth.js';

/** A host key that was verified: found in known_hosts, or new, trusted and recorded there. */
export type HostKeyVerified = {
	readonly how: 'known' | 'recorded';
	/** `ED25519 SHA256:…`, as ssh shows a key. */
	readonly key: string;
	/** The known_hosts file it was found in or recorded to. */
	readonly file: string;
};

/** What one hop's host-key check needs (SshHopOptions includes it). */
export type HostKeyCheckOptions = {
	readonly host: string;
	/** The known_hosts file read first, and where new keys are recorded. */
	readonly knownHostsFile: string;
	/** Record new keys with hashed names (`HashKnownHosts yes`). */
	readonly hashKnownHosts?: boolean;
	/** Names the host key is looked up under; the first is the one recorded for a new key. */
	readonly hostKeyNames: readonly string[];
	/** Record unknown host keys without asking (never accepts a changed one). */
	readonly acceptNew: boolean;
	/** The only key trusted (`gpujup pair`): checked first, recorded hashed without asking. */
	readonly pin?: HostKeyPin;
	/** Ask the user; true trusts and records an unknown key. */
	readonly confirmHostKey?: (info: {
		host: string;
		keyType: string;
		fingerprint: string;
	}) => Promise<boolean>;
};

/**
 * The verdict on one offered key: verified, or refused with the message to show. A refusal
 * without a message means the attempt went away while the user was asked (nothing to report).
 */
export type HostKeyOutcome =
	| {readonly ok: true; readonly verified: HostKeyVerified}
	| {readonly ok: false; readonly message: string | null};

/**
 * Checks the key a server offered against the known_hosts entries read for this attempt: known,
 * @revoked, changed (refused, naming both fingerprints and the exact fix) or unknown (asked, or
 * accepted with --accept-new, then recorded). `closed` says whether the attempt ended meanwhile.
 */
export async function verifyHostKey(
	o: HostKeyCheckOptions,
	entries: KnownHostsEntry[],
	key: Buffer,
	closed: () => boolean,
): Promise<HostKeyOutcome> {
	// Recorded lowercased, as ssh records (and looks up) names.
	const name = (o.hostKeyNames[0] ?? o.host).toLowerCase();
	const keyType = keyTypeOf(key);
	const keyBase64 = key.toString('base64');
	const fingerprint = fingerprintSha256(key);
	const shown = `${keyTypeLabel(keyType)} ${fingerprint}`;
	const file = tildify(o.knownHostsFile);
	const verdict = checkHostKey(entries, o.hostKeyNames, keyType, keyBase64);
	const fail = (message: string): HostKeyOutcome => ({ok: false, message});
	const verified = (how: HostKeyVerified['how'], where = o.knownHostsFile): HostKeyOutcome => ({
		ok: true,
		verified: {how, key: shown, file: where},
	});
	if (o.pin) {
		const known = knownKeyTypes(entries, o.hostKeyNames);
		const pinned = checkPinnedKey(
			o.pin,
			{name, keyType, shown, fingerprint},
			verdict.status,
			known,
		);
		if (pinned.action === 'refuse') return fail(pinned.message);
		if (pinned.action === 'record') {
			if (closed()) return {ok: false, message: null};
			await appendKnownHost(o.knownHostsFile, name, keyType, keyBase64, {hash: true});
			return verified('recorded');
		}
	}
	switch (verdict.status) {
		case 'ok': {
			return verified('known', verdict.file);
		}
		case 'revoked': {
			return fail(
				`host key for ${name} (${shown}) is marked @revoked in ${tildify(verdict.file ?? o.knownHostsFile)} line ${verdict.line} — refusing to connect; ask the host's admin for its new key`,
			);
		}
		case 'changed': {
			// `~/.ssh/known_hosts (line 3, 7)`, per file when several files were read.
			const files = verdict.files ?? verdict.lines.map(() => o.knownHostsFile);
			const where = [...new Set(files)].map(
				(f) => `${tildify(f)} (line ${verdict.lines.filter((_, i) => files[i] === f).join(', ')})`,
			);
			return fail(
				`HOST KEY FOR ${name} HAS CHANGED — it now offers ${shown} but ${where.join(' and ')} has ${verdict.knownFingerprints.join(', ')}; this could be an attack. If the host was reinstalled on purpose, run: ${[...new Set(files)].map((f) => `ssh-keygen -R "${name}" -f ${tildify(f)}`).join('; ')}`,
			);
		}
		case 'unknown': {
			let trust = o.acceptNew;
			if (!trust && o.confirmHostKey)
				trust = await o.confirmHostKey({host: name, keyType, fingerprint});
			if (!trust) {
				return fail(
					o.confirmHostKey
						? `host key for ${name} (${shown}) was not accepted`
						: `host key for ${name} is unknown (${shown}) — accept it in the dashboard, run with --accept-new, or add it to ${file}`,
				);
			}
			if (closed()) return {ok: false, message: null};
			await appendKnownHost(o.knownHostsFile, name, keyType, keyBase64, {
				hash: o.hashKnownHosts === true,
			});
			return verified('recorded');
		}
	}
}
