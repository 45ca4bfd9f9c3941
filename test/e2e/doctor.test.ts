import {writeFile} from 'node:fs/promises';
import path from 'node:path';
import {describe, expect, it} from 'vitest';
import {samples} from '../helpers/nvidia-smi-samples.js';
import {freePort} from '../helpers/ports.js';
import {labWithJupyterHooks, runGpujup} from './gpujup-process.js';

/** Each broken step of the chain is named by `gpujup doctor`, with its fix, exit 1. */
describe('gpujup doctor against OpenSSH', () => {
	const hand = labWithJupyterHooks({nvidiaSmi: {captures: [samples.captures[2]]}});

	const args = (overrides: {relayPort?: number; knownHosts?: string} = {}) => {
		const {lab, jupyterPort} = hand();
		return [
			'doctor',
			'--relay',
			`root@127.0.0.1:${overrides.relayPort ?? lab.relay.port}`,
			'--relay-port',
			String(lab.relayPort),
			'--jupyter-port',
			String(jupyterPort),
			'-i',
			lab.clientKey,
			'--known-hosts',
			overrides.knownHosts ?? lab.knownHosts,
		];
	};

	/** The step marked ✗ and the fix line under it. */
	const failure = (stdout: string) => {
		const lines = stdout.split('\n');
		const index = lines.findIndex((l) => l.startsWith('✗'));
		return {step: lines[index] ?? '', fix: lines[index + 1] ?? ''};
	};

	it('passes every check on a healthy chain', async () => {
		const {lab, token} = hand();
		const result = await runGpujup(args(), lab.env());
		expect(result.stdout).toContain('all checks passed');
		// Each dependency workaround, active on this install, before the verdict line.
		for (const name of [
			'ssh2-window',
			'ssh2-ping',
			'ink-output-cache',
			'ink-widest-line',
			'ssh2-demo-server',
		])
			expect(result.stdout).toMatch(new RegExp(`^  active ${name} +\\S`, 'm'));
		expect(result.stdout.trimEnd().split('\n').at(-1)).toBe('all checks passed');
		expect(result.stdout).toMatch(new RegExp(`✓ nvidia-smi\\s+1 GPU: ${samples.desktop.name}`));
		expect(result.stdout).not.toContain(token);
		expect(result.code).toBe(0);
	});

	it('names a wrong relay port', async () => {
		const {lab} = hand();
		const closed = await freePort();
		const result = await runGpujup(args({relayPort: closed}), lab.env());
		expect(result.code).toBe(1);
		const {step, fix} = failure(result.stdout);
		expect(step).toMatch(/^✗ TCP/);
		expect(fix).toContain('fix:');
		expect(fix).toContain('--relay');
	});

	it('names an unknown host key', async () => {
		const {lab, notebooks} = hand();
		const empty = path.join(notebooks, 'empty_known_hosts');
		await writeFile(empty, '');
		const result = await runGpujup(args({knownHosts: empty}), lab.env());
		expect(result.code).toBe(1);
		const {step, fix} = failure(result.stdout);
		expect(step).toMatch(/^✗ host key/);
		expect(step + fix).toMatch(/SHA256:/);
		expect(fix).toMatch(/--accept-new|known_hosts/);
	});

	it('names a missing reverse tunnel, then Jupyter down', async () => {
		const {lab, jupyter, jupyterPort} = hand();
		await lab.stopReverse();
		try {
			const result = await runGpujup(args(), lab.env());
			expect(result.code).toBe(1);
			const {step, fix} = failure(result.stdout);
			expect(step).toMatch(/^✗ reverse port/);
			expect(fix).toContain('gpujup host');
		} finally {
			await lab.startReverse();
		}

		await jupyter.dispose();
		const result = await runGpujup(args(), lab.env());
		expect(result.code).toBe(1);
		const {step, fix} = failure(result.stdout);
		expect(step).toMatch(/^✗ Jupyter/);
		expect(fix).toContain(`--port=${jupyterPort}`);
	});
});
