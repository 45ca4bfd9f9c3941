/**
 * nvidia-smi's query output, parsed. Pure: the GPU stream service (services/gpu-stream.ts) feeds
 * it the text of `--query-gpu` / `--query-compute-apps` with `--format=csv,noheader,nounits`, and
 * whatever nvidia-smi printed instead when it failed (it prints its errors on stdout).
 */
import type {GpuErrorKind, GpuInfo, GpuProcess} from './types.js';

/**
 * The `--query-gpu` fields gpujup asks for, in this order. `name` goes last: it is the only free
 * text, so a name with `, ` in it still parses (the extra cells are joined back). Every field here
 * exists on drivers back to 418 except `mig.mode.current`; the stream drops any field a driver
 * rejects and goes on.
 */
export const gpuQueryFields = [
	'index',
	'uuid',
	'pci.bus_id',
	'driver_version',
	'mig.mode.current',
	'utilization.gpu',
	'memory.used',
	'memory.total',
	'temperature.gpu',
	'power.draw',
	'power.limit',
	'fan.speed',
	'name',
] as const;

/** The `--query-compute-apps` fields, free text (`process_name`) last for the same reason. */
export const computeAppsQueryFields = ['gpu_uuid', 'pid', 'used_memory', 'process_name'] as const;

/** Fields the parse cannot do without: without a uuid there is nothing to key a GPU by. */
export const requiredGpuFields: readonly string[] = ['uuid'];
export const requiredComputeAppsFields: readonly string[] = ['gpu_uuid', 'pid'];

/** nvidia-smi's separator between CSV cells. */
const separator = ', ';

/**
 * Every token nvidia-smi prints for "no value": `[N/A]` and bare `N/A`, `[Not Supported]` (old
 * GeForce drivers), `[Requested functionality has been deprecated]`, `[Function Not Found]`
 * (Windows 610), `[Insufficient Permissions]`, `[Unknown Error]`, `[GPU requires reset]`. Any
 * bracketed token is treated as one, so a new driver's wording never reads as a number.
 */
export function isUnavailable(value: string): boolean {
	const v = value.trim();
	return v === '' || v === 'N/A' || v === '-' || /^\[[^\]]*\]$/.test(v);
}

/** A number, or null for an unavailable token or anything that is not one. Never 0 for unknown. */
export function parseNumber(value: string | undefined): number | null {
	if (value === undefined || isUnavailable(value)) return null;
	// `nounits` should strip units; tolerate them anyway (`71.15 W`, `38 %`, `81559 MiB`).
	const match = /^\s*(-?\d+(?:\.\d+)?)(?:\s*(?:%|W|MiB|C|MHz))?\s*$/.exec(value);
	if (!match) return null;
	const n = Number(match[1]);
	return Number.isFinite(n) ? n : null;
}

function parseText(value: string | undefined): string | null {
	if (value === undefined || isUnavailable(value)) return null;
	return value.trim();
}

/** Split one CSV row into exactly `count` cells: surplus cells are joined back into the last one. */
function splitRow(line: string, count: number): string[] | null {
	const cells = line.split(separator);
	if (count === 0 || cells.length < count) return null;
	if (cells.length > count) {
		const last = cells.slice(count - 1).join(separator);
		cells.length = count - 1;
		cells.push(last);
	}
	return cells;
}

function cellsByField(line: string, fields: readonly string[]): Map<string, string> | null {
	const cells = splitRow(line.replace(/\r$/, ''), fields.length);
	if (!cells) return null;
	const map = new Map<string, string>();
	for (const [i, field] of fields.entries()) map.set(field, cells[i]!.trim());
	return map;
}

/** One `--query-gpu` row with the driver version it reported, or null when the line is not a row. */
export type GpuRow = {readonly gpu: GpuInfo; readonly driverVersion: string | null};

/**
 * Parse one `--query-gpu … --format=csv,noheader,nounits` line, whose cells are `fields` in order.
 * `fallbackIndex` is used when the driver gave no `index`. Null when the line is not a row (an
 * error message, a blank line) or has no uuid.
 */
export function parseGpuRow(
	line: string,
	fields: readonly string[],
	fallbackIndex = 0,
): GpuRow | null {
	const cells = cellsByField(line, fields);
	if (!cells) return null;
	const uuid = parseText(cells.get('uuid'));
	if (!uuid || !/^(GPU|MIG)-/.test(uuid)) return null;
	const index = parseNumber(cells.get('index'));
	const mig = parseText(cells.get('mig.mode.current'));
	const gpu: GpuInfo = {
		index: index ?? fallbackIndex,
		uuid,
		name: parseText(cells.get('name')) ?? `GPU ${index ?? fallbackIndex}`,
		busId: parseText(cells.get('pci.bus_id')),
		mig: mig?.toLowerCase() === 'enabled',
		utilizationGpu: parseNumber(cells.get('utilization.gpu')),
		memoryUsedMiB: parseNumber(cells.get('memory.used')),
		memoryTotalMiB: parseNumber(cells.get('memory.total')),
		temperatureC: parseNumber(cells.get('temperature.gpu')),
		powerW: parseNumber(cells.get('power.draw')),
		powerLimitW: parseNumber(cells.get('power.limit')),
		fanPercent: parseNumber(cells.get('fan.speed')),
	};
	return {gpu, driverVersion: parseText(cells.get('driver_version'))};
}

/** What nvidia-smi said instead of data, classified, with what the user can do about it. */
export type NvidiaSmiError = {
	readonly kind: Extract<GpuErrorKind, 'no-driver' | 'failed'>;
	readonly message: string;
	readonly fix: string;
};

/** Lines that are neither blank nor a data row: what to show when nvidia-smi fails. */
function messageOf(text: string): string {
	const lines = text
		.split(/\r?\n/)
		.map((line) => line.trim())
		.filter((line) => line.length > 0);
	return lines.slice(0, 4).join(' ');
}

const errorRules: ReadonlyArray<{
	readonly test: RegExp;
	readonly kind: NvidiaSmiError['kind'];
	readonly fix: string;
}> = [
	{
		test: /driver\/library version mismatch/i,
		kind: 'no-driver',
		fix: 'the NVIDIA kernel module is older than its libraries (a driver update without a reboot): reboot the GPU host, or reload the nvidia modules',
	},
	{
		test: /couldn't communicate with the NVIDIA driver/i,
		kind: 'no-driver',
		fix: 'install or load the NVIDIA driver (check `lsmod | grep nvidia` and `dmesg`); after a kernel update, rebuild it (dkms) and reboot',
	},
	{
		test: /couldn't find libnvidia-ml|libnvidia-ml\.so.*(?:not found|cannot open)/i,
		kind: 'no-driver',
		fix: 'the NVIDIA driver libraries are missing: install the driver (in a container, run it with the NVIDIA container toolkit, `--gpus all`)',
	},
	{
		test: /Failed to initialize NVML: Insufficient Permissions/i,
		kind: 'no-driver',
		fix: 'this user may not open /dev/nvidia*: check its group and the device permissions',
	},
	{
		test: /Failed to initialize NVML/i,
		kind: 'no-driver',
		fix: 'NVML could not start: check `dmesg` for NVIDIA errors; in a container, restart it (the driver changed under it); otherwise reboot the GPU host',
	},
	{
		test: /No devices were found/i,
		kind: 'no-driver',
		fix: 'no NVIDIA GPU is visible: check `lspci | grep -i nvidia`, CUDA_VISIBLE_DEVICES, or the container’s `--gpus` flag',
	},
	{
		test: /(?:nvidia-smi|^sh: .*): (?:\d+: )?(?:.*: )?(?:command )?not found|No such file or directory/im,
		kind: 'no-driver',
		fix: 'nvidia-smi is not on the GPU host’s PATH for a non-login shell: install the driver, or pass --nvidia-smi with its full path (WSL: /usr/lib/wsl/lib/nvidia-smi)',
	},
	{
		test: /GPU is lost|fallen off the bus|Unable to determine the device handle/i,
		kind: 'failed',
		fix: 'a GPU stopped answering: look for Xid errors in `dmesg`; it usually needs a reboot',
	},
	{
		test: /not a valid field to query/i,
		kind: 'failed',
		fix: 'this driver lacks a field gpujup asks for; update gpujup or the driver',
	},
];

/**
 * Recognise nvidia-smi's own error output (it prints errors on stdout), and the shell's when there
 * is no nvidia-smi at all. Null when the text is not one of the known failures.
 */
export function recognizeNvidiaSmiError(text: string): NvidiaSmiError | null {
	for (const rule of errorRules) {
		if (rule.test.test(text)) return {kind: rule.kind, message: messageOf(text), fix: rule.fix};
	}
	return null;
}

/**
 * The likely fix for a GPU error as the store holds it (kind + nvidia-smi's message), for the
 * dashboard. Falls back to advice by kind.
 */
export function gpuErrorFix(error: {
	readonly kind: GpuErrorKind;
	readonly message: string;
}): string {
	const known = recognizeNvidiaSmiError(error.message);
	if (known) return known.fix;
	switch (error.kind) {
		case 'timeout': {
			return 'nvidia-smi hangs, often a stuck driver: check `dmesg` for Xid errors on the GPU host; gpujup keeps retrying';
		}
		case 'no-driver': {
			return 'install or load the NVIDIA driver on the GPU host';
		}
		case 'failed': {
			return 'run nvidia-smi on the GPU host to see why; gpujup keeps retrying';
		}
	}
}

/** The field nvidia-smi names in `Field "x" is not a valid field to query.`, else null. */
export function invalidFieldIn(text: string): string | null {
	const match = /Field "([^"]+)" is not a valid field to query/i.exec(text);
	return match ? match[1]! : null;
}

/** Result of {@link parseGpuCsv}. */
export type GpuCsvResult =
	| {readonly gpus: GpuInfo[]; readonly driverVersion: string | null}
	| {readonly error: {readonly kind: NvidiaSmiError['kind']; readonly message: string}};

/**
 * Parse a whole `--query-gpu … --format=csv,noheader,nounits` answer: one row per GPU, keyed by
 * uuid (the last row wins), sorted by index. Text that is not rows is nvidia-smi's error message,
 * recognised when it can be.
 */
export function parseGpuCsv(text: string, fields: readonly string[]): GpuCsvResult {
	const byUuid = new Map<string, GpuInfo>();
	let driverVersion: string | null = null;
	const other: string[] = [];
	let position = 0;
	for (const line of text.split(/\r?\n/)) {
		if (line.trim() === '') continue;
		const row = parseGpuRow(line, fields, position);
		if (row) {
			byUuid.set(row.gpu.uuid, row.gpu);
			driverVersion ??= row.driverVersion;
			position++;
		} else {
			other.push(line);
		}
	}
	if (other.length > 0 && byUuid.size === 0) {
		const otherText = other.join('\n');
		const known = recognizeNvidiaSmiError(otherText);
		return {
			error: known
				? {kind: known.kind, message: known.message}
				: {kind: 'failed', message: messageOf(otherText)},
		};
	}
	return {gpus: [...byUuid.values()].sort((a, b) => a.index - b.index), driverVersion};
}

/**
 * Parse one `--query-compute-apps … --format=csv,noheader,nounits` line. The user and the full
 * command line come later from `ps`; until then `command` is nvidia-smi's process name. A row
 * whose pid is unavailable (`[Not Supported]` on old GeForce drivers) is null: there is no process
 * to name.
 */
export function parseComputeAppRow(line: string, fields: readonly string[]): GpuProcess | null {
	const cells = cellsByField(line, fields);
	if (!cells) return null;
	const gpuUuid = parseText(cells.get('gpu_uuid'));
	const pid = parseNumber(cells.get('pid'));
	if (!gpuUuid || !/^(GPU|MIG)-/.test(gpuUuid) || pid === null || !Number.isInteger(pid))
		return null;
	return {
		gpuUuid,
		pid,
		user: null,
		command: parseText(cells.get('process_name')) ?? '',
		usedMemoryMiB: parseNumber(cells.get('used_memory') ?? cells.get('used_gpu_memory')),
	};
}

/** Parse a whole `--query-compute-apps` answer; lines that are not rows are skipped. */
export function parseComputeAppsCsv(text: string, fields: readonly string[]): GpuProcess[] {
	const processes: GpuProcess[] = [];
	for (const line of text.split(/\r?\n/)) {
		if (line.trim() === '') continue;
		const row = parseComputeAppRow(line, fields);
		if (row) processes.push(row);
	}
	return processes;
}

/** Processes joined to GPUs by uuid: only those on a GPU that is in `gpus` (a stale sample may name
 * a GPU that is gone), ordered by GPU index, then by GPU memory, largest first. */
export function joinProcesses(
	gpus: readonly GpuInfo[],
	processes: readonly GpuProcess[],
): GpuProcess[] {
	const indexOf = new Map(gpus.map((gpu) => [gpu.uuid, gpu.index]));
	return processes
		.filter((p) => indexOf.has(p.gpuUuid))
		.sort(
			(a, b) =>
				indexOf.get(a.gpuUuid)! - indexOf.get(b.gpuUuid)! ||
				(b.usedMemoryMiB ?? -1) - (a.usedMemoryMiB ?? -1) ||
				a.pid - b.pid,
		);
}

/** Who runs a pid and with what command line, from `ps -o pid=,user:32=,args= -p …`. */
export type PsEntry = {readonly user: string; readonly command: string};

/** The `ps` command gpujup runs for the pids nvidia-smi reports (procps: `user:32` keeps names). */
export function psCommand(pids: readonly number[]): string {
	return `ps -o pid=,user:32=,args= -p ${pids.join(',')}`;
}

/** Parse `ps -o pid=,user=,args=` output into pid → {user, command}. */
export function parsePsOutput(text: string): Map<number, PsEntry> {
	const entries = new Map<number, PsEntry>();
	for (const line of text.split(/\r?\n/)) {
		const match = /^\s*(\d+)\s+(\S+)\s+(.*?)\s*$/.exec(line);
		if (match) entries.set(Number(match[1]), {user: match[2]!, command: match[3]!});
	}
	return entries;
}

/** The full `--query-gpu` streaming command line for `nvidiaSmi` (a command, maybe with a path). */
export function gpuQueryCommand(
	nvidiaSmi: string,
	fields: readonly string[],
	intervalMs: number,
): string {
	return `${nvidiaSmi} --query-gpu=${fields.join(',')} --format=csv,noheader,nounits -lms ${Math.round(intervalMs)}`;
}

/** The full `--query-compute-apps` streaming command line. */
export function computeAppsQueryCommand(
	nvidiaSmi: string,
	fields: readonly string[],
	intervalMs: number,
): string {
	return `${nvidiaSmi} --query-compute-apps=${fields.join(',')} --format=csv,noheader,nounits -lms ${Math.round(intervalMs)}`;
}

/**
 * A process with what `ps` said about its pid, when that is the same process: nvidia-smi reports
 * pids of the GPU host's namespace, and inside a container `ps` may know an unrelated process by
 * that number. The ps command line must mention the program nvidia-smi named.
 */
export function mergePsEntry(process: GpuProcess, entry: PsEntry | null | undefined): GpuProcess {
	if (!entry) return process;
	const program = process.command.split(/[\\/]/).pop()?.trim() ?? '';
	if (program && !entry.command.includes(program)) return process;
	return {...process, user: entry.user, command: entry.command};
}
