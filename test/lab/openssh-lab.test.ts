import {execFile} from 'node:child_process';
import {chmod, readFile, writeFile} from 'node:fs/promises';
import path from 'node:path';
import {afterEach, describe, expect, it} from 'vitest';
import {portRefuses, readBanner, startLab, type Lab} from '../helpers/openssh-lab.js';
import {tempDir} from '../helpers/ports.js';
import {waitFor} from '../helpers/wait-for.js';

describe('openssh lab', () => {
	let lab: Lab | undefined;
	afterEach(async () => {
		await lab?.dispose();
		lab = undefined;
	});

	it('reaches the GPU host through the relay with real OpenSSH, with the PATH override', async () => {
		const binDir = await tempDir('fake-bin');
		const bin = binDir.path;
		try {
			await writeFile(path.join(bin, 'nvidia-smi'), '#!/bin/sh\necho fake-gpu\n');
			await chmod(path.join(bin, 'nvidia-smi'), 0o755);
			lab = await startLab({hostEnvPath: bin});
			expect(lab.relay.hostKeyPub).toMatch(/^ssh-ed25519 AAAA\S+$/);
			expect(lab.gpu.hostKeyPub).not.toBe(lab.relay.hostKeyPub);
			const knownHosts = await readFile(lab.knownHosts, 'utf8');
			expect(knownHosts).toContain(`[127.0.0.1]:${lab.relay.port} ${lab.relay.hostKeyPub}`);
			expect(knownHosts).toContain(`[localhost]:${lab.relayPort} ${lab.gpu.hostKeyPub}`);

			const result = await lab.ssh([
				...lab.sshArgs(),
				'echo ok; command -v nvidia-smi; nvidia-smi; echo "$HOME"',
			]);
			expect(result.stderr).toBe('');
			expect(result.code).toBe(0);
			expect(result.stdout.split('\n')).toEqual([
				'ok',
				path.join(bin, 'nvidia-smi'),
				'fake-gpu',
				lab.gpuHome,
				'',
			]);

			// The GPU host session really came in through the reverse port (its sshd logged it).
			const gpuLog = await readFile(lab.gpu.logFile, 'utf8');
			expect(gpuLog).toMatch(/Accepted publickey for root from 127\.0\.0\.1/);
		} finally {
			await binDir.dispose();
		}
	});

	it('secondGpu: a second GPU host behind the same relay, with its own key, HOME and tunnel', async () => {
		lab = await startLab({secondGpu: true});
		const gpu2 = lab.gpu2!;
		expect([gpu2.hostKeyPub === lab.gpu.hostKeyPub, gpu2.relayPort === lab.relayPort]).toEqual([
			false,
			false,
		]);
		expect(await readFile(lab.knownHosts, 'utf8')).toContain(
			`[localhost]:${gpu2.relayPort} ${gpu2.hostKeyPub}`,
		);
		const result = await lab.ssh(['-F', lab.sshConfig, 'gpu2', 'echo "$HOME"']);
		expect([result.code, result.stderr, result.stdout.trim()]).toEqual([0, '', gpu2.home]);
		expect(await readFile(gpu2.logFile, 'utf8')).toMatch(/Accepted publickey for root/);
		// Its tunnel stops and starts alone: the first host's stays.
		await gpu2.stopReverse();
		expect([gpu2.reverseRunning(), lab.reverseRunning()]).toEqual([false, true]);
		expect(await portRefuses(gpu2.relayPort)).toBe(true);
		await gpu2.startReverse();
		expect(await readBanner(gpu2.relayPort)).toMatch(/^SSH-2\.0-OpenSSH/);
	});

	it('drops relay sessions, restarts the relay and restarts the reverse tunnel', async () => {
		lab = await startLab();
		expect(lab.reverseRunning()).toBe(true);
		expect(await readBanner(lab.relayPort)).toMatch(/^SSH-2\.0-OpenSSH/);

		await lab.dropRelaySessions();
		expect(lab.reverseRunning()).toBe(false);
		await waitFor(async () => portRefuses(lab!.relayPort), {
			message: 'reverse port gone after drop',
		});
		// The relay listener itself survived.
		expect(await readBanner(lab.relay.port)).toMatch(/^SSH-2\.0-OpenSSH/);

		await lab.startReverse();
		expect((await lab.ssh([...lab.sshArgs(), 'echo again'])).stdout).toBe('again\n');

		const oldPid = lab.relay.pid;
		await lab.relay.restart();
		expect(lab.relay.pid).not.toBe(oldPid);
		// A restart takes the sessions with it: the -R listener is gone until the tunnel is remade.
		await waitFor(async () => portRefuses(lab!.relayPort), {
			message: 'reverse port gone after restart',
		});
		await waitFor(async () => !lab!.reverseRunning(), {message: 'reverse ssh exited'});
		await lab.startReverse();
		expect((await lab.ssh([...lab.sshArgs(), 'echo back'])).stdout).toBe('back\n');

		await lab.gpu.stop();
		expect(await portRefuses(lab.gpu.sshPort)).toBe(true);
		await lab.gpu.start();
		expect((await lab.ssh([...lab.sshArgs(), 'echo gpu-back'])).stdout).toBe('gpu-back\n');

		await lab.stopReverse();
		expect(await portRefuses(lab.relayPort)).toBe(true);
	});

	it('leaves relayPort to the test with reverse none, and takes extra keys and options', async () => {
		lab = await startLab({reverse: 'none', relayOptions: ['ClientAliveInterval 2']});
		expect(lab.reverseRunning()).toBe(false);
		expect(await portRefuses(lab.relayPort)).toBe(true);
		expect(await readFile(lab.relay.configFile, 'utf8')).toMatch(/^ClientAliveInterval 2\n/);

		// A second key, authorized on both machines, works with -i and the same known_hosts.
		const other = path.join(lab.dir, 'other_key');
		await new Promise<void>((resolve, reject) =>
			execFile('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other], (error) =>
				error ? reject(error) : resolve(),
			),
		);
		const pub = await readFile(`${other}.pub`, 'utf8');
		// Only this key: -F /dev/null keeps the lab's ssh_config (and its IdentityFile) out.
		const withOther = (port: number, host: string) => [
			'-F',
			'/dev/null',
			'-o',
			'BatchMode=yes',
			'-o',
			'IdentitiesOnly=yes',
			'-o',
			`UserKnownHostsFile=${lab!.knownHosts}`,
			'-o',
			'StrictHostKeyChecking=yes',
			'-i',
			other,
			'-p',
			String(port),
			`root@${host}`,
		];
		const denied = await lab.ssh([...withOther(lab.relay.port, '127.0.0.1'), 'echo no']);
		expect(denied.code).toBe(255);
		expect(denied.stderr).toContain('Permission denied (publickey)');
		await lab.addAuthorizedKey(pub, 'relay');
		await lab.addAuthorizedKey(pub, 'gpu');
		const relayRun = await lab.ssh([...withOther(lab.relay.port, '127.0.0.1'), 'echo relay']);
		expect(relayRun.stdout).toBe('relay\n');

		// The relay port is on this machine's loopback, so the GPU host is also one hop away; the
		// key it offers is the one known_hosts has under [localhost]:<relayPort>.
		await lab.startReverse();
		const viaGpu = await lab.ssh([...withOther(lab.relayPort, 'localhost'), 'echo "$HOME"']);
		expect(viaGpu.stderr).toBe('');
		expect(viaGpu.stdout).toBe(`${lab.gpuHome}\n`);

		// A listener-only restart (systemctl restart ssh) keeps the sessions and so the tunnel.
		await lab.relay.restart({keepSessions: true});
		expect(lab.reverseRunning()).toBe(true);
		expect(await readBanner(lab.relayPort)).toMatch(/^SSH-2\.0-OpenSSH/);
	});
});
