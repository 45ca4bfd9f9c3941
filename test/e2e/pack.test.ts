/**
 * What `npm pack` ships: only what runs (the built CLI: dist/cli.js and the bundles it loads,
 * rolldown.config.js), never the tsc output they are bundled from, the test helpers or the bench. Reads the built dist/ (`npm run build` first, as for the other e2e tests).
 */
import {execFile} from 'node:child_process';
import {readFile} from 'node:fs/promises';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {promisify} from 'node:util';
import {beforeAll, describe, expect, test} from 'vitest';

const execFileP = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));

type PackFile = {readonly path: string; readonly size: number};

async function packedFiles(): Promise<string[]> {
	const {stdout} = await execFileP('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
		cwd: root,
		env: {...process.env, npm_config_loglevel: 'error'},
	});
	const [pack] = JSON.parse(stdout) as Array<{files: PackFile[]}>;
	return pack!.files.map((file) => file.path).sort();
}

describe('npm pack', () => {
	let files: string[];
	beforeAll(async () => {
		files = await packedFiles();
	});

	test('ships dist/cli.js and its bundles; no test, bench or fixture file', () => {
		expect(files).toContain('dist/cli.js');
		expect(files).toContain('dist/gpujup.cjs');
		expect(files).toContain('dist/dashboard.js');
		expect(files).toContain('package.json');
		expect(files).toContain('README.md');
		const outside = files.filter(
			(file) =>
				!['package.json', 'README.md', 'LICENSE', 'dist/cli.js', 'dist/dashboard.js'].includes(
					file,
				) && !/^dist\/gpujup(-[\w-]+)?\.cjs$/.test(file),
		);
		expect(outside).toEqual([]);
		expect(files.filter((file) => /(^|\/)(test|bench|fixtures)(\/|$)/.test(file))).toEqual([]);
	});

	test('every relative import of a shipped module is shipped too', async () => {
		const shipped = new Set(files);
		const missing: string[] = [];
		for (const file of files.filter((name) => /\.c?js$/.test(name))) {
			const text = await readFile(path.join(root, file), 'utf8');
			const imports = /(?:from|import\(|require\()\s*(['"])(\.{1,2}\/[^'"]+)\1/g;
			for (const match of text.matchAll(imports)) {
				const target = path.posix.join(path.posix.dirname(file), match[2]!);
				if (!shipped.has(target)) missing.push(`${file} → ${target}`);
			}
		}
		expect(missing).toEqual([]);
	});
});
