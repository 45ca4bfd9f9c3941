/**
 * Pinned host keys (from `gpujup pair`): a hop with a pin trusts exactly the key whose SHA256
 * fingerprint is the pin. The pin replaces the unknown-key question (the key is recorded, hashed,
 * without asking); it never overrides known_hosts where that holds another key of the same type
 * or marks this one @revoked. Pure.
 */
import {defaultHostKeyAlgorithms} from './host-key-algorithms.js';
import type {HostKeyVerdict} from './known-hosts.js';

/** A pin and where it was set, for messages (`config.toml:7: key "host-key"`). */
export type HostKeyPin = {
	/** `SHA256:…`, as `ssh-keygen -lf` prints it. */
	readonly fingerprint: string;
	readonly origin: string;
};

/**
 * Host key algorithms a pinned hop offers, in this order, whatever known_hosts holds: ssh2's own
 * default order, which is also what `gpujup host` uses when it reads the keys for the pairing
 * string, so both ends see the same key of a server that has several.
 */
export const pinnedHostKeyAlgorithms = defaultHostKeyAlgorithms;

/** The key type (`ssh-rsa` for the rsa-sha2 algorithms) each algorithm above selects. */
function keyTypeOfAlgorithm(algorithm: string): string {
	return algorithm.startsWith('rsa-sha2-') ? 'ssh-rsa' : algorithm;
}

/**
 * Of a server's key types (its hostkeys-00 announcement), the index of the one a pinned hop will
 * be shown: the first in {@link pinnedHostKeyAlgorithms} order; -1 when none is usable.
 */
export function pairingKeyIndex(keyTypes: readonly string[]): number {
	for (const algorithm of pinnedHostKeyAlgorithms) {
		const index = keyTypes.indexOf(keyTypeOfAlgorithm(algorithm));
		if (index !== -1) return index;
	}

	return -1;
}

/** What to do with an offered key on a pinned hop. */
export type PinDecision =
	/** The pin matched and known_hosts has no say against it: record it (hashed), no question. */
	| {readonly action: 'record'}
	/** The pin matched: known_hosts decides the rest (ok, or refused as revoked / changed). */
	| {readonly action: 'known-hosts'}
	| {readonly action: 'refuse'; readonly message: string};

/**
 * Checks the offered key against the pin. `knownTypes` are the key types known_hosts holds for
 * the host: a pin-matching key of a type known_hosts does not list is recorded beside the others
 * (the pin proves it, as OpenSSH's UpdateHostKeys adds keys learned over a verified session),
 * instead of being taken for a changed key.
 */
export function checkPinnedKey(
	pin: HostKeyPin,
	offered: {
		/** The name the key is looked up under, lowercased. */
		readonly name: string;
		readonly keyType: string;
		/** `ED25519 SHA256:…`, as ssh shows a key. */
		readonly shown: string;
		readonly fingerprint: string;
	},
	verdict: HostKeyVerdict['status'],
	knownTypes: readonly string[],
): PinDecision {
	if (offered.fingerprint !== pin.fingerprint)
		return {
			action: 'refuse',
			message: `HOST KEY FOR ${offered.name} DOES NOT MATCH ITS PIN — it offers ${offered.shown} but the pin is ${pin.fingerprint} (${pin.origin}); this could be an attack. If that machine was reinstalled on purpose, run \`gpujup host --pair\` on the GPU host and \`gpujup pair '<the string>' --name NAME\` here`,
		};
	if (verdict === 'unknown') return {action: 'record'};
	if (verdict === 'changed' && !knownTypes.includes(offered.keyType)) return {action: 'record'};
	return {action: 'known-hosts'};
}
