import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import reactHooks from 'eslint-plugin-react-hooks';
import globals from 'globals';

/** A layer's files may not import from the layers above it. */
function layer(files, above, message) {
	return {
		files,
		rules: {'no-restricted-imports': ['error', {patterns: [{group: above, message}]}]},
	};
}

/** The view's modules, as the shell and the commands would name them. */
const viewModules = [
	'../dashboard.js',
	'../app.js',
	'../fleet-app.js',
	'../components/*',
	'../hooks/*',
];

export default tseslint.config(
	{ignores: ['dist/**', 'dist-bench/**', 'node_modules/**', 'media/**']},
	js.configs.recommended,
	...tseslint.configs.recommended,
	{
		files: ['**/*.{ts,tsx,js}'],
		languageOptions: {globals: {...globals.node}},
		plugins: {'react-hooks': reactHooks},
		rules: {
			'react-hooks/rules-of-hooks': 'error',
			'react-hooks/exhaustive-deps': 'warn',
			'@typescript-eslint/no-unused-vars': [
				'error',
				{argsIgnorePattern: '^_', varsIgnorePattern: '^_'},
			],
			'@typescript-eslint/consistent-type-imports': 'error',
			'no-console': 'off',
			eqeqeq: ['error', 'smart'],
		},
	},
	{
		files: ['source/core/**/*.ts'],
		rules: {
			'no-restricted-imports': [
				'error',
				{
					patterns: [
						{
							group: [
								'react',
								'ink',
								'ssh2',
								'node:net',
								'node:child_process',
								'node:fs',
								'node:fs/promises',
							],
							message: 'core/ is pure: no I/O, React or ssh2',
						},
						{group: ['../*'], message: 'core/ imports only core/'},
					],
				},
			],
		},
	},
	// Imports go downward only (README, Architecture): main → commands → shell → wiring, demo →
	// services → core; the view beside the shell.
	layer(
		['source/services/**/*.ts'],
		['../wiring/*', '../commands/*', '../shell/*', '../demo/*', '../components/*', '../hooks/*'],
		'services/ import only core/ and other services',
	),
	layer(
		['source/components/**/*.{ts,tsx}', 'source/hooks/**/*.ts'],
		['../services/*', '../wiring/*', '../commands/*', '../shell/*', '../demo/*', '../config/*'],
		'the view does no I/O: it reads the store and calls Commands',
	),
	layer(
		['source/wiring/**/*.ts', 'source/demo/**/*.ts'],
		['../commands/*', '../shell/*', ...viewModules],
		'the wiring builds services into a session; the shell, commands and the view sit above it',
	),
	// The view is its own bundle (rolldown.config.js), an ES module because Ink is: the shell and
	// the commands reach it only by `await import('../dashboard.js')`, never by a static import.
	layer(
		['source/shell/**/*.{ts,tsx}'],
		['../commands/*', '../main.js', ...viewModules],
		"the shell runs the session a command built (commands and main sit above it); the view loads only by `await import('../dashboard.js')`",
	),
	layer(
		['source/commands/**/*.ts'],
		viewModules,
		"the view loads only by `await import('../dashboard.js')`, where a dashboard is drawn",
	),
);
