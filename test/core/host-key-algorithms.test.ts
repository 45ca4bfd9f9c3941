import {describe, expect, it} from 'vitest';
import {hostKeyAlgorithmOrder, keyTypeLabel} from '../../source/core/host-key-algorithms.js';

describe('hostKeyAlgorithmOrder', () => {
	it('offers the known types first, RSA as its SHA-2 variants', () => {
		expect(hostKeyAlgorithmOrder(['ssh-rsa']).slice(0, 4)).toEqual([
			'rsa-sha2-512',
			'rsa-sha2-256',
			'ssh-rsa',
			'ssh-ed25519',
		]);
		expect(hostKeyAlgorithmOrder(['ecdsa-sha2-nistp256'])[0]).toBe('ecdsa-sha2-nistp256');
		const all = hostKeyAlgorithmOrder(['ssh-ed25519', 'sk-unknown']);
		expect(all[0]).toBe('ssh-ed25519');
		expect(new Set(all).size).toBe(all.length);
		expect(all).toHaveLength(7);
	});
});

describe('keyTypeLabel', () => {
	it('names key types as ssh prints them next to fingerprints', () => {
		expect(keyTypeLabel('ssh-ed25519')).toBe('ED25519');
		expect(keyTypeLabel('ecdsa-sha2-nistp384')).toBe('ECDSA');
		expect(keyTypeLabel('ssh-rsa')).toBe('RSA');
		expect(keyTypeLabel('sk-ssh-ed25519@openssh.com')).toBe('sk-ssh-ed25519@openssh.com');
	});
});
