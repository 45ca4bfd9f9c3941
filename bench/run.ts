/**
 * `npm run bench`: gpujup side by side with the OpenSSH chain it replaces, in the same run, on a
 * real OpenSSH lab (relay + GPU host sshd on loopback, the seed's `ssh -R`), Debian's Jupyter and
 * the replaying fake nvidia-smi. Prints a Markdown table of medians; each row compares gpujup with
 * its anchor measured in the same run, as a ratio. The lab is in lab.ts, the scenarios in
 * scenarios.ts, the table in report.ts.
 *
 *   node dist-bench/bench/run.js [--runs N] [--quick] [--only NAME[,NAME…]]
 *
 * NAME: throughput, far, ready, notebook, dead-link, tunnel-return, idle (default: all of them).
 *
 * Not a test: nothing here passes or fails; the numbers go into the README.
 */
import {existsSync} from 'node:fs';
import process from 'node:process';
import {cli, startBenchLab} from './lab.js';
import {formatReport, type Row} from './report.js';
import {scenarios, type Settings} from './scenarios.js';

type Name = keyof typeof scenarios;
const names = Object.keys(scenarios) as Name[];

/** `--only`: the scenarios to run, in the table's order; null runs them all. */
type Options = {
	readonly runs: number;
	readonly quick: boolean;
	readonly only: readonly Name[] | null;
};

const usage = `Usage: npm run bench -- [--runs N] [--quick] [--only ${names.join('|')}[,…]]\n`;

const parseOptions = (argv: readonly string[]): Options => {
	let runs: number | undefined;
	let quick = false;
	const only = new Set<Name>();
	const fail = (text: string): never => {
		process.stderr.write(`bench: ${text}\n`);
		process.exit(2);
	};
	const addOnly = (list: string | undefined) => {
		for (const name of (list ?? '').split(',')) {
			if (!(names as string[]).includes(name))
				fail(`--only takes ${names.join(', ')}; got "${name}"`);
			only.add(name as Name);
		}
	};
	for (let i = 0; i < argv.length; i++) {
		const arg = argv[i]!;
		if (arg === '--quick') quick = true;
		else if (arg === '--runs') runs = Number(argv[++i]);
		else if (arg.startsWith('--runs=')) runs = Number(arg.slice('--runs='.length));
		else if (arg === '--only') addOnly(argv[++i]);
		else if (arg.startsWith('--only=')) addOnly(arg.slice('--only='.length));
		else if (arg === '--help' || arg === '-h') {
			process.stdout.write(usage);
			process.exit(0);
		} else fail(`unknown argument ${arg}`);
	}
	if (runs !== undefined && !(Number.isInteger(runs) && runs > 0))
		fail('--runs wants a positive integer');
	return {
		runs: runs ?? (quick ? 2 : 5),
		quick,
		only: only.size > 0 ? names.filter((name) => only.has(name)) : null,
	};
};

async function main(): Promise<void> {
	const options = parseOptions(process.argv.slice(2));
	const settings: Settings = {
		runs: options.runs,
		quick: options.quick,
		sizes: options.quick
			? {
					loopback: 32e6,
					shaped: 8e6,
					far: 32e6,
					cells: 20,
					idleSeconds: 8,
					idleSteadyFromSeconds: 30,
				}
			: {
					loopback: 128e6,
					shaped: 24e6,
					far: 96e6,
					cells: 50,
					idleSeconds: 20,
					idleSteadyFromSeconds: 60,
				},
	};
	if (!existsSync(cli)) throw new Error(`bench: ${cli} is missing; run npm run build`);

	const bench = await startBenchLab();
	const rows: Row[] = [];
	try {
		for (const name of options.only ?? names)
			rows.push(...(await scenarios[name](bench, settings)));
	} finally {
		await bench.dispose();
	}
	process.stdout.write(formatReport(rows, options));
}

await main().then(
	() => process.exit(0),
	(error: unknown) => {
		process.stderr.write(`bench failed: ${error instanceof Error ? error.stack : String(error)}\n`);
		process.exit(1);
	},
);
