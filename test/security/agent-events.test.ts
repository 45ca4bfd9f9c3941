/**
 * Control messages are decoded at the boundary: an agent (or whatever answers on its socket on the
 * GPU host) that sends events of another shape, unknown events, or lines that are not JSON gets
 * them dropped with a note — the host hop stays up and good events still arrive.
 */
import {mkdir} from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import type {GpujupProcess} from '../e2e/gpujup-process.js';
import {
	connectArgs,
	isHopState,
	spawn,
	startChain,
	stopGpujup,
	waitLineAfter,
	waitReady,
	type Chain,
} from '../faults/fixture.js';

/** One round of bad lines: wrong shapes, an unknown type, not JSON, not an object. */
const malformed = [
	{v: 1, event: {type: 'gpu', gpus: 'all of them', processes: [], error: null, at: 'now'}},
	{v: 1, event: {type: 'gpu', gpus: [{index: 'zero'}], processes: null, at: 'now'}},
	{v: 1, event: {type: 'hop', hop: 'host', state: 'exploded', at: 'now'}},
	{v: 1, event: {type: 'jupyter', state: 'running', pid: 'one', at: 'now'}},
	{v: 1, event: {type: 'host', cpuPercent: 'lots', at: 'now'}},
	{v: 1, event: {type: 'log', line: 42, at: 'now'}},
	{v: 1, event: {type: 'teleport', at: 'now'}},
	{v: 1, event: 5},
	{v: 1, event: null},
]
	.map((message) => JSON.stringify(message))
	.concat(['this is not json', '[1,2,3]', '"a string"']);

const rounds = 80;

/**
 * A stand-in for `gpujup host`'s socket on the GPU host: answers `token` and `subscribe`, then
 * floods the subscriber with {@link malformed} lines every 50 ms (4 s in all), with a good log
 * event after each round and `AGENT-DONE` at the end.
 */
async function startHostileAgent(socketPath: string, jupyterPort: number): Promise<net.Server> {
	await mkdir(path.dirname(socketPath), {recursive: true, mode: 0o700});
	const server = net.createServer((socket) => {
		socket.on('error', () => {});
		let buffer = '';
		let flood: NodeJS.Timeout | undefined;
		socket.on('close', () => clearInterval(flood));
		socket.setEncoding('utf8');
		socket.on('data', (chunk: string) => {
			buffer += chunk;
			const lines = buffer.split('\n');
			buffer = lines.pop() ?? '';
			for (const line of lines) {
				const request = JSON.parse(line) as {id: number; op: string};
				const result = request.op === 'token' ? {token: 'f'.repeat(48), port: jupyterPort} : null;
				socket.write(JSON.stringify({v: 1, id: request.id, ok: true, result}) + '\n');
				if (request.op !== 'subscribe') continue;
				let round = 0;
				flood = setInterval(() => {
					round++;
					const good = {type: 'log', source: 'jupyter', line: `good line ${round}`, at: 'now'};
					const done = {type: 'log', source: 'jupyter', line: 'AGENT-DONE', at: 'now'};
					socket.write(
						[...malformed, JSON.stringify({v: 1, event: round < rounds ? good : done})]
							.map((l) => `${l}\n`)
							.join(''),
					);
					if (round >= rounds) clearInterval(flood);
				}, 50);
			}
		});
	});
	await new Promise<void>((resolve) => server.listen(socketPath, resolve));
	return server;
}

describe('an agent that sends malformed control messages (real OpenSSH)', () => {
	let chain: Chain;
	let agent: net.Server;

	beforeAll(async () => {
		chain = await startChain({jupyter: false});
		const state = chain.lab.gpuEnv().XDG_STATE_HOME!;
		agent = await startHostileAgent(
			path.join(state, 'gpujup', 'default', 'host.sock'),
			chain.jupyterPort,
		);
	});

	afterAll(async () => {
		await new Promise<void>((resolve) => {
			if (!agent) resolve();
			else agent.close(() => resolve());
		});
		await chain?.dispose();
	});

	it('drops them with a rate-limited note; the host hop stays up and good events still arrive', async () => {
		let proc: GpujupProcess | undefined;
		try {
			proc = spawn(connectArgs(chain.lab, {jupyterPort: chain.jupyterPort}), chain.lab.env());
			await waitReady(proc, ['relay', 'host']);
			const readyAt = proc.lines.findIndex(isHopState('host', 'ready'));
			await waitLineAfter(
				proc,
				0,
				(line) => line.type === 'log' && line['line'] === 'AGENT-DONE',
				60_000,
				'the last good event after the flood',
			);
			const after = proc.lines.slice(readyAt + 1);
			// Not one hop change since the host hop came up: no loss, no reconnect.
			expect(after.filter((line) => line.type === 'hop')).toEqual([]);
			const good = after.filter(
				(line) => line.type === 'log' && String(line['line']).startsWith('good line'),
			);
			expect(good).toHaveLength(rounds - 1);
			// 80 rounds of 12 bad lines in 4 s: a note at once, the rest counted later, not 960 notes.
			const notes = proc.lines.filter(
				(line) => line.type === 'log' && String(line['line']).includes('agent: dropped'),
			);
			expect(notes.length).toBeGreaterThanOrEqual(1);
			expect(notes.length).toBeLessThanOrEqual(2);
			expect(String(notes[0]!['line'])).toMatch(/gpus should be an array/);
		} finally {
			await stopGpujup(proc);
		}
	});
});
