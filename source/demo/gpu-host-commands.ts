/**
 * What the demo's GPU host answers on an exec channel: the commands the real client sends over
 * the second hop (Jupyter's runtime-file lookup, the two nvidia-smi streams, `ps` for owners),
 * answered from the simulated machine in the exact text real tools print, and a shell-like
 * "not found" (exit 127) for anything else. Commands may come wrapped in the client's guard
 * (`sh -c GUARD gpujup-guard CMD DEADLINE`, see services/command-runner.ts): it is unwrapped here
 * and its deadline honoured, as the real guard would.
 */
import {readFileSync} from 'node:fs';
import path from 'node:path';
import {runtimeDiscoveryScript} from '../core/jupyter-runtime.js';
import {procDumpCommand} from '../core/kernels.js';
import {listenerCheckCommand} from '../core/proc-net.js';
import type {DemoKernels} from './demo-kernels.js';
import {
	sampleGpus,
	sampleProcesses,
	simulatedDriverVersion,
	type GpuSample,
	type ProcessSample,
	type SimulatedMachine,
} from './simulated-gpus.js';

/** The exec channel as the command handlers see it. */
export type ExecIo = {
	write(text: string): void;
	writeError(text: string): void;
	/** Send the exit status and close the channel; a no-op once closed. */
	exit(code: number): void;
	/** Runs once when the client ends its side (EOF, close) or the connection drops. */
	onClose(listener: () => void): void;
};

/** What the demo's GPU host knows. */
export type GpuHostContext = {
	readonly machine: SimulatedMachine;
	/** Milliseconds since the demo started: the simulated machine's clock. */
	readonly elapsedMs: () => number;
	/** Owner of the simulated processes (`ps` shows it). */
	readonly user: string;
	/** What the runtime-file lookup prints: the demo Jupyter's runtime JSON, separator-terminated. */
	readonly runtimeFiles: () => string;
	/**
	 * The notebooks' kernels on this machine: the kernel monitor's process-table exec is answered
	 * from them, and the processes of a kernel shut down or restarted leave nvidia-smi and ps.
	 */
	readonly kernels?: DemoKernels;
};

/** Exit status of a command the guard ended (SIGTERM): what the client sees when it stops one. */
const terminatedStatus = 143;

/**
 * Split a POSIX shell command line into words: single quotes, double quotes (with `\\`, `\"`,
 * `\$`, `` \` `` escapes), backslashes and blanks. Null on an unterminated quote. No expansion.
 */
export function splitShellWords(line: string): string[] | null {
	const words: string[] = [];
	let word = '';
	let inWord = false;
	for (let i = 0; i < line.length; i++) {
		const c = line[i]!;
		if (c === "'") {
			const end = line.indexOf("'", i + 1);
			if (end === -1) return null;
			word += line.slice(i + 1, end);
			inWord = true;
			i = end;
		} else if (c === '"') {
			inWord = true;
			let j = i + 1;
			for (; j < line.length && line[j] !== '"'; j++) {
				if (line[j] === '\\' && j + 1 < line.length && '\\"$`'.includes(line[j + 1]!)) j++;
				word += line[j];
			}
			if (j >= line.length) return null;
			i = j;
		} else if (c === '\\') {
			if (i + 1 < line.length) word += line[++i];
			inWord = true;
		} else if (/\s/.test(c)) {
			if (inWord) words.push(word);
			word = '';
			inWord = false;
		} else {
			word += c;
			inWord = true;
		}
	}
	if (inWord) words.push(word);
	return words;
}

/**
 * The command inside the client's guard and its deadline in seconds (0: none), or the script of a
 * plain `sh -c SCRIPT` (how every other command goes out, see core/shell.ts); as is otherwise.
 */
export function unwrapGuard(command: string): {command: string; deadlineS: number} {
	const words = splitShellWords(command);
	if (words?.length === 3 && words[0] === 'sh' && words[1] === '-c')
		return {command: words[2]!, deadlineS: 0};
	if (
		words &&
		words.length >= 5 &&
		words[0] === 'sh' &&
		words[1] === '-c' &&
		words[3] === 'gpujup-guard'
	) {
		const deadline = Number(words[5] ?? 0);
		return {
			command: words[4]!,
			deadlineS: Number.isFinite(deadline) && deadline > 0 ? deadline : 0,
		};
	}
	return {command, deadlineS: 0};
}

type Field<S> = {
	readonly header: string;
	/** The value as nvidia-smi prints it with `nounits`. */
	readonly value: (sample: S) => string;
	readonly unit?: string;
};

const na = '[N/A]';

/** `--query-gpu` fields the simulated nvidia-smi knows (a real one knows more; these suffice). */
const gpuFields: Readonly<Record<string, Field<GpuSample>>> = {
	index: {header: 'index', value: (s) => String(s.card.index)},
	uuid: {header: 'uuid', value: (s) => s.card.uuid},
	name: {header: 'name', value: (s) => s.card.name},
	'pci.bus_id': {header: 'pci.bus_id', value: (s) => s.card.busId},
	driver_version: {header: 'driver_version', value: () => simulatedDriverVersion},
	'mig.mode.current': {header: 'mig.mode.current', value: (s) => s.card.migMode},
	'utilization.gpu': {
		header: 'utilization.gpu [%]',
		value: (s) => String(s.utilizationGpu),
		unit: '%',
	},
	'utilization.memory': {
		header: 'utilization.memory [%]',
		value: (s) => String(s.utilizationMemory),
		unit: '%',
	},
	'memory.used': {header: 'memory.used [MiB]', value: (s) => String(s.memoryUsedMiB), unit: 'MiB'},
	'memory.total': {
		header: 'memory.total [MiB]',
		value: (s) => String(s.card.memoryTotalMiB),
		unit: 'MiB',
	},
	'memory.free': {
		header: 'memory.free [MiB]',
		value: (s) => String(s.card.memoryTotalMiB - s.memoryUsedMiB),
		unit: 'MiB',
	},
	'temperature.gpu': {header: 'temperature.gpu', value: (s) => String(s.temperatureC)},
	'power.draw': {header: 'power.draw [W]', value: (s) => s.powerW.toFixed(2), unit: 'W'},
	'power.limit': {
		header: 'power.limit [W]',
		value: (s) => s.card.powerLimitW.toFixed(2),
		unit: 'W',
	},
	'fan.speed': {
		header: 'fan.speed [%]',
		value: (s) => (s.fanPercent === null ? na : String(s.fanPercent)),
		unit: '%',
	},
	'clocks.sm': {header: 'clocks.current.sm [MHz]', value: (s) => String(s.smClockMHz), unit: 'MHz'},
	'clocks.current.sm': {
		header: 'clocks.current.sm [MHz]',
		value: (s) => String(s.smClockMHz),
		unit: 'MHz',
	},
	pstate: {header: 'pstate', value: (s) => s.pstate},
	count: {header: 'count', value: () => '2'},
};

const appFields: Readonly<Record<string, Field<ProcessSample>>> = {
	gpu_uuid: {header: 'gpu_uuid', value: (p) => p.gpuUuid},
	pid: {header: 'pid', value: (p) => String(p.process.pid)},
	process_name: {header: 'process_name', value: (p) => p.process.processName},
	used_memory: {
		header: 'used_gpu_memory [MiB]',
		value: (p) => String(p.usedMemoryMiB),
		unit: 'MiB',
	},
	used_gpu_memory: {
		header: 'used_gpu_memory [MiB]',
		value: (p) => String(p.usedMemoryMiB),
		unit: 'MiB',
	},
};

type CsvFormat = {readonly header: boolean; readonly units: boolean};

function formatRows<S>(
	samples: readonly S[],
	fields: ReadonlyArray<Field<S>>,
	format: CsvFormat,
): string {
	const lines: string[] = [];
	if (format.header) lines.push(fields.map((f) => f.header).join(', '));
	for (const sample of samples) {
		lines.push(
			fields
				.map((f) => {
					const value = f.value(sample);
					return format.units && f.unit && !value.startsWith('[') ? `${value} ${f.unit}` : value;
				})
				.join(', '),
		);
	}
	return lines.map((line) => `${line}\n`).join('');
}

type NvidiaSmiRequest =
	| {
			readonly kind: 'gpu' | 'apps';
			readonly fields: string[];
			readonly format: CsvFormat;
			readonly loopMs: number;
	  }
	| {readonly kind: 'list'}
	| {readonly kind: 'error'; readonly message: string; readonly code: number};

const invalidArguments = {
	kind: 'error',
	message: "Invalid combination of input arguments. Please run 'nvidia-smi -h' for help.\n",
	code: 2,
} as const;

/** Read nvidia-smi's arguments the way it does, for the options the simulation supports. */
export function parseNvidiaSmiArgs(args: readonly string[]): NvidiaSmiRequest {
	let query: {kind: 'gpu' | 'apps'; fields: string[]} | null = null;
	let format: CsvFormat | null = null;
	let loopMs = 0;
	let list = false;
	for (let i = 0; i < args.length; i++) {
		const arg = args[i]!;
		const [name, inline] =
			arg.startsWith('--') && arg.includes('=')
				? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)]
				: [arg, undefined];
		const value = () => inline ?? args[++i];
		switch (name) {
			case '--query-gpu':
			case '--query-compute-apps': {
				const text = value();
				if (!text) return invalidArguments;
				query = {
					kind: name === '--query-gpu' ? 'gpu' : 'apps',
					fields: text.split(',').map((f) => f.trim()),
				};
				break;
			}
			case '--format': {
				const parts = (value() ?? '').split(',').map((p) => p.trim());
				if (
					!parts.includes('csv') ||
					parts.some((p) => !['csv', 'noheader', 'nounits'].includes(p))
				)
					return invalidArguments;
				format = {header: !parts.includes('noheader'), units: !parts.includes('nounits')};
				break;
			}
			case '-lms':
			case '--loop-ms': {
				loopMs = Number(value());
				if (!Number.isInteger(loopMs) || loopMs <= 0) return invalidArguments;
				break;
			}
			case '-l':
			case '--loop': {
				loopMs = Number(value()) * 1000;
				if (!Number.isInteger(loopMs) || loopMs <= 0) return invalidArguments;
				break;
			}
			case '-L':
			case '--list-gpus': {
				list = true;
				break;
			}
			default: {
				return invalidArguments;
			}
		}
	}
	if (list && !query) return {kind: 'list'};
	if (!query) {
		return {
			kind: 'error',
			message:
				'gpujup demo: this simulated nvidia-smi answers --query-gpu, --query-compute-apps and -L only\n',
			code: 2,
		};
	}
	const known = query.kind === 'gpu' ? gpuFields : appFields;
	const unknown = query.fields.find((field) => !Object.hasOwn(known, field));
	if (unknown !== undefined) {
		return {
			kind: 'error',
			message: `Field "${unknown}" is not a valid field to query.\n\n`,
			code: 2,
		};
	}
	if (!format)
		return {kind: 'error', message: '--format must be specified with --query-*.\n', code: 2};
	return {kind: query.kind, fields: query.fields, format, loopMs};
}

/** nvidia-smi's CSV for one request at one moment (the header, when asked, is the caller's). */
export function nvidiaSmiCsv(
	machine: SimulatedMachine,
	elapsedMs: number,
	request: {
		readonly kind: 'gpu' | 'apps';
		readonly fields: readonly string[];
		readonly format: CsvFormat;
	},
): string {
	if (request.kind === 'gpu') {
		const fields = request.fields.map((f) => gpuFields[f]!);
		return formatRows(sampleGpus(machine, elapsedMs), fields, request.format);
	}
	const fields = request.fields.map((f) => appFields[f]!);
	return formatRows(sampleProcesses(machine, elapsedMs), fields, request.format);
}

/** The machine now: without the processes of kernels shut down or restarted meanwhile. */
const liveMachine = (context: GpuHostContext) =>
	context.kernels ? context.kernels.live(context.machine) : context.machine;

function runNvidiaSmi(
	args: readonly string[],
	io: ExecIo,
	context: GpuHostContext,
	deadlineS: number,
) {
	const request = parseNvidiaSmiArgs(args);
	if (request.kind === 'error') {
		// nvidia-smi prints its complaints on stdout.
		io.write(request.message);
		io.exit(request.code);
		return;
	}
	if (request.kind === 'list') {
		for (const card of context.machine.cards)
			io.write(`GPU ${card.index}: ${card.name} (UUID: ${card.uuid})\n`);
		io.exit(0);
		return;
	}
	const sample = (header: boolean) =>
		io.write(
			nvidiaSmiCsv(liveMachine(context), context.elapsedMs(), {
				...request,
				format: {...request.format, header},
			}),
		);
	sample(request.format.header);
	if (request.loopMs === 0) {
		io.exit(0);
		return;
	}
	// Like nvidia-smi -lms: a sample per interval, until killed (the guard: when the channel ends).
	const interval = setInterval(() => sample(false), Math.max(50, request.loopMs));
	let deadline: NodeJS.Timeout | undefined;
	const stop = () => {
		clearInterval(interval);
		clearTimeout(deadline);
		io.exit(terminatedStatus);
	};
	if (deadlineS > 0) deadline = setTimeout(stop, deadlineS * 1000);
	io.onClose(stop);
}

/** `ps -o pid=,user:32=,args= -p 1,2,3` over the simulated processes (procps' layout). */
function runPs(args: readonly string[], io: ExecIo, context: GpuHostContext) {
	let columns: string[] = [];
	let pids: number[] = [];
	for (let i = 0; i < args.length; i++) {
		const arg = args[i]!;
		if (arg === '-o' || arg === '-p') {
			const value = args[++i] ?? '';
			if (arg === '-o') columns.push(...value.split(','));
			else pids = value.split(',').map(Number);
		} else {
			io.writeError(`error: unsupported option (BSD syntax)\n`);
			io.exit(1);
			return;
		}
	}
	columns = columns.map((c) => c.replace(/=.*$/, '').replace(/:\d+$/, ''));
	if (columns.length === 0) columns = ['pid', 'tty', 'time', 'cmd'];
	const known = new Set(['pid', 'user', 'args', 'cmd', 'command', 'comm']);
	const bad = columns.find((c) => !known.has(c));
	if (bad) {
		io.writeError(`error: unknown user-defined format specifier "${bad}"\n`);
		io.exit(1);
		return;
	}
	const found = liveMachine(context).processes.filter((p) => pids.includes(p.pid));
	for (const p of found) {
		const cells = columns.map((c) => {
			switch (c) {
				case 'pid': {
					return String(p.pid).padStart(7);
				}
				case 'user': {
					return context.user.padEnd(8);
				}
				case 'comm': {
					return path.basename(p.args.split(' ')[0]!);
				}
				default: {
					return p.args;
				}
			}
		});
		io.write(`${cells.join(' ')}\n`);
	}
	// procps exits 1 when no process matched.
	io.exit(found.length > 0 ? 0 : 1);
}

/** The LISTEN rows of this machine's /proc/net/tcp{,6}, as the listener check's grep prints them. */
function localListenRows(): string {
	return ['/proc/net/tcp', '/proc/net/tcp6']
		.flatMap((file) => {
			try {
				return readFileSync(file, 'utf8').split('\n');
			} catch {
				return [];
			}
		})
		.filter((line) => line.includes(' 0A '))
		.map((line) => `${line}\n`)
		.join('');
}

/** Answer one exec request on the demo's GPU host. */
export function handleGpuHostExec(rawCommand: string, io: ExecIo, context: GpuHostContext): void {
	const {command, deadlineS} = unwrapGuard(rawCommand);
	if (command === procDumpCommand && context.kernels) {
		io.write(context.kernels.procDump());
		io.exit(0);
		return;
	}
	if (command === runtimeDiscoveryScript) {
		io.write(context.runtimeFiles());
		io.exit(0);
		return;
	}
	if (command === listenerCheckCommand) {
		// The demo's Jupyter listens on this machine, as this user: its sockets are the real ones.
		io.write(`uid ${process.getuid?.() ?? 0}\n${localListenRows()}`);
		io.exit(0);
		return;
	}
	const words = splitShellWords(command);
	if (!words) {
		io.writeError('sh: 1: Syntax error: Unterminated quoted string\n');
		io.exit(2);
		return;
	}
	const [program, ...args] = words;
	switch (program === undefined ? '' : path.basename(program)) {
		case '':
		case 'true': {
			io.exit(0);
			return;
		}
		case 'nvidia-smi': {
			runNvidiaSmi(args, io, context, deadlineS);
			return;
		}
		case 'ps': {
			runPs(args, io, context);
			return;
		}
		default: {
			io.writeError(
				`sh: 1: ${program}: not found\n` +
					'gpujup demo: this simulated GPU host answers only nvidia-smi, ps and the Jupyter runtime-file lookup\n',
			);
			io.exit(127);
		}
	}
}
