/**
 * The build's second step (after tsc): dist/source bundled into the two files `npm pack` ships
 * beside dist/cli.js. Loading the ~80 modules of `connect` one by one took about a fifth of the
 * time to ready (README, Benchmarks); one CommonJS file loads in a third of that.
 *
 * - dist/gpujup.cjs: everything but the dashboard. CommonJS, as its start-up is the faster one
 *   (no ES-module linking, ssh2 required directly rather than through the ES-module loader).
 * - dist/dashboard.js: the view (source/dashboard.tsx), an ES module because Ink is one (with
 *   top-level await, which require() cannot load). gpujup.cjs imports it only to draw.
 *
 * ssh2 (native bindings), systeminformation (the host's only), Ink and React stay in
 * node_modules: ink-output-cache reaches into the very Ink and tokenizer modules Ink loads.
 */
import {defineConfig} from 'rolldown';

const packages = [
	'ssh2',
	'cpu-features',
	'systeminformation',
	'ink',
	'react',
	'@alcalzone/ansi-tokenize',
];
const isPackage = (id) => packages.some((name) => id === name || id.startsWith(`${name}/`));
const isDashboard = (id) => id.endsWith('/dashboard.js') || id === '../dashboard.js';

export default defineConfig([
	{
		input: 'dist/source/main.js',
		platform: 'node',
		external: (id) => id.startsWith('node:') || isPackage(id) || isDashboard(id),
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
		external: (id) => id.startsWith('node:') || /^[@a-z]/.test(id),
		output: {file: 'dist/dashboard.js', format: 'esm'},
	},
]);
