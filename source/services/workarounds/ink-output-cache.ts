/**
 * Ink measures and tokenizes every line of every frame afresh: its caches live in one frame's
 * Output object. A dashboard redrawn each second repeats most of its lines (borders, labels, the
 * log), so sharing those caches across frames cuts the cost of a frame by about a third.
 *
 * Measured against Ink's public options (bench idle row, 4 GPUs at 1 Hz, 160×48, 3 runs, 2 cores,
 * 2026-12-03): with the patch 2.69 % of a core and 121 MB; without it 3.23 % and 136 MB; with
 * `incrementalRendering` instead (it only writes fewer bytes, every frame is still built whole)
 * 2.79 %. It still pays.
 *
 * Then Output.get() turns the grid of styled cells back into one string per row, diffing the
 * styles of each cell with its neighbour's (three Sets and four arrays a cell: 7680 cells a frame
 * at 160×48, most of the dashboard's garbage). With the caches shared, a row whose cells are the
 * very objects of the last frame's row prints the same string, so the row get() below reuses it,
 * and builds a changed row diffing only where the style changes (a neighbour with the same codes
 * needs none). It is Ink 6.8's get() otherwise, line for line; frames that clip horizontally
 * (slice-ansi, which gpujup's panes do not use) go to Ink's own get().
 *
 * This reaches into Ink's build (`build/output.js`: the Output class, its `caches`, `operations`
 * and `get()`) and its tokenizer (`@alcalzone/ansi-tokenize`), pinned to 6.8 in package.json.
 * The probe draws a small scene with both get()s and uses the row get() only when they agree;
 * when the Output's shape changed, Ink renders as shipped (each frame measures afresh).
 */
import {createRequire} from 'node:module';
import {pathToFileURL} from 'node:url';
import type {WorkaroundObject} from '../../core/events.js';

export const name = 'ink-output-cache';

type OutputCaches = {widths?: unknown; styledChars?: unknown};
type OutputLike = {caches?: OutputCaches; write?: unknown};
type OutputClass = {
	new (options: {width: number; height: number}): OutputLike;
	prototype: {get?: (this: OutputLike) => unknown};
};

/** Entries kept before the shared caches start over, so they cannot grow without bound. */
const maxEntries = 1500;

const sizeOf = (caches: OutputCaches | undefined) =>
	(caches?.widths instanceof Map ? caches.widths.size : 0) +
	(caches?.styledChars instanceof Map ? caches.styledChars.size : 0);

/**
 * Whether Ink's Output still works as the patch expects: `get()` on its prototype, a `caches`
 * object with `widths` and `styledChars` Maps, and `get()` filling the caches the object holds
 * when it runs (so caches swapped in before are the ones used).
 */
export function probeOutputClass(Output: unknown): WorkaroundObject {
	const off = (why: string): WorkaroundObject => ({
		name,
		active: false,
		detail: `${why}: Ink renders as shipped (each frame measured afresh)`,
	});
	if (typeof Output !== 'function') return off("ink's build/output.js no longer exports a class");
	const candidate = Output as OutputClass;
	const get = candidate.prototype.get;
	if (typeof get !== 'function')
		return off("ink's build/output.js no longer exports an Output class with get()");
	try {
		const first = new candidate({width: 8, height: 1});
		const second = new candidate({width: 8, height: 1});
		const swapped = second.caches;
		if (!(swapped?.widths instanceof Map) || !(swapped.styledChars instanceof Map))
			return off("ink's Output has no caches.widths / caches.styledChars Maps");
		first.caches = swapped;
		if (typeof first.write !== 'function') return off("ink's Output has no write()");
		(first.write as (x: number, y: number, text: string, options: object) => void)(0, 0, 'gpujup', {
			transformers: [],
		});
		get.call(first);
		if (sizeOf(swapped) === 0) return off("ink's Output.get() no longer fills this.caches");
	} catch (error) {
		return off(`ink's Output did not run as expected (${(error as Error).message})`);
	}
	return {name, active: true, detail: "Ink's line caches shared across frames"};
}

// ---------------------------------------------------------------------------------------------
// The row get(): Ink 6.8's Output.get(), reusing the rows that did not change

type AnsiCode = {type: 'ansi'; code: string; endCode: string};
type Cell = {type: 'char'; value: string; fullWidth: boolean; styles: AnsiCode[]};
type Clip = {x1?: number; x2?: number; y1?: number; y2?: number};
type Operation =
	| {type: 'write'; x: number; y: number; text: string; transformers: Transformer[]}
	| {type: 'clip'; clip: Clip}
	| {type: 'unclip'};
type Transformer = (line: string, index: number) => string;
type FrameOutput = {
	width: number;
	height: number;
	operations: Operation[];
	caches: {getStyledChars(line: string): Cell[]; getStringWidth(text: string): number};
};
type Frame = {output: string; height: number};
/** The two functions of Ink's tokenizer that Ink's get() turns a row into a string with. */
export type AnsiTokenize = {
	ansiCodesToString(codes: AnsiCode[]): string;
	diffAnsiCodes(from: AnsiCode[], to: AnsiCode[]): AnsiCode[];
};
type Get = (this: FrameOutput) => Frame;

/** Same codes in the same order: diffAnsiCodes gives [] for these (nothing to undo, nothing new). */
const sameCodes = (a: AnsiCode[], b: AnsiCode[]) => {
	if (a === b) return true;
	if (a.length !== b.length) return false;
	for (let i = 0; i < a.length; i++)
		if (a[i]!.code !== b[i]!.code || a[i]!.endCode !== b[i]!.endCode) return false;
	return true;
};

/**
 * A get() for Ink's Output that keeps the last frame's rows: `inkGet` is Ink's own, for the frames
 * this one leaves to it (horizontal clips).
 */
export function rowReusingGet(lib: AnsiTokenize, inkGet: Get): Get {
	// Never written to: Ink's get() only replaces cells. Made as the tokenizer makes its cells
	// ({...token, styles}), so a row's cells share one shape and the loops stay monomorphic.
	const space = {type: 'char', value: ' ', fullWidth: false} as const;
	const blank: Cell = {...space, styles: []};
	/** The empty cell after a wide character, one per character object (so rows stay equal). */
	const fillers = new Map<Cell, Cell>();
	/**
	 * Each cell's width (Ink's `Math.max(1, stringWidth(value))`) for a line's cached cells, or null
	 * when every cell is one column (most lines): measured once per line, not per cell per frame.
	 * Kept for the caches the cells came from: when those start over, so does this.
	 */
	const widthsByLine = new Map<Cell[], Uint8Array | null>();
	let cachesSeen: unknown;
	const widthsOf = (characters: Cell[], caches: FrameOutput['caches']) => {
		if (caches !== cachesSeen || widthsByLine.size >= maxEntries) {
			cachesSeen = caches;
			widthsByLine.clear();
			fillers.clear();
		}
		let widths = widthsByLine.get(characters);
		if (widths === undefined) {
			const measured = characters.map((c) => Math.max(1, caches.getStringWidth(c.value)));
			widths = measured.some((w) => w !== 1) ? Uint8Array.from(measured) : null;
			widthsByLine.set(characters, widths);
		}
		return widths;
	};
	let lastRows: Array<Array<Cell | undefined>> = [];
	let lastStrings: string[] = [];

	/** styledCharsToString, diffing styles only where they change. */
	const rowString = (chars: Cell[]): string => {
		let ret = '';
		for (let i = 0; i < chars.length; i++) {
			const char = chars[i]!;
			if (i === 0) ret += lib.ansiCodesToString(char.styles);
			else {
				const before = chars[i - 1]!.styles;
				if (!sameCodes(before, char.styles))
					ret += lib.ansiCodesToString(lib.diffAnsiCodes(before, char.styles));
			}
			ret += char.value;
			if (i === chars.length - 1) ret += lib.ansiCodesToString(lib.diffAnsiCodes(char.styles, []));
		}
		return ret;
	};

	return function (this: FrameOutput): Frame {
		for (const operation of this.operations)
			if (
				operation.type === 'clip' &&
				typeof operation.clip.x1 === 'number' &&
				typeof operation.clip.x2 === 'number'
			)
				return inkGet.call(this);
		const output: Array<Array<Cell | undefined>> = [];
		for (let y = 0; y < this.height; y++) output.push(new Array<Cell>(this.width).fill(blank));
		const clips: Clip[] = [];
		for (const operation of this.operations) {
			if (operation.type === 'clip') clips.push(operation.clip);
			if (operation.type === 'unclip') clips.pop();
			if (operation.type !== 'write') continue;
			const {text, transformers} = operation;
			let {y} = operation;
			const {x} = operation;
			let lines = text.split('\n');
			const clip = clips.at(-1);
			if (clip && typeof clip.y1 === 'number' && typeof clip.y2 === 'number') {
				const height = lines.length;
				if (y + height < clip.y1 || y > clip.y2) continue;
				const from = y < clip.y1 ? clip.y1 - y : 0;
				const to = y + height > clip.y2 ? clip.y2 - y : height;
				lines = lines.slice(from, to);
				if (y < clip.y1) y = clip.y1;
			}
			let offsetY = 0;
			for (const [index, raw] of lines.entries()) {
				const currentLine = output[y + offsetY];
				if (!currentLine) continue;
				let line = raw;
				for (const transformer of transformers) line = transformer(line, index);
				const characters = this.caches.getStyledChars(line);
				let offsetX = x;
				const widths = widthsOf(characters, this.caches);
				if (!widths) {
					// Every character one column wide: Ink's loop below, without a measure per cell.
					for (const character of characters) currentLine[offsetX++] = character;
					offsetY++;
					continue;
				}
				for (const [index, character] of characters.entries()) {
					currentLine[offsetX] = character;
					const characterWidth = widths[index]!;
					if (characterWidth > 1) {
						let filler = fillers.get(character);
						if (!filler) {
							const empty = {type: 'char', value: '', fullWidth: false} as const;
							filler = {...empty, styles: character.styles};
							fillers.set(character, filler);
						}
						for (let k = 1; k < characterWidth; k++) currentLine[offsetX + k] = filler;
					}
					offsetX += characterWidth;
				}
				offsetY++;
			}
		}
		// Plain loops: no closures made per frame.
		const strings: string[] = [];
		for (let y = 0; y < output.length; y++) {
			const line = output[y]!;
			const last = lastRows[y];
			let same = last !== undefined && last.length === line.length;
			for (let i = 0; same && i < line.length; i++) same = line[i] === last![i];
			if (same) {
				strings.push(lastStrings[y]!);
				continue;
			}
			const cells: Cell[] = [];
			for (const item of line) if (item !== undefined) cells.push(item);
			strings.push(rowString(cells).trimEnd());
		}
		lastRows = output;
		lastStrings = strings;
		return {output: strings.join('\n'), height: output.length};
	};
}

type ProbeOutput = OutputLike & {
	write(x: number, y: number, text: string, options: {transformers: Transformer[]}): void;
	clip(clip: Clip): void;
	unclip(): void;
};

/** Two frames of a small scene (styles, wide characters, a transformer, a vertical clip). */
const scene = (frame: number) => (output: ProbeOutput) => {
	const red: Transformer = (line) => `\u001B[31m${line}\u001B[39m`;
	output.write(0, 0, `plain ascii ${frame}`, {transformers: []});
	output.write(2, 1, '\u001B[1m\u001B[32mbold green\u001B[39m\u001B[22m ─━┃ ▁▂█ · →', {
		transformers: [],
	});
	output.write(5, 0, 'XY', {transformers: []});
	output.write(0, 2, '全角 wide 😀 emoji', {transformers: [red]});
	output.clip({y1: 3, y2: 5});
	output.write(1, 2, ['a', 'b', frame ? 'c2' : 'c', 'd', 'e'].join('\n'), {transformers: [red]});
	output.unclip();
	output.write(
		0,
		6,
		'\u001B[2mdim\u001B[22m\u001B[1mbold\u001B[22m\u001B[2m\u001B[1mboth\u001B[22m',
		{
			transformers: [],
		},
	);
	output.write(18, 7, 'past the edge', {transformers: []});
};

/**
 * Whether `get` draws what Ink's own `inkGet` draws on this install, over two frames with the
 * caches shared (the second reusing rows): null when it does, else why not.
 */
export function probeRowReuse(Output: unknown, get: Get, inkGet: Get): string | null {
	const Class = Output as new (options: {width: number; height: number}) => ProbeOutput;
	let shared: OutputCaches | undefined;
	try {
		for (const frame of [0, 1, 1]) {
			const frames = [get, inkGet].map((draw) => {
				const output = new Class({width: 20, height: 8});
				if (shared) output.caches = shared;
				else shared = output.caches;
				scene(frame)(output);
				return draw.call(output as unknown as FrameOutput);
			});
			const [ours, ink] = frames as [Frame, Frame];
			if (ours.output !== ink.output || ours.height !== ink.height)
				return "ink's Output.get() draws a frame the row get() does not";
		}
	} catch (error) {
		return `ink's Output did not run as the row get() expects (${(error as Error).message})`;
	}
	return null;
}

async function loadTokenizer(): Promise<AnsiTokenize> {
	return (await import('@alcalzone/ansi-tokenize')) as unknown as AnsiTokenize;
}

let applied: WorkaroundObject | undefined;

async function loadOutputClass(): Promise<unknown> {
	// Resolved as a CommonJS module would (the built CLI is one); Ink's exports allow it.
	const entry = pathToFileURL(createRequire(import.meta.url).resolve('ink'));
	const module = (await import(new URL('output.js', entry).href)) as {default?: unknown};
	return module.default;
}

const sharedDetail = "Ink's line caches shared across frames";

/**
 * The whole verdict for this install's Output: the shared caches (probeOutputClass), and with them
 * the row get() when it draws as Ink's does; `get` is the get() to install (null: Ink's own).
 */
async function examine(Output: unknown): Promise<{verdict: WorkaroundObject; get: Get | null}> {
	const verdict = probeOutputClass(Output);
	if (!verdict.active) return {verdict, get: null};
	const inkGet = (Output as OutputClass).prototype.get as unknown as Get;
	const lib = await loadTokenizer().catch(() => undefined);
	const why = lib
		? probeRowReuse(Output, rowReusingGet(lib, inkGet), inkGet)
		: "@alcalzone/ansi-tokenize (Ink's tokenizer) did not load";
	if (why)
		return {
			verdict: {...verdict, detail: `${sharedDetail}; rows rebuilt each frame (${why})`},
			get: null,
		};
	return {
		verdict: {...verdict, detail: `${sharedDetail}, rows unchanged since the last frame reused`},
		get: rowReusingGet(lib!, inkGet),
	};
}

/** This install's Ink, probed (loads Ink's output module, not Ink itself). */
export async function probe(): Promise<WorkaroundObject> {
	// Once patched, get() is ours: the verdict that allowed it stands.
	if (applied) return applied;
	try {
		return (await examine(await loadOutputClass())).verdict;
	} catch (error) {
		return {
			name,
			active: false,
			detail: `ink's build/output.js did not load (${(error as Error).message}): Ink renders as shipped`,
		};
	}
}

/** Frames drawn through the patched get(): none means Ink renders with another Output. */
let framesSeen = 0;

/** The patch as this process has it: applied with the dashboard, or why not. */
export function inkOutputCacheStatus(): WorkaroundObject {
	if (!applied)
		return {
			name,
			active: false,
			detail: 'no dashboard drawn in this process (--no-tui, or not yet)',
		};
	if (applied.active && framesSeen === 0)
		return {
			name,
			active: false,
			detail:
				'patched, but no frame went through it yet (a second copy of Ink, e.g. a bundled one?): Ink renders as shipped',
		};
	return applied;
}

/**
 * Shares Ink's caches across frames, and reuses unchanged rows, when the probe finds Ink as
 * expected; says what it did. `InkOutput`: the Output class of the Ink that draws (the dashboard
 * bundle's own copy); by default the one in node_modules.
 */
export async function shareInkOutputCaches(InkOutput?: unknown): Promise<WorkaroundObject> {
	if (applied) return applied;
	const Output = InkOutput ?? (await loadOutputClass().catch(() => undefined));
	const {verdict, get: rowGet} = await examine(Output);
	applied = verdict;
	if (!verdict.active) return verdict;
	const prototype = (Output as OutputClass).prototype;
	const get = (rowGet ?? prototype.get!) as (this: OutputLike) => unknown;
	let shared: OutputCaches | undefined;
	prototype.get = function (this: OutputLike) {
		framesSeen++;
		if (shared && sizeOf(shared) < maxEntries) this.caches = shared;
		else shared = this.caches;
		return get.call(this);
	};
	return verdict;
}
