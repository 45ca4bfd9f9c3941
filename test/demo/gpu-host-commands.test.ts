import {describe, expect, it} from 'vitest';
import {guardedCommand} from '../../source/services/command-runner.js';
import {shCommand} from '../../source/core/shell.js';
import {
	computeAppsQueryCommand,
	computeAppsQueryFields,
	gpuQueryCommand,
	gpuQueryFields,
	invalidFieldIn,
	parseComputeAppsCsv,
	parseGpuCsv,
	parsePsOutput,
	psCommand,
} from '../../source/core/nvidia-smi.js';
import {
	parseRuntimeFiles,
	runtimeDiscoveryScript,
	runtimeFileSeparator,
} from '../../source/core/jupyter-runtime.js';
import {
	handleGpuHostExec,
	splitShellWords,
	unwrapGuard,
	type ExecIo,
} from '../../source/demo/gpu-host-commands.js';
import {createSimulatedMachine} from '../../source/demo/simulated-gpus.js';

type Recorded = {stdout: string; stderr: string; code: number | null; close: () => void};

/** An ExecIo that records; `close()` plays the client ending its side. */
function recorder(): {io: ExecIo; result: Recorded} {
	const listeners: Array<() => void> = [];
	const result: Recorded = {
		stdout: '',
		stderr: '',
		code: null,
		close() {
			for (const l of listeners.splice(0)) l();
		},
	};
	const io: ExecIo = {
		write: (text) => {
			if (result.code === null) result.stdout += text;
		},
		writeError: (text) => {
			if (result.code === null) result.stderr += text;
		},
		exit: (code) => {
			result.code ??= code;
		},
		onClose: (listener) => listeners.push(listener),
	};
	return {io, result};
}

const machine = createSimulatedMachine(507);
let now = 30_000;
const context = {
	machine,
	elapsedMs: () => now,
	user: 'alice',
	runtimeFiles: () => `{"port": 8888, "token": "abc", "pid": 42}${runtimeFileSeparator}\n`,
};

function run(command: string): Recorded {
	const {io, result} = recorder();
	handleGpuHostExec(command, io, context);
	return result;
}

async function until(check: () => boolean, timeoutMs = 10_000): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	while (!check()) {
		if (Date.now() > deadline) throw new Error('timed out');
		await new Promise((resolve) => {
			setTimeout(resolve, 20);
		});
	}
}

describe('shell words and the client guard', () => {
	it('splits quotes and escapes like sh', () => {
		expect(splitShellWords(`a 'b c' "d \\"e\\"" f\\ g 'it'\\''s'`)).toEqual([
			'a',
			'b c',
			'd "e"',
			'f g',
			"it's",
		]);
		expect(splitShellWords(`echo 'open`)).toBeNull();
	});

	it('unwraps exactly what the client runner sends, deadline included', () => {
		const inner = gpuQueryCommand('nvidia-smi', gpuQueryFields, 1000);
		expect(unwrapGuard(guardedCommand(inner, 4500))).toEqual({command: inner, deadlineS: 5});
		expect(unwrapGuard(guardedCommand(inner))).toEqual({command: inner, deadlineS: 0});
		expect(unwrapGuard('ps -p 1')).toEqual({command: 'ps -p 1', deadlineS: 0});
		expect(unwrapGuard(shCommand(runtimeDiscoveryScript))).toEqual({
			command: runtimeDiscoveryScript,
			deadlineS: 0,
		});
	});
});

describe('the demo GPU host commands', () => {
	it('answers the runtime-file lookup with the demo Jupyter runtime JSON', () => {
		const result = run(runtimeDiscoveryScript);
		expect(result.code).toBe(0);
		expect(parseRuntimeFiles(result.stdout)).toEqual([
			{port: 8888, token: 'abc', pid: 42, baseUrl: '/', rootDir: null},
		]);
	});

	it('streams --query-gpu rows the client parser reads, until the client closes', async () => {
		now = 30_000;
		const {io, result} = recorder();
		handleGpuHostExec(
			guardedCommand(gpuQueryCommand('nvidia-smi', gpuQueryFields, 100)),
			io,
			context,
		);
		const first = parseGpuCsv(result.stdout, gpuQueryFields);
		if (!('gpus' in first)) throw new Error(`not rows: ${result.stdout}`);
		expect(first.driverVersion).toBe('550.54.15');
		expect(first.gpus.map((g) => g.name)).toEqual([
			'NVIDIA GeForce RTX 4090 (simulated)',
			'NVIDIA A100-SXM4-80GB (simulated)',
		]);
		const [rtx, a100] = first.gpus;
		expect(rtx!.mig).toBe(false);
		expect(rtx!.fanPercent).not.toBeNull();
		expect(a100!.fanPercent).toBeNull();
		expect(a100!.memoryTotalMiB).toBe(81_920);
		expect(result.stdout.split('\n')[1]).toMatch(
			/, Disabled, (?:\d+(?:\.\d+)?, ){6}\[N\/A\], NVIDIA A100-SXM4-80GB \(simulated\)$/,
		);
		now = 47_000;
		await until(() => result.stdout.split('\n').filter(Boolean).length >= 6);
		const rows = result.stdout.split('\n').filter(Boolean);
		expect(rows.at(-1)).not.toBe(rows[1]);
		expect(result.code).toBeNull();
		result.close();
		expect(result.code).toBe(143);
	});

	it('answers --query-compute-apps once and ps for the owners', () => {
		const apps = run(
			computeAppsQueryCommand('nvidia-smi', computeAppsQueryFields, 2000).replace(/ -lms \d+$/, ''),
		);
		expect(apps.code).toBe(0);
		const processes = parseComputeAppsCsv(apps.stdout, computeAppsQueryFields);
		expect(processes).toHaveLength(3);
		expect(new Set(processes.map((p) => p.gpuUuid))).toEqual(
			new Set(machine.cards.map((c) => c.uuid)),
		);
		const ps = run(psCommand(processes.map((p) => p.pid)));
		expect(ps.code).toBe(0);
		const owners = parsePsOutput(ps.stdout);
		expect([...owners.keys()].sort()).toEqual(processes.map((p) => p.pid).sort());
		expect([...owners.values()].every((e) => e.user === 'alice')).toBe(true);
		expect([...owners.values()].map((e) => e.command)).toContainEqual(
			expect.stringMatching(/^python train\.py /),
		);
		expect(run(psCommand([1])).code).toBe(1);
	});

	it('prints units and a header without nounits/noheader, as nvidia-smi does', () => {
		const result = run(
			'nvidia-smi --query-gpu=index,utilization.gpu,memory.used,power.draw --format=csv',
		);
		const lines = result.stdout.trim().split('\n');
		expect(lines[0]).toBe('index, utilization.gpu [%], memory.used [MiB], power.draw [W]');
		expect(lines[1]).toMatch(/^0, \d+ %, \d+ MiB, \d+\.\d\d W$/);
	});

	it('refuses an unknown field with nvidia-smi’s own message and exit status', () => {
		const result = run(
			'nvidia-smi --query-gpu=uuid,clocks_throttle_reasons.bogus --format=csv,noheader,nounits',
		);
		expect(result.code).toBe(2);
		expect(invalidFieldIn(result.stdout)).toBe('clocks_throttle_reasons.bogus');
	});

	it('ends a stream at the guard deadline', async () => {
		const {io, result} = recorder();
		handleGpuHostExec(
			guardedCommand('nvidia-smi --query-gpu=uuid --format=csv -lms 100', 1000),
			io,
			context,
		);
		await until(() => result.code !== null);
		expect(result.code).toBe(143);
	});

	it('says "not found" with exit 127 for anything else', () => {
		const result = run(guardedCommand('cat /etc/passwd'));
		expect(result.code).toBe(127);
		expect(result.stderr).toMatch(/^sh: 1: cat: not found/);
		expect(run('nvidia-smi').code).toBe(2);
		expect(run('nvidia-smi -L').stdout).toMatch(
			/^GPU 0: NVIDIA GeForce RTX 4090 \(simulated\) \(UUID: GPU-/,
		);
	});
});
