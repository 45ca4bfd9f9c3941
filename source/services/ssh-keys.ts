import ssh2 from 'ssh2';

/**
 * A fresh ed25519 key pair in OpenSSH format. ssh2's generator now and then (about one key in
 * 200) emits a private key its own parser rejects as malformed; such a key is simply made again.
 */
export function generateEd25519(comment?: string): {private: string; public: string} {
	for (let attempt = 0; attempt < 20; attempt++) {
		const pair = ssh2.utils.generateKeyPairSync('ed25519', comment ? {comment} : {});
		if (!(ssh2.utils.parseKey(pair.private) instanceof Error)) return pair;
	}

	throw new Error('could not generate a usable ed25519 key');
}
