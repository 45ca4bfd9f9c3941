/**
 * Which nvidia-smi samples the tests (and the bench) replay: the real captures in
 * `../shared/nvidia-smi-samples/` beside the repository (never copied into it) when that folder
 * exists, else the project's own fixtures in `test/fixtures/nvidia-smi/`, written for these tests
 * (see the README there). Both sets fill the same roles; what a test checks of one specific file
 * is in the set's table here or in the test's own table for each set, never weakened for either.
 */
import {existsSync, readFileSync} from 'node:fs';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import type {GpuInfo} from '../../source/core/types.js';

/** The repository root: the first dir upwards with gpujup's package.json (also from dist-bench/). */
function findRoot(): string {
	let dir = path.dirname(fileURLToPath(import.meta.url));
	for (;;) {
		const file = path.join(dir, 'package.json');
		if (existsSync(file) && /"name":\s*"gpujup"/.test(readFileSync(file, 'utf8'))) return dir;
		const up = path.dirname(dir);
		if (up === dir) throw new Error(`cannot find gpujup's repository root above ${dir}`);
		dir = up;
	}
}

export const repoRoot = findRoot();

export type SampleSet = {
	/** `shared`: the real captures; `fixtures`: the project's own. */
	readonly kind: 'shared' | 'fixtures';
	/** What the test run prints about the set, once. */
	readonly label: string;
	readonly dir: string;
	/**
	 * Four single-GPU sources the fake replays, idle and under load: a data-centre GPU with
	 * processes, one with MIG enabled, a desktop GPU, a Windows (WDDM) GPU.
	 */
	readonly captures: readonly [dataCentre: string, mig: string, desktop: string, windows: string];
	/** The desktop GPU (`captures[2]`) as the dashboard and doctor show it. */
	readonly desktop: {
		readonly name: string;
		readonly uuid: string;
		/** The part of its name the GPU pane shows at every width. */
		readonly model: string;
		/** memory.total as the pane prints it (`…/16.0 GiB`). */
		readonly memoryTotalGiB: string;
		readonly driverVersion: string;
		/**
		 * Two of its compute apps under load (pid as captured, MiB): the notebooks tests point
		 * them at a kernel and at its child through the fake's pid file.
		 */
		readonly loadApps: readonly [
			{readonly pid: number; readonly mib: number},
			{readonly pid: number; readonly mib: number},
		];
	};
	/** One state of an older `--format=csv` query with few fields: no index, bus id or limits. */
	readonly shortCsv: string;
	/** What the short CSV's one GPU parses to from the fields it has. */
	readonly shortCsvGpu: GpuInfo;
	/** `--format=csv,noheader,nounits` of a multi-GPU host with `[Not Supported]` values. */
	readonly noheaderGpuCsv: string;
	readonly noheaderAppsCsv: string;
	/** `nvidia-smi -q -x` dumps and their number of GPUs. */
	readonly xml: Readonly<Record<string, number>>;
};

/** What the short CSVs of both sets lack: index (so 0), bus id, MIG mode, total memory, limit, fan. */
const notInShortCsv = {
	index: 0,
	busId: null,
	mig: false,
	memoryTotalMiB: null,
	powerLimitW: null,
	fanPercent: null,
} as const;

const sharedDir = path.join(repoRoot, '..', 'shared', 'nvidia-smi-samples');

const shared: SampleSet = {
	kind: 'shared',
	label: '../shared/nvidia-smi-samples (real captures)',
	dir: sharedDir,
	captures: [
		'h100-80gb-hbm3_linux_590.48.01_capture.txt',
		'h100-80gb-hbm3-mig_linux_590.48.01_capture.txt',
		'rtx-4080-super_linux_595.71.05_capture.txt',
		'rtx-2080-super_windows-wddm_610.62_capture.txt',
	],
	desktop: {
		name: 'NVIDIA GeForce RTX 4080 SUPER',
		// Masked in the capture.
		uuid: 'GPU-00000000-0000-0000-0000-000000000000',
		model: 'RTX 4080',
		memoryTotalGiB: '16.0',
		driverVersion: '595.71.05',
		loadApps: [
			{pid: 5022, mib: 503},
			{pid: 5021, mib: 360},
		],
	},
	shortCsv: 'tesla-p100-pcie-16gb_query-gpu.csv',
	shortCsvGpu: {
		...notInShortCsv,
		uuid: 'GPU-ef1b2c9b-38d8-2090-2bd1-f567a3eb42a6',
		name: 'Tesla P100-PCIE-16GB',
		utilizationGpu: 0,
		memoryUsedMiB: 0,
		temperatureC: 37,
		powerW: 28.16,
	},
	noheaderGpuCsv: 'gtx-titan-x-x3_MOCK_query-gpu_noheader-nounits.csv',
	noheaderAppsCsv: 'gtx-titan-x-x3_MOCK_query-compute-apps_noheader-nounits.csv',
	xml: {
		'a100-sxm4-40gb-mig_linux_510.47.03_q-x.xml': 1,
		'a100-sxm4-80gb-mig_linux_535.54.03_q-x.xml': 1,
		'gtx-1660-ti_linux_418.43_q-x.xml': 1,
		'rtx-2070-x2_linux_590.44.01_q-x.xml': 2,
		'rtx-3060-laptop_linux_515.65.01_q-x.xml': 1,
		'rtx-a5000-x2_linux_590.44.01_q-x.xml': 2,
	},
};

const fixtures: SampleSet = {
	kind: 'fixtures',
	label: 'test/fixtures/nvidia-smi (project fixtures; ../shared absent)',
	dir: path.join(repoRoot, 'test', 'fixtures', 'nvidia-smi'),
	captures: ['l40s', 'a100-sxm4-80gb-mig', 'rtx-3090', 'rtx-a4000-wddm'],
	desktop: {
		name: 'NVIDIA GeForce RTX 3090',
		uuid: 'GPU-9e27d4b8-1a53-4c0f-a6d2-58b1e7c3f092',
		model: 'RTX 3090',
		memoryTotalGiB: '24.0',
		driverVersion: '560.35.03',
		loadApps: [
			{pid: 7301, mib: 602},
			{pid: 7344, mib: 598},
		],
	},
	shortCsv: 'tesla-v100-pcie-16gb_query-gpu.csv',
	shortCsvGpu: {
		...notInShortCsv,
		uuid: 'GPU-71d3e0b4-58a2-4f19-b6c7-0e9d2a4f8136',
		name: 'Tesla V100-PCIE-16GB',
		utilizationGpu: 3,
		memoryUsedMiB: 312,
		temperatureC: 41,
		powerW: 38.74,
	},
	noheaderGpuCsv: 'gtx-780-ti-x4_query-gpu_noheader-nounits.csv',
	noheaderAppsCsv: 'gtx-780-ti-x4_query-compute-apps_noheader-nounits.csv',
	xml: {
		'a100-sxm4-80gb-mig_q-x.xml': 1,
		'l40s_q-x.xml': 1,
		'rtx-3090-x2_q-x.xml': 2,
		'rtx-4060-laptop_q-x.xml': 1,
	},
};

/** The set this run replays. */
export const samples: SampleSet = existsSync(sharedDir) ? shared : fixtures;

/** Absolute path of one sample of the set (a file, or a fixture GPU's folder). */
export function samplePath(name: string): string {
	return path.join(samples.dir, name);
}
