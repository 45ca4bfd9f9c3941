/** Types for fake-nvidia-smi.mjs (plain JS so it runs without a build). */

export type CaptureSection = {
	readonly state: string;
	readonly name: string;
	readonly command: string | null;
	readonly body: string[];
};

export type HeaderCell = {readonly name: string; readonly unit: string | null};

export type CsvTable = {readonly header: HeaderCell[]; readonly rows: string[][]};

export type Source = {
	readonly gpu: {readonly idle: CsvTable; readonly load: CsvTable};
	readonly apps: {readonly idle: CsvTable; readonly load: CsvTable};
	readonly gpuAliases: Map<string, string[]>;
	readonly appAliases: Map<string, string[]>;
	readonly help: {readonly gpu?: string; readonly apps?: string};
};

export type HostEntry = {
	readonly header: HeaderCell[];
	readonly row: string[];
	readonly aliases: Map<string, string[]>;
};

export function captureSections(text: string): CaptureSection[];
export function readSource(file: string): Source;
export function columnOf(
	header: HeaderCell[],
	aliases: Map<string, string[]>,
	field: string,
): number;
export function hostUuid(uuid: string, position: number): string;
export function hostRows(
	sources: Source[],
	state: 'idle' | 'load',
	pidMap?: Map<string, string>,
): {gpus: HostEntry[]; apps: HostEntry[]};
