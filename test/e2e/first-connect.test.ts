import {mkdirSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {describe, expect, it} from 'vitest';
import {freePort} from '../helpers/ports.js';
import {copiedUrl, startTmux} from '../helpers/tmux.js';
import {
	cli,
	hostLabHooks,
	labChainFlags,
	labHostArgs,
	spawnGpujup,
	waitForUrl,
} from './gpujup-process.js';

/**
 * Issue 10 items 7 and 8, as a new user meets them: `gpujup connect` in a terminal before the GPU
 * host's `gpujup host` has made its tunnel, then with it; the built binary in tmux.
 */
describe('the dashboard before and after the first connect (tmux)', () => {
	const fixture = hostLabHooks('gpujup-first-e2e-');

	it('names the relay as typed and says the GPU host is not reached yet; then its name; c at 80×24 says copied and copies', async () => {
		const relay = `root@127.0.0.1:${fixture.lab.relay.port}`;
		const localPort = await freePort();
		const tmux = await startTmux(
			[
				process.execPath,
				cli,
				'connect',
				...labChainFlags(fixture.lab, fixture.jupyterPort),
				'--local-port',
				String(localPort),
			],
			{env: fixture.lab.env(), width: 160, height: 48},
		);
		try {
			// No tunnel yet: the relay is up, the GPU host cannot be reached through it.
			let screen = await tmux.waitForText(/GPU host: down/, 90_000);
			let header = screen.split('\n')[0]!;
			expect(header).toContain(`GPU host (not reached yet) via ${relay}`);
			// Not the user name as if it were the host, nor a made-up host name.
			expect(header).not.toMatch(/gpujup\s+root\b/);
			expect(screen).not.toContain('@gpu-host');

			await tmux.resize(80, 24);
			screen = await tmux.waitForText(/^ gpujup GPU host via /, 30_000);
			header = screen.split('\n')[0]!;
			expect(header).toContain(`GPU host via ${relay}`);
			expect(header).toMatch(/GPU host (down|waiting|lost)/);
			expect(screen.split('\n')[1]).toMatch(/laptop [●◐○] relay [●◐○] GPU host [●◐○] jupyter/);
			expect(screen).not.toContain('@gpu-host');

			// gpujup host makes the tunnel: the header takes the GPU host's own name.
			const notebooks = path.join(fixture.dir.path, 'notebooks');
			mkdirSync(notebooks);
			fixture.children.push(
				spawnGpujup(labHostArgs(fixture.lab, fixture.jupyterPort, notebooks), fixture.lab.gpuEnv()),
			);
			screen = await tmux.waitForText('hops up', 120_000);
			screen = await tmux.waitForText(/jupyter running/, 120_000);
			header = screen.split('\n')[0]!;
			expect(header).toContain(`gpujup ${os.hostname()} via ${relay}`);
			expect(header).not.toContain('GPU host');

			// c at 80×24: the feedback is on screen, and the URL with its token went out as OSC 52.
			const url = await waitForUrl(fixture.lab.env());
			expect(url).toContain('token=');
			await tmux.sendKeys('c');
			screen = await tmux.waitForText('copied ✓', 10_000);
			expect(screen.split('\n')[0]).toContain('copied ✓');
			expect(await copiedUrl(tmux)).toBe(url);
			expect(screen).not.toContain(new URL(url).searchParams.get('token')!);
		} finally {
			await tmux.dispose();
		}
	}, 400_000);
});
