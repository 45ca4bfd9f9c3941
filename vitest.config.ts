import {defineConfig} from 'vitest/config';

export default defineConfig({
	test: {
		include: ['test/**/*.test.{ts,tsx}'],
		// Prints which nvidia-smi samples run: the real captures in ../shared, or the project's own.
		globalSetup: ['test/global-setup.ts'],
		pool: 'forks',
		// Two cores and real sshd/Jupyter processes per test file: keep the run calm.
		maxWorkers: 2,
		testTimeout: 120_000,
		hookTimeout: 120_000,
		env: {FORCE_COLOR: '0'},
	},
});
