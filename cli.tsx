#!/usr/bin/env node
import process from 'node:process';
import {parseCli, ConfigError} from './source/config/resolve.js';
import type {Config} from './source/config/types.js';
import {runStatus, runUrl} from './source/commands/status.js';
import {runConnectCommand} from './source/commands/connect.js';
import {runHostCommand} from './source/commands/host.js';
import {runDoctor} from './source/commands/doctor.js';
import {runDemoCommand} from './source/commands/demo.js';
import {restoreTerminal} from './source/services/terminal.js';

function fail(error: unknown): never {
	restoreTerminal();
	const message = error instanceof Error ? error.message : String(error);
	process.stderr.write(`gpujup: ${message}\n`);
	process.exit(error instanceof ConfigError ? 2 : 1);
}

process.on('uncaughtException', fail);
process.on('unhandledRejection', fail);

async function run(config: Config): Promise<number> {
	switch (config.command) {
		case 'connect': {
			return runConnectCommand(config);
		}

		case 'host': {
			return runHostCommand(config);
		}

		case 'status': {
			return runStatus(config);
		}

		case 'url': {
			return runUrl(config);
		}

		case 'doctor': {
			return runDoctor(config);
		}

		case 'demo': {
			return runDemoCommand(config);
		}
	}
}

try {
	const result = parseCli(process.argv.slice(2), process.env, {
		stdoutIsTty: Boolean(process.stdout.isTTY),
	});
	if (result.kind === 'run') {
		const code = await run(result.config);
		restoreTerminal();
		process.exit(code);
	} else {
		process.stdout.write(result.text.endsWith('\n') ? result.text : result.text + '\n');
	}
} catch (error) {
	fail(error);
}
