import {stat} from 'node:fs/promises';
import path from 'node:path';
import {describe, expect, it} from 'vitest';
import {freePort} from '../helpers/ports.js';
import {startTmux} from '../helpers/tmux.js';
import {cli, labChainFlags, labWithJupyterHooks} from './gpujup-process.js';

/**
 * The keys at 80×24 against a real OpenSSH chain and a Jupyter started by hand on the GPU host
 * (no `gpujup host`: the exec fallback), on a laptop with no browser to open.
 */
describe('keys in tmux at 80×24, exec fallback, no browser', () => {
	const hand = labWithJupyterHooks();

	it('c says copied; o says why no browser opened and where the link is; j says at once it cannot; r says all is up; the log says where lines could come from', async () => {
		// No xdg-open here (Debian's xdg-utils is not installed), and no display either.
		const env: NodeJS.ProcessEnv = {...hand().lab.env(), PATH: '/usr/bin:/bin'};
		delete env.DISPLAY;
		delete env.WAYLAND_DISPLAY;
		const tmux = await startTmux(
			[
				process.execPath,
				cli,
				'connect',
				...labChainFlags(hand().lab, hand().jupyterPort),
				'--local-port',
				String(await freePort()),
			],
			{env, width: 80, height: 24},
		);
		try {
			await tmux.waitForText('hops up', 90_000);
			let screen = await tmux.waitForText(/jupyter running/, 60_000);

			// Jupyter started by hand, no --jupyter-log: the log pane says where lines could come from.
			screen = await tmux.waitForText(
				'no Jupyter log: pass --jupyter-log FILE, or run `gpujup host` on the GPU host',
				30_000,
			);

			await tmux.sendKeys('c');
			screen = await tmux.waitForText('copied ✓', 10_000);
			expect(screen.split('\n')[0]).toContain('copied ✓');

			// o: no xdg-open on PATH. The dashboard says so, and where the redirect file is.
			await tmux.sendKeys('o');
			screen = await tmux.waitForText(/no browser opened/, 15_000);
			screen = await tmux.waitForText('~/.local/state/gpujup/default/open-jupyter.html', 10_000);
			expect(screen).toMatch(/xdg-open not found/);
			const redirect = path.join(hand().lab.home, '.local/state/gpujup/default/open-jupyter.html');
			expect((await stat(redirect)).mode & 0o777).toBe(0o600);

			// j: no gpujup host there, so no restart is possible: said at once, no question.
			await tmux.sendKeys('j');
			screen = await tmux.waitForText(/needs `?gpujup host/, 10_000);
			expect(screen).not.toMatch(/Restart Jupyter\?/);

			// r with every hop up: nothing to do, and it says so.
			await tmux.sendKeys('r');
			screen = await tmux.waitForText(/all hops are up/, 10_000);
			expect(await tmux.exitCode()).toBeNull();
		} finally {
			await tmux.dispose();
		}
	}, 300_000);
});
