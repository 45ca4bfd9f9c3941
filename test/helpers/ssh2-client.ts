import {readFile} from 'node:fs/promises';
import ssh2, {type Client} from 'ssh2';
import type {Lab} from './openssh-lab.js';

/**
 * An ssh2 session on the lab's GPU host sshd (the login node in the Slurm tests), with the lab's
 * client key; its host key checked against the lab's unless `checkHostKey` is false (the tests of
 * what runs over the session, where the hop machinery is tested elsewhere).
 */
export async function gpuHostSession(
	lab: Lab,
	options: {checkHostKey?: boolean} = {},
): Promise<Client> {
	const client = new ssh2.Client();
	client.on('error', () => {});
	const privateKey = await readFile(lab.clientKey);
	const expected = lab.gpu.hostKeyPub.split(' ')[1];
	const check = options.checkHostKey ?? true;
	await new Promise<void>((resolve, reject) => {
		client.once('ready', resolve);
		client.once('error', reject);
		client.connect({
			host: '127.0.0.1',
			port: lab.gpu.port,
			username: lab.user,
			privateKey,
			hostVerifier: (key: Buffer) => !check || key.toString('base64') === expected,
		});
	});
	return client;
}
