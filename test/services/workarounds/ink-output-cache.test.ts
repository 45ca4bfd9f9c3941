import {describe, expect, it} from 'vitest';
import * as ansiTokenize from '@alcalzone/ansi-tokenize';
import {
	inkOutputCacheStatus,
	probe,
	probeOutputClass,
	probeRowReuse,
	rowReusingGet,
	shareInkOutputCaches,
	type AnsiTokenize,
} from '../../../source/services/workarounds/ink-output-cache.js';

type Frame = {output: string; height: number};
type Output = {
	caches: unknown;
	write(
		x: number,
		y: number,
		text: string,
		options: {transformers: Array<(line: string, index: number) => string>},
	): void;
	clip(clip: {x1?: number; x2?: number; y1?: number; y2?: number}): void;
	unclip(): void;
	get(): Frame;
};
type OutputClass = new (options: {width: number; height: number}) => Output;

async function inkOutput(): Promise<OutputClass> {
	const module = (await import(new URL('output.js', import.meta.resolve('ink')).href)) as {
		default: OutputClass;
	};
	return module.default;
}

describe('ink-output-cache', () => {
	it("finds Ink's Output as the patch expects on this install (red after an upgrade that changes it)", async () => {
		expect(await probe()).toMatchObject({name: 'ink-output-cache', active: true});
		// The row get() draws as Ink's own does here.
		expect((await probe()).detail).toContain('rows unchanged since the last frame reused');
		expect(inkOutputCacheStatus()).toMatchObject({active: false});
		expect(inkOutputCacheStatus().detail).toContain('no dashboard');
	});

	it('is off where a future Ink keeps its caches elsewhere, or has no Output class', () => {
		// An Output whose get() measures through a cache of its own, not this.caches.
		class FutureOutput {
			caches = {widths: new Map(), styledChars: new Map()};
			readonly #lines: string[] = [];
			readonly #measured = new Map<string, number>();
			write(_x: number, _y: number, text: string) {
				this.#lines.push(text);
			}
			get() {
				for (const line of this.#lines) this.#measured.set(line, line.length);
				return {output: this.#lines.join('\n'), height: this.#lines.length};
			}
		}
		const verdict = probeOutputClass(FutureOutput);
		expect(verdict.active).toBe(false);
		expect(verdict.detail).toContain('no longer fills this.caches');
		expect(verdict.detail).toContain('Ink renders as shipped');
		expect(probeOutputClass(undefined).active).toBe(false);
		expect(probeOutputClass(class {}).detail).toContain('get()');
	});

	it("draws every frame as Ink's own get() does, reusing rows only where their cells are the last frame's", async () => {
		const Output = await inkOutput();
		const inkGet = Output.prototype.get as (this: Output) => Frame;
		const get = rowReusingGet(
			ansiTokenize as unknown as AnsiTokenize,
			inkGet as never,
		) as unknown as (this: Output) => Frame;
		const red = (line: string) => `\u001B[31m${line}\u001B[39m`;
		const bold = (line: string, index: number) => (index % 2 ? `\u001B[1m${line}\u001B[22m` : line);
		// Frames as the dashboard has them (borders, bars, a clock that changes, a log that scrolls),
		// and what it does not: a horizontal clip (Ink's own get() draws that one), a resize.
		const frames = Array.from({length: 12}, (_, frame) => (output: Output, width: number) => {
			output.write(0, 0, `┏ Path ${'━'.repeat(width - 9)}┓`, {transformers: [red]});
			output.write(0, 1, `┃ up ${frame}s  rtt 0.${frame % 3} ms`, {transformers: []});
			output.write(width - 1, 1, '┃', {transformers: [red]});
			output.write(2, 2, `util ${'█'.repeat(frame % 5)}▍ ${frame * 7}% ▁█▁█ · →`, {
				transformers: [bold],
			});
			output.write(0, 3, frame % 4 ? 'plain' : '全角 😀 wide', {transformers: []});
			output.clip({y1: 4, y2: 7});
			output.write(1, 3 - (frame % 3), ['a', 'b', `c${frame % 2}`, 'd', 'e', 'f'].join('\n'), {
				transformers: [bold, red],
			});
			output.unclip();
			if (frame === 7) {
				output.clip({x1: 2, x2: 6, y1: 0, y2: 9});
				output.write(0, 8, '\u001B[32mclipped sideways\u001B[39m', {transformers: []});
				output.unclip();
			}
			output.write(0, 8, '\u001B[2mdim\u001B[22m\u001B[1m\u001B[2mboth\u001B[22m', {
				transformers: [],
			});
			output.write(width - 3, 9, 'past the edge', {transformers: []});
		});
		let shared: unknown;
		let reused = 0;
		let last: string[] = [];
		for (const [index, draw] of frames.entries()) {
			const width = index < 9 ? 30 : 26;
			const [ours, ink] = [get, inkGet].map((fn) => {
				const output = new Output({width, height: 11});
				if (index === 5) shared = undefined; // the caches start over: new cells, rows rebuilt
				if (shared) output.caches = shared;
				else shared = output.caches;
				draw(output, width);
				return fn.call(output);
			}) as [Frame, Frame];
			expect(ours).toEqual(ink);
			const rows = ours.output.split('\n');
			reused += rows.filter((row, y) => row === last[y]).length;
			last = rows;
		}
		// Most rows repeat from frame to frame (the probe checks the rest on every start).
		expect(reused).toBeGreaterThan(40);
	});

	it('leaves a get() that draws otherwise than Ink unused, and says why', async () => {
		const Output = await inkOutput();
		const inkGet = Output.prototype.get as never;
		const withoutStyles: AnsiTokenize = {
			...(ansiTokenize as unknown as AnsiTokenize),
			ansiCodesToString: () => '',
		};
		expect(probeRowReuse(Output, rowReusingGet(withoutStyles, inkGet), inkGet)).toContain(
			'draws a frame the row get() does not',
		);
		const throwing = () => {
			throw new Error('no operations');
		};
		expect(probeRowReuse(Output, throwing, inkGet)).toContain('no operations');
		expect(probeRowReuse(Output, rowReusingGet(ansiTokenize as never, inkGet), inkGet)).toBeNull();
	});

	it('shares the caches across frames once applied, and says so', async () => {
		expect(await shareInkOutputCaches()).toMatchObject({active: true});
		expect((await shareInkOutputCaches()).detail).toContain('rows unchanged');
		// Not claimed before a frame went through the patched class (a second copy of Ink would not).
		expect(inkOutputCacheStatus()).toMatchObject({active: false});
		expect(inkOutputCacheStatus().detail).toContain('no frame went through it');
		const Output = await inkOutput();
		const first = new Output({width: 20, height: 1});
		first.write(0, 0, 'gpu 0  42%', {transformers: []});
		first.get();
		const second = new Output({width: 20, height: 1});
		second.write(0, 0, 'gpu 0  42%', {transformers: []});
		second.get();
		expect(second.caches).toBe(first.caches);
		expect(inkOutputCacheStatus()).toMatchObject({active: true});
	});
});
