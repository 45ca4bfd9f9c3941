import {describe, expect, test} from 'vitest';
import {checkPinnedKey, pairingKeyIndex, type HostKeyPin} from '../../source/core/pins.js';

const pin: HostKeyPin = {
	fingerprint: 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
	origin: '/home/me/.config/gpujup/config.toml:7: key "host-key"',
};
const offered = (fingerprint: string, keyType = 'ssh-ed25519') => ({
	name: '[localhost]:19506',
	keyType,
	shown: `ED25519 ${fingerprint}`,
	fingerprint,
});
const other = 'SHA256:BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB';

describe('pinned host keys', () => {
	test('a key that does not match its pin is refused, whatever known_hosts says', () => {
		for (const verdict of ['ok', 'unknown', 'changed', 'revoked'] as const) {
			const decision = checkPinnedKey(pin, offered(other), verdict, ['ssh-ed25519']);
			expect(decision.action).toBe('refuse');
			const message = decision.action === 'refuse' ? decision.message : '';
			expect(message).toContain('DOES NOT MATCH ITS PIN');
			expect(message).toContain(`ED25519 ${other}`);
			expect(message).toContain(pin.fingerprint);
			expect(message).toContain(pin.origin);
			expect(message).toMatch(/gpujup host --pair.*gpujup pair/);
		}
	});

	test('a matching key unknown to known_hosts is recorded without a question', () => {
		expect(checkPinnedKey(pin, offered(pin.fingerprint), 'unknown', [])).toEqual({
			action: 'record',
		});
	});

	test('a matching key of a type known_hosts does not hold is recorded beside the others', () => {
		expect(
			checkPinnedKey(pin, offered(pin.fingerprint), 'changed', ['ecdsa-sha2-nistp256']),
		).toEqual({action: 'record'});
	});

	test('known_hosts keeps its say: ok stays ok, a same-type other key or @revoked is refused there', () => {
		for (const verdict of ['ok', 'changed', 'revoked'] as const)
			expect(checkPinnedKey(pin, offered(pin.fingerprint), verdict, ['ssh-ed25519'])).toEqual({
				action: 'known-hosts',
			});
	});

	test('the key pairing reads is the one a pinned hop is shown: ed25519, then ecdsa, then rsa', () => {
		expect(pairingKeyIndex(['ssh-rsa', 'ecdsa-sha2-nistp256', 'ssh-ed25519'])).toBe(2);
		expect(pairingKeyIndex(['ssh-rsa', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp256'])).toBe(2);
		expect(pairingKeyIndex(['ssh-rsa'])).toBe(0);
		expect(pairingKeyIndex(['ssh-dss'])).toBe(-1);
		expect(pairingKeyIndex([])).toBe(-1);
	});
});
