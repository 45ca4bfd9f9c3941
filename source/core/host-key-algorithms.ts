/**
 * Which host key algorithms to offer, and how key types are shown. Pure: the type names are
 * ssh2's `ServerHostKeyAlgorithm` spellings, restated so core imports nothing from ssh2.
 */

/** The host key algorithms gpujup offers (a subset of ssh2's `ServerHostKeyAlgorithm`). */
export type HostKeyAlgorithm =
	| 'ssh-ed25519'
	| 'ecdsa-sha2-nistp256'
	| 'ecdsa-sha2-nistp384'
	| 'ecdsa-sha2-nistp521'
	| 'rsa-sha2-512'
	| 'rsa-sha2-256'
	| 'ssh-rsa';

/** ssh2's default host key order (constants.js), ed25519 first. */
export const defaultHostKeyAlgorithms: readonly HostKeyAlgorithm[] = [
	'ssh-ed25519',
	'ecdsa-sha2-nistp256',
	'ecdsa-sha2-nistp384',
	'ecdsa-sha2-nistp521',
	'rsa-sha2-512',
	'rsa-sha2-256',
	'ssh-rsa',
];

/**
 * The host key algorithms to offer, the types already in known_hosts first (as OpenSSH orders
 * them), so a server with several keys shows the one we can verify instead of looking "changed".
 */
export function hostKeyAlgorithmOrder(knownTypes: readonly string[]): HostKeyAlgorithm[] {
	const first: HostKeyAlgorithm[] = [];
	for (const type of knownTypes) {
		const algorithms: readonly string[] =
			type === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [type];
		for (const algorithm of algorithms) {
			const known = defaultHostKeyAlgorithms.find((a) => a === algorithm);
			if (known && !first.includes(known)) first.push(known);
		}
	}
	return [...first, ...defaultHostKeyAlgorithms.filter((a) => !first.includes(a))];
}

/** `ssh-ed25519` -> `ED25519`, as ssh prints key types next to fingerprints. */
export function keyTypeLabel(keyType: string): string {
	if (keyType === 'ssh-ed25519') return 'ED25519';
	if (keyType === 'ssh-rsa') return 'RSA';
	if (keyType.startsWith('ecdsa-')) return 'ECDSA';
	if (keyType === 'ssh-dss') return 'DSA';
	return keyType;
}
