import {defineConfig} from 'vitest/config';

export default defineConfig({
	test: {
		include: ['test/**/*.test.{ts,tsx}'],
		pool: 'forks',
		// Two cores and real sshd/Jupyter processes per test file: keep the run calm.
		maxWorkers: 2,
		testTimeout: 120_000,
		hookTimeout: 120_000,
		env: {FORCE_COLOR: '0'},
	},
});
