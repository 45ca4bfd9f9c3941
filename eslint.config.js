import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import reactHooks from 'eslint-plugin-react-hooks';
import globals from 'globals';

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
	// Imports go downward only (README, Architecture): commands → roles, demo → services → core.
	{
		files: ['source/services/**/*.ts'],
		rules: {
			'no-restricted-imports': [
				'error',
				{
					patterns: [
						{
							group: ['../roles/*', '../commands/*', '../demo/*', '../components/*', '../hooks/*'],
							message: 'services/ import only core/ and other services',
						},
					],
				},
			],
		},
	},
	{
		files: ['source/components/**/*.{ts,tsx}', 'source/hooks/**/*.ts'],
		rules: {
			'no-restricted-imports': [
				'error',
				{
					patterns: [
						{
							group: ['../services/*', '../roles/*', '../commands/*', '../demo/*', '../config/*'],
							message: 'the view does no I/O: it reads the store and calls Commands',
						},
					],
				},
			],
		},
	},
	{
		files: ['source/roles/**/*.ts', 'source/demo/**/*.ts'],
		rules: {
			'no-restricted-imports': [
				'error',
				{
					patterns: [
						{
							group: ['../commands/*', '../app.js', '../components/*', '../hooks/*'],
							message:
								'the wiring builds services into a session; commands and the view sit above it',
						},
					],
				},
			],
		},
	},
);
