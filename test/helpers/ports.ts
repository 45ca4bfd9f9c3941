import {mkdtemp, rm, chmod} from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const handedOut = new Set<number>();

const bindZero = async (): Promise<number> =>
	new Promise((resolve, reject) => {
		const server = net.createServer();
		server.unref();
		server.once('error', reject);
		server.listen({host: '127.0.0.1', port: 0, exclusive: true}, () => {
			const address = server.address();
			const port = typeof address === 'object' && address ? address.port : 0;
			server.close(() => resolve(port));
		});
	});

/**
 * A TCP port on 127.0.0.1 that was free a moment ago. Never the same port twice in one process
 * (two workers are separate processes; the kernel's ephemeral allocator makes clashes between
 * them unlikely, and a helper that binds late retries on EADDRINUSE where it can).
 */
export async function freePort(): Promise<number> {
	for (let attempt = 0; attempt < 100; attempt++) {
		const port = await bindZero();
		if (port > 0 && !handedOut.has(port)) {
			handedOut.add(port);
			return port;
		}
	}
	throw new Error('freePort: no fresh port after 100 tries');
}

/** A temporary directory (mode 0700) and a way to remove it with everything in it. */
export type TempDir = {readonly path: string; dispose(): Promise<void>};

/** Create a 0700 temporary directory under the OS temp dir, named `gpujup-<prefix>-XXXXXX`. */
export async function tempDir(prefix: string): Promise<TempDir> {
	const safe = prefix.replaceAll(/[^\w.-]/g, '_');
	const dir = await mkdtemp(path.join(os.tmpdir(), `gpujup-${safe}-`));
	await chmod(dir, 0o700);
	return {
		path: dir,
		async dispose() {
			await rm(dir, {recursive: true, force: true, maxRetries: 3});
		},
	};
}
