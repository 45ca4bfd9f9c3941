/**
 * A GPU host user whose login shell is fish or tcsh (issue 9 item 9): every remote command goes
 * out as one `sh -c '…'` line, so runtime-file discovery, the nvidia-smi stream and agent
 * discovery work as under sh. Real OpenSSH (the GPU host sshd sees root's shell as fish or tcsh,
 * see `gpuLoginShell`), Debian's Jupyter, the replaying fake nvidia-smi, the built binary.
 */
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {runGpujup, type GpujupProcess} from '../e2e/gpujup-process.js';
import {samples} from '../helpers/nvidia-smi-samples.js';
import {freePort} from '../helpers/ports.js';
import {waitFor} from '../helpers/wait-for.js';
import {
	assertAlive,
	connectArgs,
	hostArgs,
	spawn,
	startChain,
	stopGpujup,
	waitLineAfter,
	waitReady,
	type Chain,
} from './fixture.js';

/** A command each shell answers with its own version (and neither sh nor the other does). */
const shells = [
	{shell: '/usr/bin/fish', whoami: 'echo $FISH_VERSION', version: /^\d+\.\d+/},
	{shell: '/usr/bin/tcsh', whoami: 'echo $tcsh', version: /^\d+\.\d+/},
] as const;

describe.each(shells)('a GPU host whose login shell is $shell', ({shell, whoami, version}) => {
	let chain: Chain;
	const procs: GpujupProcess[] = [];
	let hostJupyterPort: number;

	beforeAll(async () => {
		chain = await startChain({
			lab: {nvidiaSmi: {captures: [samples.captures[0]]}, gpuLoginShell: shell},
		});
		hostJupyterPort = await freePort();
	}, 120_000);

	afterAll(async () => {
		for (const proc of procs) await stopGpujup(proc);
		await runGpujup(
			['host', '--stop-jupyter', '--jupyter-port', String(hostJupyterPort)],
			chain.lab.gpuEnv(),
		).catch(() => undefined);
		await chain?.dispose();
	}, 120_000);

	it('is really that shell over ssh', async () => {
		const result = await chain.lab.ssh([...chain.lab.sshArgs(), whoami]);
		expect(result.stdout.trim()).toMatch(version);
	});

	it('finds the runtime file’s token, streams nvidia-smi, and finds gpujup host’s agent', async () => {
		const laptop = spawn(connectArgs(chain.lab, {jupyterPort: chain.jupyterPort}), chain.lab.env());
		procs.push(laptop);
		await waitReady(laptop, ['relay', 'host'], {timeoutMs: 120_000});

		// Exec fallback (OpenSSH's -R, a hand-started Jupyter): runtime files over exec.
		const url = await waitFor(
			async () => {
				assertAlive(laptop);
				const result = await runGpujup(['url'], chain.lab.env(), 30_000);
				return result.code === 0 && result.stdout.includes('token=')
					? new URL(result.stdout.trim())
					: undefined;
			},
			{timeoutMs: 60_000, message: '`gpujup url` with the runtime file’s token'},
		);
		expect(url.searchParams.get('token')).toBe(chain.token);

		// The nvidia-smi stream over exec, under the guard.
		await waitLineAfter(
			laptop,
			0,
			(line) =>
				line.type === 'gpu' &&
				Array.isArray(line['gpus']) &&
				line['gpus'].length > 0 &&
				line['error'] === null,
			60_000,
			'GPU samples over exec',
		);

		// gpujup host replaces the OpenSSH tunnel: its agent is found by a command over exec. Its
		// own Jupyter does not matter here (host stats come from the agent alone).
		await chain.lab.stopReverse();
		const mark = laptop.lines.length;
		const host = spawn(
			hostArgs(chain.lab, {jupyterPort: hostJupyterPort, notebookDir: chain.scratch}),
			chain.lab.gpuEnv(),
		);
		procs.push(host);
		await waitReady(host, ['reverse'], {timeoutMs: 120_000});
		await waitLineAfter(
			laptop,
			mark,
			(line) => line.type === 'host',
			120_000,
			'host stats from the agent (agent discovery worked)',
		);
	}, 300_000);
});
