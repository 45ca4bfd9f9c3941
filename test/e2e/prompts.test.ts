import {execFile} from 'node:child_process';
import {readFile} from 'node:fs/promises';
import path from 'node:path';
import {promisify} from 'node:util';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {startLab, type Lab} from '../helpers/openssh-lab.js';
import {freePort} from '../helpers/ports.js';
import {startTmux} from '../helpers/tmux.js';
import {cli, labChainFlags} from './gpujup-process.js';

const execFileP = promisify(execFile);

/**
 * The dashboard's prompts against a real OpenSSH relay and GPU host, with one encrypted key that
 * both accept: typed text and Enter arriving in one write (a paste, a fast typist over SSH).
 */
describe('prompts in tmux: an encrypted key for both hops', () => {
	let lab: Lab;
	let key: string;

	beforeAll(async () => {
		lab = await startLab();
		key = path.join(lab.dir, 'id_encrypted');
		await execFileP('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'correct horse', '-f', key]);
		const pub = await readFile(`${key}.pub`, 'utf8');
		await lab.addAuthorizedKey(pub, 'relay');
		await lab.addAuthorizedKey(pub, 'gpu');
	}, 120_000);

	afterAll(async () => {
		await lab?.dispose();
	});

	it('"text\\r" in one write submits; a wrong passphrase says so; both hops ask once; "/" takes "text\\r" too', async () => {
		const flags = labChainFlags(lab, await freePort());
		flags[flags.indexOf('--identity') + 1] = key;
		const env = lab.env();
		delete env.SSH_AUTH_SOCK;
		const tmux = await startTmux(
			[process.execPath, cli, 'connect', ...flags, '--local-port', String(await freePort())],
			{env, width: 160, height: 48},
		);
		try {
			await tmux.waitForText(/relay hop asks[\s\S]*Enter passphrase for key/, 60_000);
			// One write each: the text and its Enter.
			await tmux.sendText('wrong\r');
			let screen = await tmux.waitForText(/Wrong passphrase, try again/, 20_000);
			expect(screen).toMatch(/relay hop asks/);
			await tmux.sendText('correct horse\r');
			// The GPU host hop uses the key the relay hop decrypted: no second question.
			screen = await tmux.waitForText('all hops up', 60_000);
			expect(screen).not.toMatch(/hop asks/);
			expect(screen).not.toContain('correct horse');

			// The log filter: `/`, then a word and Enter in one write keep the filter.
			await tmux.sendKeys('/');
			await tmux.waitForText('enter keep filter', 10_000);
			await tmux.sendText('nomatchxyz\r');
			screen = await tmux.waitForText(/filter: nomatchxyz(?!▏)/, 10_000);
			expect(screen).not.toContain('enter keep filter');
		} finally {
			await tmux.dispose();
		}
	}, 240_000);
});
