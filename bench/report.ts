/** The bench's statistics and its Markdown table. */
import {spawnSync} from 'node:child_process';
import os from 'node:os';
import process from 'node:process';

// ---------------------------------------------------------------------------------------------
// Statistics

export const median = (values: readonly number[]): number => {
	const sorted = [...values].sort((a, b) => a - b);
	if (sorted.length === 0) return Number.NaN;
	const mid = Math.floor(sorted.length / 2);
	return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

export const percentile = (values: readonly number[], p: number): number => {
	const sorted = [...values].sort((a, b) => a - b);
	if (sorted.length === 0) return Number.NaN;
	return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
};

// ---------------------------------------------------------------------------------------------
// The table

export type Row = {
	readonly what: string;
	readonly gpujup: string;
	readonly anchor: string;
	readonly ratio: string;
	readonly target: string;
};

export const fmt = (value: number, digits = 1) =>
	Number.isFinite(value) ? value.toFixed(digits) : 'n/a';

export function formatReport(
	rows: readonly Row[],
	heading: {runs: number; quick: boolean; only: readonly string[] | null},
): string {
	// `ssh -V` prints on stderr.
	const sshVersion = spawnSync('ssh', ['-V'], {encoding: 'utf8'}).stderr.trim();
	const out = [
		`gpujup bench — ${new Date().toISOString()}, ${heading.runs} run(s)${heading.quick ? ', --quick' : ''}${heading.only ? `, --only ${heading.only.join(',')}` : ''}; medians`,
		`node ${process.version}, ${sshVersion || 'OpenSSH'}, ${os.cpus().length} CPU(s) ${os.cpus()[0]?.model ?? ''}`,
		'',
		'| what | gpujup | anchor (same run) | ratio | target |',
		'| --- | ---: | ---: | ---: | --- |',
		...rows.map(
			(row) => `| ${row.what} | ${row.gpujup} | ${row.anchor} | ${row.ratio} | ${row.target} |`,
		),
		'',
	];
	return out.join('\n');
}
