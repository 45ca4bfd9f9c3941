/**
 * The notebooks feature end to end, on one lab: real OpenSSH relay and GPU host, `gpujup host`
 * supervising Debian's Jupyter with real ipykernel kernels, the replaying nvidia-smi reporting the
 * real pids of a kernel and of its child (through a pid file the test writes), a local HTTP
 * receiver for `GPUJUP_NOTIFY_URL`, the laptop's dashboard in tmux, Jupyter killed under
 * `gpujup host` (jupyter-restarted at the laptop), and the exec fallback once `gpujup host` is gone.
 * Every wait polls for what it needs (a line, a screen); none relies on a poll round's timing.
 */
import {execFile} from 'node:child_process';
import {readFile, writeFile} from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import {promisify} from 'node:util';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {formatMiB} from '../../source/core/format.js';
import {installFakeNvidiaSmi} from '../helpers/fake-nvidia-smi.js';
import {
	executeInKernel,
	jupyterApi,
	openNotebook as openNotebookIn,
	type JupyterApi,
} from '../helpers/jupyter.js';
import {samples} from '../helpers/nvidia-smi-samples.js';
import {startLab, type Lab} from '../helpers/openssh-lab.js';
import {freePort, tempDir, type TempDir} from '../helpers/ports.js';
import {killAll, waitGone} from '../helpers/proc.js';
import {startTmux, type Tmux} from '../helpers/tmux.js';
import {waitFor} from '../helpers/wait-for.js';
import {
	cli,
	type GpujupProcess,
	type JsonLine,
	labChainFlags,
	labHostArgs,
	runGpujup,
	spawnGpujup,
	waitForUrl,
} from './gpujup-process.js';

const execFileP = promisify(execFile);
/** The desktop capture of the sample set: one GPU, two compute apps under load. */
const desktop = samples.captures[2];
const gpuUuid = samples.desktop.uuid;
/** The capture's two apps under load, pointed at the kernel and at its child. */
const [kernelApp, childApp] = samples.desktop.loadApps;
const kernelMiB = kernelApp.mib + childApp.mib;

/** The title of the focused pane (its top border is the bold one). */
const focusedTitle = (screen: string) => /┏ (\w+)/.exec(screen)?.[1];

/**
 * Tab until `title` has the focus, waiting after each Tab until the focus has moved (Ink reads
 * keys that arrive together as one input, and the screen changes for other reasons meanwhile).
 */
async function focusPane(tmux: Tmux, title: string): Promise<void> {
	for (let i = 0; i < 8; i++) {
		const now = focusedTitle(await tmux.capture());
		if (now === title) return;
		await tmux.sendKeys('Tab');
		await tmux.waitForScreen((screen) => focusedTitle(screen) !== now, {
			timeoutMs: 10_000,
			what: `the focus to leave ${now ?? 'no pane'}`,
		});
	}

	await tmux.waitForScreen((screen) => focusedTitle(screen) === title, {
		timeoutMs: 1000,
		what: `the focus on ${title}`,
	});
}

type Received = {title: string; tags: string; body: string};

describe('notebooks: kernels, control and notifications', () => {
	let lab: Lab;
	let bin: TempDir;
	let notebooks: TempDir;
	let jupyterPort: number;
	let host: GpujupProcess;
	let token: string;
	let receiver: http.Server;
	const received: Received[] = [];
	const pidFile = () => path.join(bin.path, 'pids');

	const api: JupyterApi = async (method, route, body) =>
		jupyterApi(`http://127.0.0.1:${jupyterPort}/`, token)(method, route, body);
	const openNotebook = async (notebook: string) => openNotebookIn(api, notebooks.path, notebook);

	const run = async (kernel: string, code: string, timeoutMs = 60_000) =>
		executeInKernel(`http://127.0.0.1:${jupyterPort}/`, token, kernel, code, timeoutMs);

	/**
	 * Run a cell that stays busy until `seenBusy` resolves (the watcher under test has seen the
	 * kernel busy), then 2 s more: a cell-done with --notify-after 2 whatever the poll's pace on a
	 * loaded machine, where a fixed-length cell can fall between two polls.
	 */
	let cells = 0;
	const heldCell = async (kernel: string, seenBusy: () => Promise<unknown>) => {
		const flag = path.join(bin.path, `release-${++cells}`);
		const code = `import os, time\nwhile not os.path.exists(${JSON.stringify(flag)}):\n    time.sleep(0.05)\ntime.sleep(2)`;
		const cell = run(kernel, code, 120_000);
		try {
			await seenBusy();
		} finally {
			await writeFile(flag, '');
		}

		await cell;
	};

	const kernelLine =
		(notebook: string, check: (line: JsonLine) => boolean = () => true) =>
		(line: JsonLine) =>
			line.type === 'kernel' && line['notebook'] === notebook && check(line);

	let trainId: string;
	let evalId: string;
	let kernelPid: number;

	beforeAll(async () => {
		receiver = http.createServer((request, response) => {
			let body = '';
			request.setEncoding('utf8');
			request.on('data', (chunk: string) => (body += chunk));
			request.on('end', () => {
				received.push({
					title: String(request.headers['title'] ?? ''),
					tags: String(request.headers['tags'] ?? ''),
					body,
				});
				response.end('ok');
			});
		});
		const receiverPort = await freePort();
		await new Promise<void>((resolve) => receiver.listen(receiverPort, '127.0.0.1', resolve));
		bin = await tempDir('gpujup-nb-bin-');
		await installFakeNvidiaSmi(bin.path, {captures: [desktop], state: 'load', pidFile: pidFile()});
		lab = await startLab({reverse: 'none', hostEnvPath: bin.path});
		notebooks = await tempDir('gpujup-nb-');
		jupyterPort = await freePort();
		host = spawnGpujup([...labHostArgs(lab, jupyterPort, notebooks.path), '--notify-after', '2'], {
			...lab.gpuEnv(),
			GPUJUP_NOTIFY_URL: `http://127.0.0.1:${receiverPort}/gpujup-topic`,
		});
		await host.waitForLine((l) => l.type === 'jupyter' && l.state === 'running', {
			timeoutMs: 120_000,
		});
		await host.waitForLine((l) => l.type === 'hop' && l.hop === 'reverse' && l.state === 'ready', {
			timeoutMs: 90_000,
		});
		const url = await waitForUrl(lab.gpuEnv());
		token = new URL(url).searchParams.get('token')!;
	}, 240_000);

	afterAll(async () => {
		await host?.stop();
		if (lab)
			await runGpujup(
				['host', '--stop-jupyter', '--jupyter-port', String(jupyterPort)],
				lab.gpuEnv(),
			);
		await notebooks?.dispose();
		await lab?.dispose();
		await bin?.dispose();
		receiver?.close();
	});

	it('gpujup host: kernels with GPU memory by pid, status --json and kernels, cell-done to the notify URL', async () => {
		trainId = await openNotebook('train/resnet.ipynb');
		evalId = await openNotebook('eval.ipynb');
		const pids = await run(
			trainId,
			"import os, subprocess\nchild = subprocess.Popen(['sleep', '600'])\nprint(os.getpid(), child.pid)",
		);
		const [kernel, child] = pids.trim().split(' ').map(Number);
		kernelPid = kernel!;
		await writeFile(pidFile(), `${kernelApp.pid}=${kernel}\n${childApp.pid}=${child}\n`);

		const train = await host.waitForLine(
			kernelLine(
				'train/resnet.ipynb',
				(l) => (l['gpuMemoryMiB'] as Record<string, number>)[gpuUuid] === kernelMiB,
			),
			{timeoutMs: 60_000},
		);
		expect(train['id']).toBe(trainId);
		expect(train['pids']).toEqual(expect.arrayContaining([kernel, child]));
		expect(train).not.toHaveProperty('lostPid');

		const status = await runGpujup(['status', '--json'], lab.gpuEnv());
		const kernels = (JSON.parse(status.stdout) as {kernels: JsonLine[]}).kernels;
		expect(kernels.find((k) => k['notebook'] === 'train/resnet.ipynb')?.['gpuMemoryMiB']).toEqual({
			[gpuUuid]: kernelMiB,
		});
		expect(kernels.find((k) => k['notebook'] === 'eval.ipynb')?.['gpuMemoryMiB']).toEqual({});
		const table = await runGpujup(['kernels'], lab.gpuEnv());
		expect(table.code).toBe(0);
		expect(table.stdout).toMatch(
			new RegExp(String.raw`train/resnet\.ipynb\s+python3 .*0: ${formatMiB(kernelMiB)}`),
		);
		const json = await runGpujup(['kernels', '--json'], lab.gpuEnv());
		expect((JSON.parse(json.stdout) as {kernels: unknown[]}).kernels).toHaveLength(2);

		// A cell held busy until gpujup host has seen it busy, then 2 s more, with --notify-after 2:
		// cell-done, in the events, the log and the receiver.
		const from = host.lines.length;
		await heldCell(evalId, async () =>
			host.waitForLine(
				kernelLine('eval.ipynb', (l) => l.state === 'busy'),
				{
					from,
					timeoutMs: 60_000,
				},
			),
		);
		const done = await host.waitForLine((l) => l.type === 'notify' && l['kind'] === 'cell-done', {
			from,
			timeoutMs: 30_000,
		});
		expect(done).toMatchObject({title: 'Cell finished: eval.ipynb', notebook: 'eval.ipynb'});
		await host.waitForLine(
			(l) => l.type === 'log' && String(l['line']).startsWith('[gpujup] Cell finished: eval.ipynb'),
			{from},
		);
		const post = await waitFor(() => received.find((r) => r.title.includes('eval.ipynb')), {
			timeoutMs: 30_000,
			message: 'the POST at the receiver',
		});
		expect(post).toMatchObject({tags: 'white_check_mark'});
		// At least the cell's own 2 s after it was seen busy (the times are Jupyter's last_activity).
		const ran = /eval\.ipynb finished after (\d+) s$/.exec(post.body);
		expect(ran, post.body).not.toBeNull();
		expect(Number(ran![1])).toBeGreaterThanOrEqual(2);
		// The URL is nowhere in what gpujup host writes (it may carry a secret).
		expect(host.output()).not.toContain('gpujup-topic');
	}, 180_000);

	it('dashboard: the notebook row and GPU row, i interrupts, x y shuts down, OSC 9 reaches tmux', async () => {
		const localPort = await freePort();
		const tmux = await startTmux(
			[
				process.execPath,
				cli,
				'connect',
				...labChainFlags(lab, jupyterPort),
				'--local-port',
				String(localPort),
			],
			{env: lab.env(), width: 160, height: 48},
		);
		const piped = path.join(bin.path, 'pane-output');
		try {
			await execFileP('tmux', [
				'-L',
				tmux.socketName,
				'pipe-pane',
				'-t',
				'main',
				'-o',
				`cat >> '${piped}'`,
			]);
			await tmux.waitForText('Notebooks', 90_000);
			await tmux.waitForText(/train\/resnet\.ipynb\s+python3/, 30_000);
			// Each kernel arrives as an event of its own: the second row may come a moment later.
			await tmux.waitForText(/eval\.ipynb\s+python3/, 30_000);
			// The GPU pane names the notebook that owns the process (once a GPU sample with the mapped
			// pids and the kernels have both arrived).
			await tmux.waitForText(
				new RegExp(String.raw`${formatMiB(kernelApp.mib)}\s+train/resnet\.ipynb`),
				30_000,
			);

			// Focus the Notebooks pane (the last in Tab order) and select the train notebook.
			await focusPane(tmux, 'Notebooks');
			await tmux.waitForText(/↑↓ select\s+i interrupt/, 10_000);
			const selectTrain = async () => {
				for (let i = 0; i < 3 && !/▸ train/.test(await tmux.capture()); i++) {
					const before = (await tmux.capture()).match(/▸ \S+/)?.[0];
					await tmux.sendKeys('Up');
					await tmux.waitForScreen((screen) => screen.match(/▸ \S+/)?.[0] !== before, {
						timeoutMs: 10_000,
						what: 'the selection to move',
					});
				}

				await tmux.waitForText(/▸ train\/resnet\.ipynb/, 10_000);
			};

			const cell = run(trainId, 'import time\ntime.sleep(600)', 120_000).then(
				() => 'finished',
				(error: unknown) => String(error),
			);
			await tmux.waitForText(/train\/resnet\.ipynb\s+python3\s+busy/, 30_000);
			await selectTrain();
			await tmux.sendKeys('i');
			expect(await cell).toMatch(/KeyboardInterrupt/);
			await tmux.waitForText(/interrupted train\/resnet\.ipynb/, 20_000);

			// A cell-done decided on the GPU host reaches the header and the terminal (OSC 9, bell).
			await heldCell(evalId, async () => tmux.waitForText(/eval\.ipynb\s+python3\s+busy/, 60_000));
			await tmux.waitForText(/✓ Cell finished: eval\.ipynb/, 30_000);
			const raw = await waitFor(
				async () => {
					const text = await readFile(piped, 'utf8').catch(() => '');
					return text.includes('\u001B]9;Cell finished: eval.ipynb') ? text : undefined;
				},
				{timeoutMs: 20_000, message: 'OSC 9 in the pane output'},
			);
			expect(raw).toContain('\u001B]777;notify;Cell finished: eval.ipynb;');
			expect(raw).toContain('\u0007');

			// x names the memory it frees (the kernel's own: the interrupt's SIGINT went to its
			// process group and ended the child); y shuts the kernel down and its row goes.
			await selectTrain();
			await tmux.sendKeys('x');
			await tmux.waitForText(
				`Shut down train/resnet.ipynb? frees ${formatMiB(kernelApp.mib)} on GPU 0 [y/N]`,
				20_000,
			);
			await tmux.sendKeys('y');
			// The row, not the log pane's lines that name the notebook.
			await tmux.waitForScreen((screen) => !/train\/resnet\.ipynb\s+python3/.test(screen), {
				timeoutMs: 30_000,
				what: 'the train row gone',
			});
			const gone = (await api('GET', 'api/kernels')) as Array<{id: string}>;
			expect(gone.map((k) => k.id)).not.toContain(trainId);
			await tmux.sendKeys('q');
			await waitFor(async () => ((await tmux.exitCode()) === null ? undefined : true));
		} finally {
			await tmux.dispose();
		}
	}, 240_000);

	it('Jupyter killed under gpujup host: the laptop gets jupyter-restarted, the kernels start again', async () => {
		const connect = spawnGpujup(
			['connect', '--no-tui', '--local-port', '0', ...labChainFlags(lab, jupyterPort)],
			lab.env(),
		);
		try {
			const seen = await connect.waitForLine(kernelLine('eval.ipynb'), {timeoutMs: 90_000});
			const orphans = seen['pids'] as number[];
			const status = await runGpujup(['status', '--json'], lab.gpuEnv());
			const jupyterPid = (JSON.parse(status.stdout) as {jupyter: {pid: number}}).jupyter.pid;
			const from = connect.lines.length;
			process.kill(jupyterPid, 'SIGKILL');
			const note = await connect.waitForLine(
				(l) => l.type === 'notify' && l['kind'] === 'jupyter-restarted',
				{from, timeoutMs: 120_000},
			);
			expect(note).toMatchObject({title: 'Jupyter restarted', notebook: null});
			await host.waitForLine((l) => l.type === 'notify' && l['kind'] === 'jupyter-restarted');
			// The crashed server's kernels may outlive it; they are not the test's to keep.
			killAll(orphans);
			await waitGone(orphans);
			// The same token and port after the restart: a notebook opens again.
			await waitFor(async () => (await api('GET', 'api/status')) as unknown, {
				timeoutMs: 60_000,
				message: 'the restarted Jupyter answering',
			});
			evalId = await openNotebook('eval.ipynb');
			await connect.waitForLine(
				kernelLine('eval.ipynb', (l) => l['id'] === evalId),
				{
					from,
					timeoutMs: 60_000,
				},
			);
		} finally {
			expect(await connect.stop()).toBe(0);
		}
	}, 240_000);

	it('exec fallback: with no gpujup host, connect watches the kernels itself; kill -9 gives kernel-died', async () => {
		expect(await host.stop()).toBe(0);
		// The seed's way: Jupyter lives on, OpenSSH's `ssh -R` makes the tunnel.
		await lab.startReverse();
		const connect = spawnGpujup(
			[
				'connect',
				'--no-tui',
				'--local-port',
				'0',
				'--notify-after',
				'2',
				...labChainFlags(lab, jupyterPort),
			],
			lab.env(),
		);
		try {
			const seen = await connect.waitForLine(kernelLine('eval.ipynb'), {timeoutMs: 90_000});
			expect(seen['id']).toBe(evalId);
			expect((seen['pids'] as number[]).length).toBeGreaterThan(0);
			const pid = (seen['pids'] as number[])[0]!;
			expect(pid).not.toBe(kernelPid);
			const from = connect.lines.length;
			process.kill(pid, 'SIGKILL');
			const died = await connect.waitForLine(
				(l) => l.type === 'notify' && l['kind'] === 'kernel-died',
				{from, timeoutMs: 60_000},
			);
			expect(died['notebook']).toBe('eval.ipynb');
		} finally {
			expect(await connect.stop()).toBe(0);
		}
	}, 180_000);
});
