import ssh2 from 'ssh2';
import {expect, test} from 'vitest';
import {generateEd25519} from '../../source/services/ssh-keys.js';

test('every generated key parses (ssh2 alone fails about one in 200)', () => {
	for (let i = 0; i < 600; i++) {
		const pair = generateEd25519('gpujup-test');
		const parsed = ssh2.utils.parseKey(pair.private);
		expect(parsed).not.toBeInstanceOf(Error);
		expect(pair.public).toMatch(/^ssh-ed25519 AAAA\S+ gpujup-test$/);
	}
});
