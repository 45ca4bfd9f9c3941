import {readFileSync} from 'node:fs';
import {describe, expect, test} from 'vitest';
import {
	computeAppsQueryFields,
	gpuErrorFix,
	gpuQueryFields,
	invalidFieldIn,
	isUnavailable,
	joinProcesses,
	parseComputeAppsCsv,
	parseGpuCsv,
	parseNumber,
	parsePsOutput,
	recognizeNvidiaSmiError,
} from '../../source/core/nvidia-smi.js';
import type {GpuInfo} from '../../source/core/types.js';
import {columnOf, hostRows, readSource, type HostEntry} from '../helpers/fake-nvidia-smi.mjs';
import {expectedGpu, expectedProcess, raw} from '../helpers/fake-nvidia-smi-expect.js';
import {samplePath, samples} from '../helpers/nvidia-smi-samples.js';

// The real captures beside the repository (../shared, never in it), else the project's fixtures.
const captureFiles = samples.captures;
const sample = (name: string) => readFileSync(samplePath(name), 'utf8');

/** What nvidia-smi prints with `noheader,nounits` for `fields`, from the capture's `--format=csv`. */
function asNoheaderNounits(entries: readonly HostEntry[], fields: readonly string[]): string {
	return entries
		.map((entry) =>
			fields
				.map((field) => {
					const column = columnOf(entry.header, entry.aliases, field);
					const value = entry.row[column]!;
					const unit = entry.header[column]!.unit;
					return unit && value.endsWith(` ${unit}`) ? value.slice(0, -unit.length - 1) : value;
				})
				.join(', '),
		)
		.join('\n');
}

describe(`parseGpuCsv on the samples (${samples.kind})`, () => {
	for (const file of captureFiles) {
		for (const state of ['idle', 'load'] as const) {
			test(`${file} (${state}): every field equals the capture's`, () => {
				const host = hostRows([readSource(samplePath(file))], state);
				expect(host.gpus).toHaveLength(1);
				const result = parseGpuCsv(asNoheaderNounits(host.gpus, gpuQueryFields), gpuQueryFields);
				expect(result).toEqual({
					gpus: [expectedGpu(host.gpus[0]!, 0)],
					driverVersion: raw(host.gpus[0]!, 'driver_version'),
				});
			});
		}
	}

	test('the captures hold what the dashboard must get right', () => {
		const load = (file: string) => {
			const host = hostRows([readSource(samplePath(file))], 'load');
			const result = parseGpuCsv(asNoheaderNounits(host.gpus, gpuQueryFields), gpuQueryFields);
			if ('error' in result) throw new Error(result.error.message);
			return result.gpus[0]!;
		};
		// Per set, the facts of each capture under load (its order: data-centre, MIG, desktop, Windows).
		const facts = {
			shared: [
				{
					mig: false,
					utilizationGpu: 100,
					memoryUsedMiB: 19_818,
					memoryTotalMiB: 81_559,
					powerW: 631.95,
					powerLimitW: 700,
					fanPercent: null,
					temperatureC: 59,
				},
				// MIG: utilization is [N/A], which must stay unknown, not read as 0 %.
				{mig: true, utilizationGpu: null},
				{name: 'NVIDIA GeForce RTX 4080 SUPER', fanPercent: 0},
				{busId: '00000000:0C:00.0', fanPercent: 38},
			],
			fixtures: [
				{
					mig: false,
					utilizationGpu: 97,
					memoryUsedMiB: 30_722,
					memoryTotalMiB: 46_068,
					powerW: 341.08,
					powerLimitW: 350,
					fanPercent: null,
					temperatureC: 66,
				},
				{mig: true, utilizationGpu: null},
				{name: 'NVIDIA GeForce RTX 3090', fanPercent: 0},
				{busId: '00000000:65:00.0', fanPercent: 46},
			],
		}[samples.kind];
		captureFiles.forEach((file, i) => expect(load(file), file).toMatchObject(facts[i]!));
	});

	test('four captures combined into one host: distinct uuids, in index order', () => {
		const sources = captureFiles.map((file) => readSource(samplePath(file)));
		const host = hostRows(sources, 'load');
		const result = parseGpuCsv(asNoheaderNounits(host.gpus, gpuQueryFields), gpuQueryFields);
		if ('error' in result) throw new Error(result.error.message);
		expect(result.gpus).toEqual(host.gpus.map((entry, i) => expectedGpu(entry, i)));
		expect(new Set(result.gpus.map((gpu) => gpu.uuid)).size).toBe(4);
	});

	test(`${samples.shortCsv}: only the fields it has, the rest unknown`, () => {
		const host = hostRows([readSource(samplePath(samples.shortCsv))], 'idle');
		const fields = gpuQueryFields.filter(
			(field) => columnOf(host.gpus[0]!.header, new Map(), field) !== -1,
		);
		expect(fields).toEqual([
			'uuid',
			'utilization.gpu',
			'memory.used',
			'temperature.gpu',
			'power.draw',
			'fan.speed',
			'name',
		]);
		const result = parseGpuCsv(asNoheaderNounits(host.gpus, fields), fields);
		expect(result).toEqual({gpus: [samples.shortCsvGpu], driverVersion: null});
	});

	test(`${samples.noheaderGpuCsv}: [Not Supported] is unknown, never 0`, () => {
		const fields = [
			'index',
			'uuid',
			'name',
			'temperature.gpu',
			'utilization.gpu',
			'memory.used',
			'memory.total',
		];
		const result = parseGpuCsv(sample(samples.noheaderGpuCsv), fields);
		if ('error' in result) throw new Error(result.error.message);
		expect(
			result.gpus.map((gpu) => [
				gpu.index,
				gpu.name,
				gpu.temperatureC,
				gpu.utilizationGpu,
				gpu.memoryUsedMiB,
				gpu.memoryTotalMiB,
			]),
		).toEqual(
			{
				shared: [
					[0, 'GeForce GTX TITAN X', 80, 76, 8000, 12_287],
					[1, 'GeForce GTX TITAN X', 36, 0, 9000, 12_287],
					[2, 'GeForce GTX TITAN X', 71, null, 8520, 12_287],
				],
				fixtures: [
					[0, 'GeForce GTX 780 Ti', 79, 98, 2870, 3071],
					[1, 'GeForce GTX 780 Ti', 33, 0, 11, 3071],
					[2, 'GeForce GTX 780 Ti', 72, null, 1750, 3071],
					[3, 'GeForce GTX 780 Ti', null, null, 520, 3071],
				],
			}[samples.kind],
		);
	});
});

describe('parseComputeAppsCsv', () => {
	for (const file of captureFiles) {
		for (const state of ['idle', 'load'] as const) {
			test(`${file} (${state}): every process equals the capture's`, () => {
				const host = hostRows([readSource(samplePath(file))], state);
				const parsed = parseComputeAppsCsv(
					asNoheaderNounits(host.apps, computeAppsQueryFields),
					computeAppsQueryFields,
				);
				expect(parsed).toEqual(host.apps.map((entry) => expectedProcess(entry)));
			});
		}
	}

	test('the captures under load: the data-centre GPU’s job, Windows reports no per-process memory', () => {
		const parse = (file: string) =>
			parseComputeAppsCsv(
				asNoheaderNounits(
					hostRows([readSource(samplePath(file))], 'load').apps,
					computeAppsQueryFields,
				),
				computeAppsQueryFields,
			);
		const facts = {
			shared: {job: {pid: 11_345, command: './gpu_burn', usedMemoryMiB: 15_690}, windows: 21},
			fixtures: {job: {pid: 40_390, command: './nbody', usedMemoryMiB: 2046}, windows: 6},
		}[samples.kind];
		expect(parse(captureFiles[0]).find((p) => p.pid === facts.job.pid)).toMatchObject(facts.job);
		const windows = parse(captureFiles[3]);
		expect(windows).toHaveLength(facts.windows);
		expect(windows.every((p) => p.usedMemoryMiB === null)).toBe(true);
		expect(windows[0]!.command).toBe(String.raw`C:\Windows\System32\dwm.exe`);
	});

	test(`${samples.noheaderAppsCsv}: a process without a pid is dropped, memory [Not Supported] is unknown`, () => {
		const parsed = parseComputeAppsCsv(sample(samples.noheaderAppsCsv), [
			'gpu_uuid',
			'pid',
			'used_memory',
		]);
		expect(parsed.map((p) => [p.pid, p.usedMemoryMiB])).toEqual(
			{
				shared: [
					[48_448, 4000],
					[153_223, 4000],
					[192_453, 3000],
					[194_826, 6000],
					[38_310, 4245],
				],
				fixtures: [
					[21_877, 2048],
					[21_902, 780],
					[30_115, 1738],
					[30_240, null],
				],
			}[samples.kind],
		);
	});

	test('a process name with ", " in it stays whole (free text goes last)', () => {
		const [p] = parseComputeAppsCsv(
			'GPU-1, 42, 100, python -c print(1, 2)',
			computeAppsQueryFields,
		);
		expect(p).toMatchObject({pid: 42, usedMemoryMiB: 100, command: 'python -c print(1, 2)'});
	});

	test('joinProcesses keeps processes of known GPUs, by GPU index then memory', () => {
		const gpu = (index: number, uuid: string) => ({index, uuid}) as GpuInfo;
		const proc = (gpuUuid: string, pid: number, usedMemoryMiB: number | null) => ({
			gpuUuid,
			pid,
			user: null,
			command: '',
			usedMemoryMiB,
		});
		const joined = joinProcesses(
			[gpu(1, 'GPU-b'), gpu(0, 'GPU-a')],
			[
				proc('GPU-b', 1, 10),
				proc('GPU-a', 2, null),
				proc('GPU-a', 3, 500),
				proc('GPU-gone', 4, 900),
			],
		);
		expect(joined.map((p) => p.pid)).toEqual([3, 2, 1]);
	});
});

describe('unavailable tokens', () => {
	const tokens = [
		'[N/A]',
		'N/A',
		'[Not Supported]',
		'[Requested functionality has been deprecated]',
		'[Function Not Found]',
		'[Insufficient Permissions]',
	];
	for (const token of tokens) {
		test(`${token} is null in every numeric field`, () => {
			expect(isUnavailable(token)).toBe(true);
			expect(parseNumber(token)).toBeNull();
			const fields = [
				'uuid',
				'utilization.gpu',
				'memory.used',
				'memory.total',
				'temperature.gpu',
				'power.draw',
				'power.limit',
				'fan.speed',
				'name',
			];
			const line = ['GPU-1', ...Array.from({length: 7}, () => token), 'X'].join(', ');
			const result = parseGpuCsv(line, fields);
			if ('error' in result) throw new Error(result.error.message);
			expect(result.gpus[0]).toMatchObject({
				utilizationGpu: null,
				memoryUsedMiB: null,
				memoryTotalMiB: null,
				temperatureC: null,
				powerW: null,
				powerLimitW: null,
				fanPercent: null,
			});
		});
	}

	test('real zeros stay zeros', () => {
		expect(parseNumber('0')).toBe(0);
		expect(parseNumber('0.00')).toBe(0);
	});
});

describe('nvidia-smi errors', () => {
	test('no driver', () => {
		const text =
			"NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.\n\n";
		expect(recognizeNvidiaSmiError(text)).toEqual({
			kind: 'no-driver',
			message:
				"NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.",
			fix: expect.stringContaining('driver'),
		});
		expect(parseGpuCsv(text, gpuQueryFields)).toEqual({
			error: {kind: 'no-driver', message: expect.stringContaining("couldn't communicate")},
		});
	});

	test('driver/library mismatch: the fix is a reboot', () => {
		const error = recognizeNvidiaSmiError(
			'Failed to initialize NVML: Driver/library version mismatch\nNVML library version: 590.48\n',
		);
		expect(error).toMatchObject({
			kind: 'no-driver',
			message:
				'Failed to initialize NVML: Driver/library version mismatch NVML library version: 590.48',
		});
		expect(error?.fix).toMatch(/reboot/);
	});

	test('no nvidia-smi on PATH (the shell says so)', () => {
		expect(recognizeNvidiaSmiError('sh: 1: nvidia-smi: not found\n')).toMatchObject({
			kind: 'no-driver',
			fix: expect.stringContaining('--nvidia-smi'),
		});
		expect(recognizeNvidiaSmiError('bash: line 1: nvidia-smi: command not found\n')?.kind).toBe(
			'no-driver',
		);
	});

	test('other failures', () => {
		expect(
			recognizeNvidiaSmiError(
				'Unable to determine the device handle for GPU0000:01:00.0: GPU is lost.  Reboot the system to recover this GPU',
			),
		).toMatchObject({kind: 'failed'});
		expect(recognizeNvidiaSmiError('something else entirely')).toBeNull();
		expect(parseGpuCsv('something else entirely', gpuQueryFields)).toEqual({
			error: {kind: 'failed', message: 'something else entirely'},
		});
	});

	test('gpuErrorFix: from the message, else by kind', () => {
		expect(
			gpuErrorFix({
				kind: 'no-driver',
				message: 'Failed to initialize NVML: Driver/library version mismatch',
			}),
		).toMatch(/reboot/);
		expect(gpuErrorFix({kind: 'timeout', message: 'nvidia-smi gave no answer for 10 s'})).toMatch(
			/stuck driver/,
		);
	});

	test('invalidFieldIn names the field', () => {
		expect(invalidFieldIn('Field "mig.mode.current" is not a valid field to query.\n\n')).toBe(
			'mig.mode.current',
		);
		expect(invalidFieldIn('0, GPU-1, 3')).toBeNull();
	});
});

test('parsePsOutput', () => {
	const text =
		'  11345 alice    python train.py --lr 3e-4\n   2211 bob      /usr/bin/python3 -m ipykernel_launcher -f /x.json\n';
	expect([...parsePsOutput(text)]).toEqual([
		[11_345, {user: 'alice', command: 'python train.py --lr 3e-4'}],
		[2211, {user: 'bob', command: '/usr/bin/python3 -m ipykernel_launcher -f /x.json'}],
	]);
});

describe('cross-check with the -q -x dumps (multi-GPU, MIG A100, laptop, old driver)', () => {
	const xmlFiles = samples.xml;
	/** The first `<tag>value</tag>` inside `xml`, or undefined. */
	const tag = (xml: string, name: string) =>
		new RegExp(`<${name}>([^<]*)</${name}>`).exec(xml)?.[1]?.trim();
	const section = (xml: string, name: string) =>
		new RegExp(`<${name}>([\\s\\S]*?)</${name}>`).exec(xml)?.[1] ?? '';

	for (const [file, count] of Object.entries(xmlFiles)) {
		test(`${file}: ${count} GPU(s), N/A stays unknown`, () => {
			const xml = sample(file);
			const blocks = xml.split(/<gpu id="/).slice(1);
			expect(blocks).toHaveLength(count);
			const gpus = blocks.map((block) => {
				const power = section(block, 'gpu_power_readings') || section(block, 'power_readings');
				const memory = section(block, 'fb_memory_usage');
				return {
					uuid: tag(block, 'uuid')!,
					name: tag(block, 'product_name')!,
					busId: tag(block, 'pci_bus_id')!,
					mig: tag(section(block, 'mig_mode'), 'current_mig') ?? 'N/A',
					util: tag(section(block, 'utilization'), 'gpu_util')!,
					used: tag(memory, 'used')!,
					total: tag(memory, 'total')!,
					temp: tag(section(block, 'temperature'), 'gpu_temp')!,
					draw: tag(power, 'power_draw') ?? tag(power, 'instant_power_draw')!,
					limit: tag(power, 'power_limit') ?? tag(power, 'current_power_limit')!,
					fan: tag(block, 'fan_speed')!,
				};
			});
			// What `--query-gpu=… --format=csv,noheader,nounits` prints for these values: no units,
			// and `[N/A]` where the XML says `N/A`.
			const cell = (value: string) =>
				value === 'N/A' ? '[N/A]' : value.replace(/ (%|MiB|W|C)$/, '');
			const fields = [
				'index',
				'uuid',
				'pci.bus_id',
				'mig.mode.current',
				'utilization.gpu',
				'memory.used',
				'memory.total',
				'temperature.gpu',
				'power.draw',
				'power.limit',
				'fan.speed',
				'name',
			];
			const text = gpus
				.map((g, i) =>
					[
						String(i),
						g.uuid,
						g.busId,
						g.mig,
						g.util,
						g.used,
						g.total,
						g.temp,
						g.draw,
						g.limit,
						g.fan,
						g.name,
					]
						.map(cell)
						.join(', '),
				)
				.join('\n');
			const result = parseGpuCsv(text, fields);
			if ('error' in result) throw new Error(result.error.message);
			const number = (value: string) => (value === 'N/A' ? null : Number(value.split(' ')[0]));
			expect(result.gpus).toEqual(
				gpus.map((g, i) => ({
					index: i,
					uuid: g.uuid,
					name: g.name,
					busId: g.busId,
					mig: g.mig === 'Enabled',
					utilizationGpu: number(g.util),
					memoryUsedMiB: number(g.used),
					memoryTotalMiB: number(g.total),
					temperatureC: number(g.temp),
					powerW: number(g.draw),
					powerLimitW: number(g.limit),
					fanPercent: number(g.fan),
				})),
			);
			// What the dashboard depends on for these machines.
			if (file.includes('-mig_'))
				expect(result.gpus[0]).toMatchObject({mig: true, utilizationGpu: null, fanPercent: null});
			if (file.includes('laptop'))
				expect(result.gpus[0]).toMatchObject({fanPercent: null, powerLimitW: null});
			if (count === 2) expect(new Set(result.gpus.map((g) => g.uuid)).size).toBe(2);
		});
	}
});
