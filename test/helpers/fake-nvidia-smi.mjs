#!/usr/bin/env node
/**
 * A stand-in for nvidia-smi that replays the real captures (../shared/nvidia-smi-samples, see
 * SOURCES.md there) or, where those are absent, the project's own fixtures (test/fixtures/
 * nvidia-smi, see the README there). Plain .mjs so it runs without a build, on the test machine or, through the
 * `fake-nvidia-smi-bin/nvidia-smi` wrapper, as the GPU host's nvidia-smi in an OpenSSH lab.
 *
 * It answers `--query-gpu=…` and `--query-compute-apps=…` by picking the requested columns by
 * header name (aliases from the capture's own `--help-query-*` section) out of the capture's
 * `--format=csv` section, strips units for `nounits`, loops for `-lms`/`-l`, and fails an unknown
 * field as nvidia-smi does (`Field "x" is not a valid field to query.` on stdout, exit 2). Several
 * captures make a multi-GPU host: GPU i gets index i and, when the capture's uuid is masked to
 * zeros, a uuid whose last group is i.
 *
 * Configured by environment (the wrapper reads them from a file beside it, since sshd does not
 * pass the test's environment on):
 *   FAKE_NVIDIA_SMI_CAPTURES  comma-separated paths: `*_capture.txt`, a fixture GPU's folder,
 *                             or a `--format=csv` file with a header (one state)
 *   FAKE_NVIDIA_SMI_STATE     idle | load | cycle (default: cycle, idle first)
 *   FAKE_NVIDIA_SMI_MODE      replay (default) | hang | hang-after:N | no-driver | mismatch
 *   FAKE_NVIDIA_SMI_INVALID   comma-separated fields to reject although the capture has them
 *   FAKE_NVIDIA_SMI_PID_MAP   `capturedPid=livePid,…`, to point a captured process at a live one
 *   FAKE_NVIDIA_SMI_PID_FILE  a file with more `capturedPid=livePid` pairs, read again for every
 *                             sample (a test writes the pids of processes it starts later)
 *   FAKE_NVIDIA_SMI_LOG       a file that gets one line per invocation (its arguments)
 * The first argument may be `--fake-id=…`, a marker for `pgrep -f`; it is otherwise ignored.
 */
import {appendFileSync, readFileSync, statSync} from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import {setInterval, setTimeout} from 'node:timers';
import {fileURLToPath} from 'node:url';

const maskedUuid = /^GPU-00000000-0000-0000-0000-000000000000$/;

/**
 * Split a capture into its sections: `{state, name, command, body}` for each banner
 * (`####…` / `# <state> :: <name>` / `# $ <command>` / `####…`).
 */
export function captureSections(text) {
	const lines = text.split('\n');
	const sections = [];
	let current = null;
	for (let i = 0; i < lines.length; i++) {
		const line = lines[i];
		const head = /^# (\w+) :: (.*)$/.exec(line);
		if (head && lines[i - 1]?.startsWith('####')) {
			let j = i + 1;
			let command = null;
			if (lines[j]?.startsWith('# $ ')) {
				command = lines[j].slice(4);
				j++;
			}
			// The closing banner line.
			if (lines[j]?.startsWith('####')) j++;
			current = {state: head[1], name: head[2], command, body: []};
			sections.push(current);
			i = j - 1;
			continue;
		}
		if (line.startsWith('####')) {
			current = null;
			continue;
		}
		current?.body.push(line);
	}
	for (const section of sections) {
		while (section.body.length > 0 && section.body.at(-1).trim() === '') section.body.pop();
	}
	return sections;
}

/** `fan.speed [%]` → {name: 'fan.speed', unit: '%'}. */
function headerCell(cell) {
	const match = /^(.*?) \[([^\]]+)\]$/.exec(cell.trim());
	return match ? {name: match[1], unit: match[2]} : {name: cell.trim(), unit: null};
}

/** A CSV section (header + rows, `, `-separated, as nvidia-smi writes it) as header + row arrays. */
function parseCsv(lines) {
	const nonEmpty = lines.filter((line) => line.trim() !== '');
	if (nonEmpty.length === 0) return {header: [], rows: []};
	const header = nonEmpty[0].replace(/\r$/, '').split(', ').map(headerCell);
	const rows = nonEmpty.slice(1).map((line) => {
		const cells = line.replace(/\r$/, '').split(', ');
		if (cells.length !== header.length)
			throw new Error(`fake-nvidia-smi: ${cells.length} cells for ${header.length} columns`);
		return cells;
	});
	return {header, rows};
}

/** `"name" or "gpu_name"` lines of a --help-query-* section → field → every alias of it. */
function aliasesFrom(lines) {
	const aliases = new Map();
	for (const line of lines) {
		if (!line.startsWith('"')) continue;
		const names = [...line.matchAll(/"([^"]+)"/g)].map((m) => m[1]);
		for (const name of names) aliases.set(name, names);
	}
	return aliases;
}

/**
 * One GPU of the project's fixtures: a folder with `query-gpu.<state>.csv` and
 * `query-compute-apps.<state>.csv` (`--format=csv`), the set's `help-query-*.txt` beside it.
 */
function readGpuFolder(dir) {
	const csv = (name) => parseCsv(readFileSync(path.join(dir, name), 'utf8').split('\n'));
	const help = (name) => readFileSync(path.join(dir, '..', name), 'utf8').trimEnd();
	const helpGpu = help('help-query-gpu.txt');
	const helpApps = help('help-query-compute-apps.txt');
	return {
		gpu: {idle: csv('query-gpu.idle.csv'), load: csv('query-gpu.load.csv')},
		apps: {idle: csv('query-compute-apps.idle.csv'), load: csv('query-compute-apps.load.csv')},
		gpuAliases: aliasesFrom(helpGpu.split('\n')),
		appAliases: aliasesFrom(helpApps.split('\n')),
		help: {gpu: helpGpu, apps: helpApps},
	};
}

/**
 * Read one source: a `*_capture.txt`, a fixture GPU's folder, or a `--format=csv` file with a
 * header (one state only). Returns `{gpu: {idle, load}, apps: {idle, load}, gpuAliases,
 * appAliases, help}` where each state is `{header, rows}`.
 */
export function readSource(file) {
	if (statSync(file).isDirectory()) return readGpuFolder(file);
	const text = readFileSync(file, 'utf8');
	if (!file.endsWith('_capture.txt')) {
		const gpu = parseCsv(text.split('\n'));
		const none = {header: [], rows: []};
		return {
			gpu: {idle: gpu, load: gpu},
			apps: {idle: none, load: none},
			gpuAliases: new Map(),
			appAliases: new Map(),
			help: {},
		};
	}
	const sections = captureSections(text);
	const find = (state, prefix) => {
		const section = sections.find((s) => s.state === state && s.name.startsWith(prefix));
		if (!section) throw new Error(`fake-nvidia-smi: ${file} has no "${state} :: ${prefix}"`);
		return section;
	};
	const helpGpu = find('capabilities', 'help-query-gpu');
	const helpApps = find('capabilities', 'help-query-compute-apps');
	return {
		gpu: {
			idle: parseCsv(find('idle', 'query-gpu').body),
			load: parseCsv(find('load', 'query-gpu').body),
		},
		apps: {
			idle: parseCsv(find('idle', 'query-compute-apps').body),
			load: parseCsv(find('load', 'query-compute-apps').body),
		},
		gpuAliases: aliasesFrom(helpGpu.body),
		appAliases: aliasesFrom(helpApps.body),
		help: {gpu: helpGpu.body.join('\n'), apps: helpApps.body.join('\n')},
	};
}

/** The column of `header` that answers `field` (directly or through an alias), or -1. */
export function columnOf(header, aliases, field) {
	const names = aliases.get(field) ?? [field];
	return header.findIndex((cell) => names.includes(cell.name));
}

/** The uuid GPU `position` of a combined host gets: masked uuids are made distinct. */
export function hostUuid(uuid, position) {
	if (position === 0 || !maskedUuid.test(uuid)) return uuid;
	return `GPU-00000000-0000-0000-0000-${String(position).padStart(12, '0')}`;
}

/**
 * The host a list of sources makes, for one state: `{gpus: [{header, row, aliases}], apps: […]}`
 * with index and uuid rewritten per position and captured pids mapped.
 */
export function hostRows(sources, state, pidMap = new Map()) {
	const gpus = [];
	const apps = [];
	sources.forEach((source, position) => {
		const {header, rows} = source.gpu[state];
		const uuidCol = header.findIndex((c) => c.name === 'uuid');
		const indexCol = header.findIndex((c) => c.name === 'index');
		for (const row of rows) {
			const copy = [...row];
			if (uuidCol !== -1) copy[uuidCol] = hostUuid(copy[uuidCol], position);
			if (indexCol !== -1) copy[indexCol] = String(position);
			gpus.push({header, row: copy, aliases: source.gpuAliases});
		}
		const appTable = source.apps[state];
		const appUuidCol = appTable.header.findIndex((c) => c.name === 'gpu_uuid');
		const pidCol = appTable.header.findIndex((c) => c.name === 'pid');
		for (const row of appTable.rows) {
			const copy = [...row];
			if (appUuidCol !== -1) copy[appUuidCol] = hostUuid(copy[appUuidCol], position);
			if (pidCol !== -1 && pidMap.has(copy[pidCol])) copy[pidCol] = pidMap.get(copy[pidCol]);
			apps.push({header: appTable.header, row: copy, aliases: source.appAliases});
		}
	});
	return {gpus, apps};
}

/** One cell as nvidia-smi prints it: with `nounits`, without the header's unit. */
function cellValue(entry, column, nounits) {
	const value = entry.row[column];
	const unit = entry.header[column].unit;
	if (nounits && unit && value.endsWith(` ${unit}`)) return value.slice(0, -unit.length - 1);
	return value;
}

function parseArgs(argv) {
	const options = {query: null, fields: [], noheader: false, nounits: false, loopMs: null};
	for (let i = 0; i < argv.length; i++) {
		const arg = argv[i];
		const value = () => {
			const eq = arg.indexOf('=');
			return eq === -1 ? argv[++i] : arg.slice(eq + 1);
		};
		if (arg.startsWith('--fake-id')) continue;
		if (arg.startsWith('--query-gpu') || arg.startsWith('--query-compute-apps')) {
			options.query = arg.startsWith('--query-gpu') ? 'gpu' : 'apps';
			options.fields = value()
				.split(',')
				.map((f) => f.trim())
				.filter(Boolean);
		} else if (arg.startsWith('--format')) {
			const parts = value().split(',');
			options.noheader = parts.includes('noheader');
			options.nounits = parts.includes('nounits');
		} else if (arg === '-lms' || arg.startsWith('--loop-ms')) {
			options.loopMs = Number(value());
		} else if (arg === '-l' || arg.startsWith('--loop')) {
			options.loopMs = Number(value()) * 1000;
		} else {
			options.other = arg;
		}
	}
	return options;
}

function hangForever() {
	// A stuck driver: no answer, and the polite signals do nothing (only SIGKILL works).
	for (const signal of ['SIGTERM', 'SIGHUP', 'SIGINT', 'SIGPIPE']) process.on(signal, () => {});
	setInterval(() => {}, 1 << 30);
}

function main() {
	const env = process.env;
	const argv = process.argv.slice(2);
	if (env.FAKE_NVIDIA_SMI_LOG) appendFileSync(env.FAKE_NVIDIA_SMI_LOG, `${argv.join(' ')}\n`);
	process.stdout.on('error', () => process.exit(0));
	const mode = env.FAKE_NVIDIA_SMI_MODE ?? 'replay';
	if (mode === 'hang') return hangForever();
	if (mode === 'no-driver') {
		process.stdout.write(
			"NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.\n\n",
		);
		process.exit(9);
	}
	if (mode === 'mismatch') {
		process.stdout.write(
			'Failed to initialize NVML: Driver/library version mismatch\nNVML library version: 590.48\n',
		);
		process.exit(18);
	}
	const files = (env.FAKE_NVIDIA_SMI_CAPTURES ?? '').split(',').filter(Boolean);
	if (files.length === 0) {
		process.stderr.write('fake-nvidia-smi: FAKE_NVIDIA_SMI_CAPTURES is empty\n');
		process.exit(99);
	}
	const sources = files.map(readSource);
	const options = parseArgs(argv);
	if (options.other === '--help-query-gpu' || options.other === '--help-query-compute-apps') {
		const help = sources[0].help[options.other === '--help-query-gpu' ? 'gpu' : 'apps'];
		process.stdout.write(`${help ?? ''}\n`);
		process.exit(0);
	}
	if (!options.query) {
		process.stderr.write(`fake-nvidia-smi: unsupported arguments: ${argv.join(' ')}\n`);
		process.exit(99);
	}
	const invalid = new Set((env.FAKE_NVIDIA_SMI_INVALID ?? '').split(',').filter(Boolean));
	const pairs = (text) =>
		text
			.split(/[,\s]+/)
			.filter((pair) => /^\d+=\d+$/.test(pair))
			.map((pair) => pair.split('='));
	const staticPids = pairs(env.FAKE_NVIDIA_SMI_PID_MAP ?? '');
	const pidMapNow = () => {
		let fromFile = [];
		try {
			if (env.FAKE_NVIDIA_SMI_PID_FILE)
				fromFile = pairs(readFileSync(env.FAKE_NVIDIA_SMI_PID_FILE, 'utf8'));
		} catch {
			// Not written yet.
		}
		return new Map([...staticPids, ...fromFile]);
	};
	// nvidia-smi checks the field list before anything else: the first bad one fails the query.
	for (const field of options.fields) {
		const tables =
			options.query === 'gpu'
				? sources.map((s) => ({header: s.gpu.idle.header, aliases: s.gpuAliases}))
				: sources.map((s) => ({header: s.apps.idle.header, aliases: s.appAliases}));
		const known = tables.every(
			(t) =>
				columnOf(t.header, t.aliases, field) !== -1 ||
				// A capture with no process rows still has a header for them.
				(t.header.length === 0 && options.query === 'apps'),
		);
		if (invalid.has(field) || !known) {
			process.stdout.write(`Field "${field}" is not a valid field to query.\n\n`);
			process.exit(2);
		}
	}

	const states =
		env.FAKE_NVIDIA_SMI_STATE === 'idle' || env.FAKE_NVIDIA_SMI_STATE === 'load'
			? [env.FAKE_NVIDIA_SMI_STATE]
			: ['idle', 'load'];
	const hangAfter = mode.startsWith('hang-after:')
		? Number(mode.slice('hang-after:'.length))
		: null;
	let iteration = 0;
	let headerDone = false;
	const printOnce = () => {
		if (hangAfter !== null && iteration >= hangAfter) {
			hangForever();
			return false;
		}
		const state = states[iteration % states.length];
		iteration++;
		const host = hostRows(sources, state, pidMapNow());
		const entries = options.query === 'gpu' ? host.gpus : host.apps;
		let out = '';
		if (!options.noheader && !headerDone) {
			out += `${options.fields.join(', ')}\n`;
			headerDone = true;
		}
		for (const entry of entries) {
			const cells = options.fields.map((field) => {
				const column = columnOf(entry.header, entry.aliases, field);
				return cellValue(entry, column, options.nounits);
			});
			out += `${cells.join(', ')}\n`;
		}
		process.stdout.write(out);
		return true;
	};
	if (!printOnce()) return;
	if (options.loopMs === null) return;
	const tick = () => {
		if (printOnce()) setTimeout(tick, options.loopMs);
	};
	setTimeout(tick, options.loopMs);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
