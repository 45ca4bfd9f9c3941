import {Writable} from 'node:stream';
import {describe, expect, it} from 'vitest';
import {initialHop, initialState, reduce} from '../../source/core/app-state.js';
import {createStore} from '../../source/core/store.js';
import {formatEvent, startJsonWriter} from '../../source/services/json-writer.js';
import {waitFor} from '../helpers/wait-for.js';

/** A reader that takes nothing until `resume()`, then everything; it keeps what it got. */
class StalledReader extends Writable {
	text = '';
	#held: (() => void) | null = null;
	#flowing = false;

	override _write(chunk: Buffer, _encoding: string, callback: () => void): void {
		this.text += chunk.toString();
		if (this.#flowing) callback();
		else this.#held = callback;
	}

	resume(): void {
		this.#flowing = true;
		const held = this.#held;
		this.#held = null;
		held?.();
	}

	lines(): Array<Record<string, unknown>> {
		return this.text
			.split('\n')
			.filter(Boolean)
			.map((line) => JSON.parse(line) as Record<string, unknown>);
	}
}

const store = () =>
	createStore(
		reduce,
		initialState({role: 'connect', title: 't', hops: [initialHop('relay', 'relay')]}),
	);

describe('the --no-tui JSON writer', () => {
	it('escapes C1 controls and U+2028/2029 as \\uXXXX', () => {
		const line = formatEvent(
			{type: 'log', source: 'jupyter', line: 'a\u009B2Jb\u0085c\u2028d\u2029e'},
			new Date(0),
		);
		expect(line).toContain('a\\u009b2Jb\\u0085c\\u2028d\\u2029e');
		expect(line).not.toMatch(/[\u0080-\u009F\u2028\u2029]/);
		expect(JSON.parse(line)).toMatchObject({line: 'a\u009B2Jb\u0085c\u2028d\u2029e'});
	});

	it('bounds what waits for a stalled reader and counts the drops once it reads again', async () => {
		const s = store();
		const out = new StalledReader();
		const writer = startJsonWriter(s, out, {maxQueuedBytes: 64 * 1024});
		const total = 5000;
		for (let i = 0; i < total; i++)
			s.dispatch({type: 'log', lines: [`line ${i} ${'x'.repeat(200)}`]});
		expect(out.writableLength).toBeLessThan(64 * 1024 + 1024);
		s.dispatch({type: 'hop', hop: 'relay', patch: {state: 'ready'}});
		out.resume();
		const lines = await waitFor(() => {
			const all = out.lines();
			return all.some((l) => l['kind'] === 'overflow') ? all : undefined;
		});
		const overflow = lines.find((l) => l['kind'] === 'overflow')!;
		expect(overflow).toMatchObject({type: 'error', kind: 'overflow'});
		const dropped = Number(/(\d+) events dropped/.exec(String(overflow['message']))?.[1]);
		const logs = lines.filter((l) => l['type'] === 'log');
		// Every log line either came through or is counted; the hop change dropped meanwhile is
		// counted too, and the state after the count says where the hop is now.
		expect(logs.length + dropped).toBe(total + 1);
		const after = lines.slice(lines.indexOf(overflow) + 1);
		expect(after).toContainEqual(expect.objectContaining({type: 'hop', state: 'ready'}));
		writer.dispose();
	});

	it("a fleet host's writer puts its name on every line, the overflow count included", async () => {
		const s = store();
		const out = new StalledReader();
		const writer = startJsonWriter(s, out, {host: 'p508', maxQueuedBytes: 16 * 1024});
		for (let i = 0; i < 500; i++)
			s.dispatch({type: 'log', lines: [`line ${i} ${'x'.repeat(200)}`]});
		s.dispatch({type: 'hop', hop: 'relay', patch: {state: 'ready'}});
		out.resume();
		const lines = await waitFor(() => {
			const all = out.lines();
			return all.some((l) => l['kind'] === 'overflow') ? all : undefined;
		});
		expect(lines.filter((line) => line['host'] !== 'p508')).toEqual([]);
		expect(lines.map((line) => line['type'])).toEqual(
			expect.arrayContaining(['hop', 'log', 'error']),
		);
		writer.dispose();
	});

	it('a reader that went away (EPIPE) ends the writing quietly, once', () => {
		const s = store();
		let closed = 0;
		const out = new Writable({
			write(_chunk, _encoding, callback) {
				callback(Object.assign(new Error('write EPIPE'), {code: 'EPIPE'}));
			},
		});
		const writer = startJsonWriter(s, out, {
			onClosed() {
				closed++;
			},
		});
		s.dispatch({type: 'log', lines: ['one']});
		s.dispatch({type: 'log', lines: ['two']});
		return waitFor(() => (closed === 1 ? true : undefined)).then(() => {
			s.dispatch({type: 'log', lines: ['three']});
			expect(closed).toBe(1);
			writer.dispose();
		});
	});
});
