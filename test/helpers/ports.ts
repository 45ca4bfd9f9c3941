import {mkdtemp, rm, chmod} from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const handedOut = new Set<number>();

const tryBind = async (port: number): Promise<boolean> =>
	new Promise((resolve) => {
		const server = net.createServer();
		server.unref();
		server.once('error', () => resolve(false));
		server.listen({host: '127.0.0.1', port, exclusive: true}, () => {
			server.close(() => resolve(true));
		});
	});

/**
 * Ports come from below the kernel's ephemeral range (32768+ here), so no outgoing connection of
 * any process can take one between the test's check and its server's bind, and each vitest
 * worker has a slice of its own, so two workers never hand out the same port.
 */
const worker = Number(process.env['VITEST_POOL_ID'] ?? process.env['VITEST_WORKER_ID'] ?? 0);
const workerSlot = Number.isFinite(worker) ? worker : process.pid;
// GPUJUP_TEST_SLOT (0–9) gives runs of the suite side by side (one per checkout) slices of
// their own: 1000 ports per worker, two workers per slot.
const runSlot = Number(process.env['GPUJUP_TEST_SLOT'] ?? Number.NaN);
const sliceSize = Number.isInteger(runSlot) ? 1000 : 5000;
const sliceStart = Number.isInteger(runSlot)
	? 10_000 + ((runSlot % 10) * 2 + (workerSlot % 2)) * sliceSize
	: 10_000 + (workerSlot % 4) * sliceSize;
let next = Math.floor(Math.random() * sliceSize);

/**
 * A TCP port on 127.0.0.1 that was free a moment ago, from this process's slice; never the same
 * one twice in a process.
 */
export async function freePort(): Promise<number> {
	for (let attempt = 0; attempt < sliceSize; attempt++) {
		const port = sliceStart + (next++ % sliceSize);
		if (handedOut.has(port)) continue;

		if (await tryBind(port)) {
			handedOut.add(port);
			return port;
		}
	}

	throw new Error('freePort: no free port left in this worker’s slice');
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
