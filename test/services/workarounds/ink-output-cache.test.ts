import {describe, expect, it} from 'vitest';
import {
	inkOutputCacheStatus,
	probe,
	probeOutputClass,
	shareInkOutputCaches,
} from '../../../source/services/workarounds/ink-output-cache.js';

type Output = {
	caches: unknown;
	write(x: number, y: number, text: string, options: object): void;
	get(): unknown;
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

	it('shares the caches across frames once applied, and says so', async () => {
		expect(await shareInkOutputCaches()).toMatchObject({active: true});
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
