/**
 * The build's second step (after tsc): dist/source bundled into the files `npm pack` ships beside
 * dist/cli.js. Loading the ~80 modules of `connect` one by one took about a fifth of the time to
 * ready (README, Benchmarks); bundled, a third of that.
 *
 * - dist/gpujup.cjs (and a gpujup-*.cjs chunk per command, loaded when it runs): everything but
 *   the dashboard. CommonJS, as its start-up is the faster one (no ES-module linking, ssh2
 *   required directly rather than through the ES-module loader). ssh2 (native bindings),
 *   systeminformation (the host's only) and Ink's tokenizer (doctor's probe reads node_modules'
 *   Ink with it) stay in node_modules; nothing here imports Ink or React.
 * - dist/dashboard.js: the view (source/dashboard.tsx) with its own copy of Ink and React, in
 *   their production builds whatever NODE_ENV says (React's development warnings: run the view from
 *   source, as its tests do), an ES module as Ink is (with top-level await, which require() cannot
 *   load). gpujup.cjs imports it only to draw. In it, the `widest-line` Ink imports is gpujup's
 *   memoised one (services/workarounds/ink-widest-line.ts); the build fails if Ink no longer
 *   imports it.
 */
import path from 'node:path';
import {defineConfig} from 'rolldown';

const packages = ['ssh2', 'cpu-features', 'systeminformation', '@alcalzone/ansi-tokenize'];
const isPackage = (id) => packages.some((name) => id === name || id.startsWith(`${name}/`));
const isDashboard = (id) => id.endsWith('/dashboard.js') || id === '../dashboard.js';

const ink = path.resolve('node_modules/ink/build');
const memo = path.resolve('dist/source/services/workarounds/ink-widest-line.js');

const noDevtools = '\0gpujup-no-devtools';

/** Ink's `widest-line` resolved to the memo, its Output class by path; counted, so a miss fails. */
function inkWorkarounds() {
	let redirected = 0;
	return {
		name: 'gpujup-ink-workarounds',
		resolveId(source, importer) {
			if (source === 'ink/build/output.js') return path.join(ink, 'output.js');
			// React DevTools (DEV=true only) is not a dependency: left out of the bundle.
			if (source === './devtools.js' && importer?.startsWith(ink)) return noDevtools;
			if (source === 'widest-line' && importer?.startsWith(ink)) {
				redirected++;
				return memo;
			}
			return null;
		},
		load(id) {
			return id === noDevtools ? 'export {};' : null;
		},
		buildEnd() {
			if (redirected === 0)
				this.error('Ink no longer imports widest-line: drop the ink-widest-line workaround');
		},
	};
}

/** In both bundles: the dashboard's Ink measures through the memo (ink-widest-line's probe). */
const define = {__GPUJUP_INK_WIDEST_LINE__: 'true'};

export default defineConfig([
	{
		input: 'dist/source/main.js',
		platform: 'node',
		external: (id) => id.startsWith('node:') || isPackage(id) || isDashboard(id),
		transform: {define},
		output: {
			dir: 'dist',
			entryFileNames: 'gpujup.cjs',
			chunkFileNames: 'gpujup-[name].cjs',
			format: 'cjs',
			paths: (id) => (isDashboard(id) ? './dashboard.js' : id),
		},
	},
	{
		input: 'dist/source/dashboard.js',
		platform: 'node',
		// One React for Ink and the panes, its production build only (about 2 MB less RSS).
		external: (id) => id.startsWith('node:'),
		plugins: [inkWorkarounds()],
		transform: {define: {...define, 'process.env.NODE_ENV': '"production"'}},
		output: {file: 'dist/dashboard.js', format: 'esm', codeSplitting: false},
	},
]);
