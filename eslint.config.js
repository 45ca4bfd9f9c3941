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
					],
				},
			],
		},
	},
);
