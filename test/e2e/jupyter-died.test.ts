import {mkdirSync} from 'node:fs';
import path from 'node:path';
import {describe, expect, it} from 'vitest';

import {hostLabHooks, labHostArgs, spawnGpujup, spawnLabConnect} from './gpujup-process.js';

/**
 * Issue 10 item 8: after `kill -9` of the Jupyter that `gpujup host` supervises, a log line says it
 * died, in the host's own log events and in the laptop's (what its log pane shows).
 */
describe('a supervised Jupyter killed with SIGKILL', () => {
	const fixture = hostLabHooks('gpujup-died-e2e-');

	it('says so in the log that reaches the laptop, then restarts it', async () => {
		const notebooks = path.join(fixture.dir.path, 'notebooks');
		mkdirSync(notebooks);
		const host = spawnGpujup(
			labHostArgs(fixture.lab, fixture.jupyterPort, notebooks),
			fixture.lab.gpuEnv(),
		);
		try {
			const running = await host.waitForLine((l) => l.type === 'jupyter' && l.state === 'running', {
				timeoutMs: 120_000,
			});
			const pid = running['pid'] as number;
			const connect = spawnLabConnect(fixture.lab, fixture.jupyterPort);
			try {
				await connect.waitForLine((l) => l.type === 'jupyter' && l.state === 'running', {
					timeoutMs: 120_000,
				});
				// The laptop follows the host's log before the kill.
				await connect.waitForLine(
					(l) => l.type === 'log' && String(l['line']).includes('is running at'),
				);
				process.kill(pid, 'SIGKILL');
				const said = (l: Record<string, unknown>) =>
					l['type'] === 'log' &&
					String(l['line']).includes(`Jupyter (pid ${pid}) died: SIGKILL; restarting`);
				await host.waitForLine(said);
				await connect.waitForLine(said);
				await host.waitForLine(
					(l) => l.type === 'jupyter' && l.state === 'running' && l['pid'] !== pid,
					{timeoutMs: 120_000},
				);
				expect(connect.lines.filter(said)).toHaveLength(1);
			} finally {
				expect(await connect.stop()).toBe(0);
			}
		} finally {
			expect(await host.stop()).toBe(0);
		}
	}, 300_000);
});
