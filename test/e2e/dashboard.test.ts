import {execFile} from 'node:child_process';
import {promisify} from 'node:util';
import {beforeAll, describe, expect, it} from 'vitest';
import {samples} from '../helpers/nvidia-smi-samples.js';
import type {Lab} from '../helpers/openssh-lab.js';
import {freePort} from '../helpers/ports.js';
import {copiedUrl, startTmux, type Tmux} from '../helpers/tmux.js';
import {waitFor} from '../helpers/wait-for.js';
import {
	cli,
	type GpujupProcess,
	labChainFlags,
	hostLabHooks,
	labHostArgs,
	labWithJupyterHooks,
	runGpujup,
	spawnGpujup,
	waitForUrl,
} from './gpujup-process.js';

const execFileP = promisify(execFile);

const desktop = samples.captures[2];
/** The desktop GPU on screen: its model, and its total memory (`…/16.0 GiB`). */
const gpuModel = new RegExp(samples.desktop.model);
const gpuMemory = new RegExp(
	`\\d+(\\.\\d)?/${samples.desktop.memoryTotalGiB.replace('.', '\\.')} GiB`,
);

/** The flags of `gpujup connect` against a lab, with a known local port. */
const connectArgs = (lab: Lab, jupyterPort: number, localPort: number, extra: string[] = []) => [
	'connect',
	...labChainFlags(lab, jupyterPort),
	'--local-port',
	String(localPort),
	...extra,
];

/** The screen with wrapped rows joined (`capture-pane -J`): a row wider than the pane shows here. */
async function joinedScreen(tmux: Tmux): Promise<string[]> {
	const {stdout} = await execFileP('tmux', [
		'-L',
		tmux.socketName,
		'capture-pane',
		'-p',
		'-J',
		'-t',
		'main',
	]);
	return stdout.replace(/\n$/, '').split('\n');
}

/** The numbers after `pid ` on screen (the Jupyter pane's). */
const pidOnScreen = (screen: string): number | undefined => {
	const match = /running\s+pid (\d+)/.exec(screen);
	return match ? Number(match[1]) : undefined;
};

/** `q`: exit 0, cursor back, alternate screen off. */
async function quitCleanly(tmux: Tmux): Promise<void> {
	await tmux.sendKeys('q');
	const code = await waitFor(async () => {
		const value = await tmux.exitCode();
		return value === null ? undefined : {value};
	});
	expect(code.value).toBe(0);
	expect(await tmux.cursorVisible()).toBe(true);
	expect(await tmux.alternateScreen()).toBe(false);
}

/** Jupyter's own startup line (notebook 6 / jupyter_server), as it is in the log. */
const startupLine = /is running at|Serving notebooks from/g;

describe('dashboard in tmux, with gpujup host on the GPU host', () => {
	const fixture = hostLabHooks('gpujup-dash-nb-', {nvidiaSmi: {captures: [desktop]}});
	let host: GpujupProcess;

	beforeAll(async () => {
		const {lab, jupyterPort, dir} = fixture;
		host = spawnGpujup(labHostArgs(lab, jupyterPort, dir.path), lab.gpuEnv());
		fixture.children.push(host);
		await host.waitForLine((l) => l.type === 'hop' && l.hop === 'reverse' && l.state === 'ready', {
			timeoutMs: 90_000,
		});
		await host.waitForLine((l) => l.type === 'jupyter' && l.state === 'running', {
			timeoutMs: 120_000,
		});
	}, 240_000);

	it('shows live hops, GPU, Jupyter and its log; c copies, j y restarts, r reconnects, q exits', async () => {
		const {lab, jupyterPort} = fixture;
		const hostUrl = await waitForUrl(lab.gpuEnv());
		const token = new URL(hostUrl).searchParams.get('token')!;
		expect(token).toBeTruthy();
		const running = host.lines.findLast((l) => l.type === 'jupyter' && l.state === 'running');
		const firstPid = running?.['pid'] as number;
		expect(firstPid).toBeGreaterThan(0);

		const localPort = await freePort();
		const tmux = await startTmux(
			[process.execPath, cli, ...connectArgs(lab, jupyterPort, localPort)],
			{env: lab.env(), width: 160, height: 48},
		);
		try {
			// Every pane live: hops up, the GPU of the capture, Jupyter with its pid, Jupyter's log.
			let screen = await tmux.waitForText('all hops up', 90_000);
			screen = await tmux.waitForText(gpuModel, 60_000);
			screen = await tmux.waitForText(`running  pid ${firstPid}`, 60_000);
			screen = await tmux.waitForText(startupLine, 60_000);
			expect(screen).toMatch(/relay: ready/);
			expect(screen).toContain(`▶ http://127.0.0.1:${localPort}`);
			expect(screen).toMatch(gpuMemory);
			expect(screen).toMatch(/via gpujup host/);
			expect(screen).toContain('token=•••');
			expect(screen).not.toContain(token);

			// c: the full URL with the token goes to the clipboard (tmux's buffer through OSC 52).
			await tmux.sendKeys('c');
			await tmux.waitForText('copied', 10_000);
			expect(await copiedUrl(tmux)).toBe(`http://127.0.0.1:${localPort}/?token=${token}`);

			// j, then y: a new Jupyter (new pid, on the host and on screen), its startup in the log.
			const startupsBefore = (screen.match(startupLine) ?? []).length;
			const linesBefore = host.lines.length;
			await tmux.sendKeys('j');
			await tmux.waitForText(/Restart Jupyter\?/, 10_000);
			await tmux.sendKeys('y');
			const restarted = await host.waitForLine(
				(l) => l.type === 'jupyter' && l.state === 'running' && l['pid'] !== firstPid,
				{timeoutMs: 120_000, from: linesBefore},
			);
			const secondPid = restarted['pid'] as number;
			screen = await tmux.waitForText(`running  pid ${secondPid}`, 60_000);
			// The requested restart is counted, and the uptime starts again with the new Jupyter.
			screen = await tmux.waitForText(/restarts 1\b/, 30_000);
			expect(screen).toMatch(/pid \d+ {2}up (\d+s|–) {2}restarts 1/);
			const status = await runGpujup(['status', '--json'], lab.gpuEnv());
			expect((JSON.parse(status.stdout) as {jupyter: {pid: number}}).jupyter.pid).toBe(secondPid);
			// Ink's workarounds as the drawing Ink has them (the dashboard bundle's own copy), in the
			// laptop's status; the headless host draws none.
			const inkWorkarounds = async (env: NodeJS.ProcessEnv) =>
				(
					JSON.parse((await runGpujup(['status', '--json'], env)).stdout) as {
						workarounds: Array<{name: string; active: boolean}>;
					}
				).workarounds
					.filter((w) => w.name.startsWith('ink-'))
					.map((w) => [w.name, w.active]);
			expect(await inkWorkarounds(lab.env())).toEqual([
				['ink-output-cache', true],
				['ink-widest-line', true],
			]);
			expect(await inkWorkarounds(lab.gpuEnv())).toEqual([
				['ink-output-cache', false],
				['ink-widest-line', false],
			]);
			screen = await tmux.waitForScreen(
				(now) => (now.match(startupLine) ?? []).length > startupsBefore,
				{timeoutMs: 60_000, what: 'the restarted Jupyter’s startup lines in the log pane'},
			);
			expect(pidOnScreen(screen)).toBe(secondPid);
			// The same token after the restart: the copy still works.
			expect((await runGpujup(['url'], lab.gpuEnv())).stdout.trim()).toBe(hostUrl);

			// r on a healthy chain: nothing to retry, and it says so.
			await tmux.sendKeys('r');
			await tmux.waitForText('all hops are up', 10_000);

			// The relay drops every session (gpujup host's tunnel too); r retries at once, and the
			// counter says the chain came back.
			await lab.dropRelaySessions();
			await tmux.waitForText(/reconnects [1-9]|relay: (lost|down|connecting)/, 60_000);
			await tmux.sendKeys('r');
			screen = await tmux.waitForText(/reconnects [1-9]/, 90_000);
			screen = await tmux.waitForText('all hops up', 90_000);
			expect(screen).toMatch(/relay: ready/);
			// Jupyter (still the same one) is reachable again behind the healed chain.
			screen = await tmux.waitForText(`running  pid ${secondPid}`, 60_000);
			expect(screen).toContain('all hops up');

			await quitCleanly(tmux);
		} finally {
			await tmux.dispose();
		}
	}, 420_000);
});

describe('dashboard in tmux, exec fallback (no gpujup host; the seed’s ssh -R and Jupyter)', () => {
	const hand = labWithJupyterHooks({nvidiaSmi: {captures: [desktop]}});

	it('shows hops, Jupyter from its runtime file, GPUs from nvidia-smi and the fallback note; c copies; j explains at once', async () => {
		const {lab, jupyter, jupyterPort, token} = hand();
		const localPort = await freePort();
		const tmux = await startTmux(
			[
				process.execPath,
				cli,
				...connectArgs(lab, jupyterPort, localPort, ['--jupyter-log', jupyter.logFile]),
			],
			{env: lab.env(), width: 160, height: 48},
		);
		try {
			let screen = await tmux.waitForText('all hops up', 90_000);
			screen = await tmux.waitForText(`running  pid ${jupyter.pid}`, 60_000);
			screen = await tmux.waitForText(gpuModel, 60_000);
			screen = await tmux.waitForText(startupLine, 60_000);
			expect(screen).toMatch(gpuMemory);
			expect(screen).toMatch(/runtime file/);
			expect(screen).toMatch(/exec fallback/);
			expect(screen).not.toContain(token);

			await tmux.sendKeys('c');
			await tmux.waitForText('copied', 10_000);
			expect(await copiedUrl(tmux)).toBe(`http://127.0.0.1:${localPort}/?token=${token}`);

			// j: no agent to restart Jupyter; the dashboard says so at once and keeps running.
			await tmux.sendKeys('j');
			screen = await tmux.waitForText(/needs `?gpujup host/, 10_000);
			expect(screen).not.toMatch(/Restart Jupyter\?/);
			expect(await tmux.exitCode()).toBeNull();
			expect(screen).toContain(`running  pid ${jupyter.pid}`);
			expect(screen).toContain('all hops up');

			await quitCleanly(tmux);
		} finally {
			await tmux.dispose();
		}
	}, 300_000);

	it('fits 80×24: no row wider than 80, header on row 1, footer on the last rows', async () => {
		const {lab, jupyter, jupyterPort} = hand();
		const localPort = await freePort();
		const tmux = await startTmux(
			[
				process.execPath,
				cli,
				...connectArgs(lab, jupyterPort, localPort, ['--jupyter-log', jupyter.logFile]),
			],
			{env: lab.env(), width: 80, height: 24},
		);
		try {
			await tmux.waitForText('hops up', 90_000);
			await tmux.waitForText(gpuModel, 60_000);
			await tmux.waitForText(/jupyter running/, 60_000);
			await tmux.waitForText(startupLine, 60_000);
			const rows = await joinedScreen(tmux);
			expect(rows.length).toBeLessThanOrEqual(24);
			for (const row of rows) expect([...row.trimEnd()].length).toBeLessThanOrEqual(80);
			expect(rows[0]).toMatch(/^ gpujup .*hops up/);
			const footer = rows.map((row) => row.trimEnd()).filter(Boolean);
			expect(rows.slice(-2).join('\n')).toMatch(/q quit/);
			expect(footer.at(-1)).toMatch(/q quit/);
			expect(rows.join('\n')).toContain(`http://127.0.0.1:${localPort}`);
			await quitCleanly(tmux);
		} finally {
			await tmux.dispose();
		}
	}, 240_000);
});
