/** Everything `gpujup` does, loaded by cli.tsx once the environment is set. */
import process from 'node:process';
import {needRelay} from './config/narrow.js';
import {parseCli, ConfigError} from './config/resolve.js';
import type {Config} from './config/types.js';
import {sanitizeLines} from './core/sanitize.js';
import {restoreTerminal} from './services/terminal.js';

function fail(error: unknown): never {
	restoreTerminal();
	// Remote text can end up in an error's message: never print its escapes.
	const message = sanitizeLines(error instanceof Error ? error.message : String(error));
	process.stderr.write(`gpujup: ${message}\n`);
	process.exit(error instanceof ConfigError ? 2 : 1);
}

process.on('uncaughtException', fail);
process.on('unhandledRejection', fail);

/** Each command loads only what it uses: a laptop never loads the GPU host's modules. */
async function run(config: Config): Promise<number> {
	switch (config.command) {
		case 'connect': {
			const {runConnectCommand} = await import('./commands/connect.js');
			return runConnectCommand(needRelay(config));
		}

		case 'host': {
			const {runHostCommand} = await import('./commands/host.js');
			return runHostCommand(config);
		}

		case 'status': {
			const {runStatus} = await import('./commands/status.js');
			return runStatus(config);
		}

		case 'url': {
			const {runUrl} = await import('./commands/status.js');
			return runUrl(config);
		}

		case 'kernels': {
			const {runKernels} = await import('./commands/status.js');
			return runKernels(config);
		}

		case 'doctor': {
			const {runDoctor} = await import('./commands/doctor.js');
			return runDoctor(needRelay(config));
		}

		case 'demo': {
			const {runDemoCommand} = await import('./commands/demo.js');
			return runDemoCommand(config);
		}

		case 'pair': {
			const {runPairCommand} = await import('./commands/pair.js');
			return runPairCommand(config);
		}
	}
}

/**
 * Parse, run one command, exit with its code. A function, not top-level await: the build bundles
 * this as CommonJS (rolldown.config.js), whose start-up is the faster one.
 */
async function main(): Promise<void> {
	try {
		const result = parseCli(process.argv.slice(2), process.env, {
			stdoutIsTty: Boolean(process.stdout.isTTY),
		});
		if (result.kind === 'run') {
			for (const warning of result.config.warnings) process.stderr.write(`gpujup: ${warning}\n`);
			const code = await run(result.config);
			restoreTerminal();
			process.exit(code);
		} else {
			process.stdout.write(result.text.endsWith('\n') ? result.text : result.text + '\n');
		}
	} catch (error) {
		fail(error);
	}
}

void main();
