#!/usr/bin/env node
/**
 * The README's screenshots: `node dist/cli.js demo` (with the Jupyter stand-in and its simulated
 * notebooks) in a private tmux server (160×48 and 80×24), captured with its colours (`tmux capture-pane -e -p`) once the hops are up and the simulated
 * GPUs have a few seconds of history, rendered to SVG (monospace text, one <tspan> per colour
 * run, the terminal's 16/256/RGB colours mapped onto a dark palette) in media/, and to PNG too
 * when `rsvg-convert` (Debian: librsvg2-bin) is there.
 *
 *     npm run build && node scripts/screenshot.mjs
 *
 * Needs tmux. Touches nothing outside media/ and its own temp dir.
 */
import {execFile, execFileSync} from 'node:child_process';
import {mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';
import {setTimeout as delay} from 'node:timers/promises';
import {fileURLToPath} from 'node:url';
import {promisify} from 'node:util';

const execFileP = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(root, 'dist', 'cli.js');
const media = path.join(root, 'media');

/** VS Code's dark terminal palette: the 16 ANSI colours, default text and background. */
const palette16 = [
	'#000000',
	'#cd3131',
	'#0dbc79',
	'#e5e510',
	'#2472c8',
	'#bc3fbc',
	'#11a8cd',
	'#e5e5e5',
	'#666666',
	'#f14c4c',
	'#23d18b',
	'#f5f543',
	'#3b8eea',
	'#d670d6',
	'#29b8db',
	'#ffffff',
];
const defaultFg = '#cccccc';
const defaultBg = '#1e1e1e';

const hex = (n) => n.toString(16).padStart(2, '0');

/** xterm's 256 colours: the 16 above, the 6×6×6 cube, 24 greys. */
function colour256(n) {
	if (n < 16) return palette16[n];
	if (n < 232) {
		const level = (v) => (v === 0 ? 0 : 55 + v * 40);
		const i = n - 16;
		return `#${hex(level(Math.floor(i / 36)))}${hex(level(Math.floor(i / 6) % 6))}${hex(level(i % 6))}`;
	}
	const grey = 8 + (n - 232) * 10;
	return `#${hex(grey)}${hex(grey)}${hex(grey)}`;
}

const plain = () => ({
	fg: null,
	bg: null,
	bold: false,
	dim: false,
	italic: false,
	underline: false,
	strike: false,
	reverse: false,
	hidden: false,
});

/** Apply one SGR sequence's parameters to `state`. */
function applySgr(state, text) {
	const params = text === '' ? [0] : text.split(/[;:]/).map((p) => (p === '' ? 0 : Number(p)));
	for (let i = 0; i < params.length; i++) {
		const p = params[i];
		if (p === 0) Object.assign(state, plain());
		else if (p === 1) state.bold = true;
		else if (p === 2) state.dim = true;
		else if (p === 3) state.italic = true;
		else if (p === 4) state.underline = true;
		else if (p === 7) state.reverse = true;
		else if (p === 8) state.hidden = true;
		else if (p === 9) state.strike = true;
		else if (p === 21 || p === 22) {
			state.bold = false;
			state.dim = false;
		} else if (p === 23) state.italic = false;
		else if (p === 24) state.underline = false;
		else if (p === 27) state.reverse = false;
		else if (p === 28) state.hidden = false;
		else if (p === 29) state.strike = false;
		else if (p >= 30 && p <= 37) state.fg = palette16[p - 30];
		else if (p >= 90 && p <= 97) state.fg = palette16[p - 90 + 8];
		else if (p === 39) state.fg = null;
		else if (p >= 40 && p <= 47) state.bg = palette16[p - 40];
		else if (p >= 100 && p <= 107) state.bg = palette16[p - 100 + 8];
		else if (p === 49) state.bg = null;
		else if (p === 38 || p === 48) {
			const key = p === 38 ? 'fg' : 'bg';
			if (params[i + 1] === 5) {
				state[key] = colour256(params[i + 2] ?? 0);
				i += 2;
			} else if (params[i + 1] === 2) {
				// `38;2;r;g;b`, or the colon form with a colour-space id: `38:2::r:g:b`.
				const rest = params.slice(i + 2);
				const rgb = rest.length >= 4 && text.includes(':') ? rest.slice(1, 4) : rest.slice(0, 3);
				state[key] = `#${rgb.map((v) => hex(v ?? 0)).join('')}`;
				i += 1 + (rest.length >= 4 && text.includes(':') ? 4 : 3);
			}
		}
	}
}

/** One captured row → cells: {char, style} per column (wide characters take two columns). */
function parseRow(line) {
	const cells = [];
	const state = plain();
	// SGR sequences; any other escape (OSC 8 hyperlinks, charset switches) is dropped.
	const token =
		// eslint-disable-next-line no-control-regex
		/\u001B\[([0-9;:]*)m|\u001B\][^\u0007\u001B]*(?:\u0007|\u001B\\)|\u001B[()][0-9A-Za-z]|\u001B\[[0-9;?]*[A-Za-z]|([^\u001B])/gu;
	for (const match of line.matchAll(token)) {
		if (match[1] !== undefined) applySgr(state, match[1]);
		else if (match[2] !== undefined) {
			const char = match[2];
			cells.push({char, style: {...state}});
			if (isWide(char)) cells.push({char: '', style: {...state}});
		}
	}
	return cells;
}

/** East Asian wide and emoji code points (enough for what a dashboard prints). */
function isWide(char) {
	const cp = char.codePointAt(0) ?? 0;
	return (
		(cp >= 0x1100 && cp <= 0x115f) ||
		(cp >= 0x2e80 && cp <= 0xa4cf) ||
		(cp >= 0xac00 && cp <= 0xd7a3) ||
		(cp >= 0xf900 && cp <= 0xfaff) ||
		(cp >= 0xfe30 && cp <= 0xfe4f) ||
		(cp >= 0xff00 && cp <= 0xff60) ||
		(cp >= 0xffe0 && cp <= 0xffe6) ||
		(cp >= 0x1f300 && cp <= 0x1faff) ||
		(cp >= 0x20000 && cp <= 0x3fffd)
	);
}

const escapeXml = (text) =>
	text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');

const sameStyle = (a, b) => Object.keys(a).every((key) => a[key] === b[key]);

/** Colours a cell is drawn with, after reverse video. */
function colours(style) {
	const fg = style.fg ?? defaultFg;
	const bg = style.bg;
	return style.reverse ? {fg: bg ?? defaultBg, bg: fg} : {fg, bg};
}

/** The captured screen (rows with SGR sequences) as an SVG document. */
export function renderSvg(rows, {columns, title}) {
	const fontSize = 14;
	const cell = 8.43; // DejaVu Sans Mono / Menlo advance at 14 px (0.602 em)
	const lineHeight = 17;
	const pad = 14;
	const bar = 28;
	const width = Math.ceil(columns * cell + pad * 2);
	const height = Math.ceil(rows.length * lineHeight + pad * 2 + bar);
	const backgrounds = [];
	const texts = [];
	rows.forEach((line, row) => {
		const cells = parseRow(line);
		const top = bar + pad + row * lineHeight;
		const baseline = top + lineHeight - 4.5;
		// Runs of one style.
		const runs = [];
		cells.forEach((c, col) => {
			const last = runs.at(-1);
			if (last && sameStyle(last.style, c.style)) {
				last.text += c.char;
				last.cols += 1;
			} else {
				runs.push({col, cols: 1, style: c.style, text: c.char});
			}
		});
		const spans = [];
		for (const run of runs) {
			const {fg, bg} = colours(run.style);
			const x = pad + run.col * cell;
			if (bg) {
				backgrounds.push(
					`<rect x="${x.toFixed(2)}" y="${top}" width="${(run.cols * cell).toFixed(2)}" height="${lineHeight}" fill="${bg}"/>`,
				);
			}
			if (run.style.hidden || run.text.trim() === '') continue;
			// Leading spaces become an offset, so that every tspan starts on its own glyph.
			const lead = run.text.length - run.text.trimStart().length;
			const attrs = [`x="${(x + lead * cell).toFixed(2)}"`, `fill="${fg}"`];
			if (run.style.bold) attrs.push('font-weight="bold"');
			if (run.style.dim) attrs.push('fill-opacity="0.6"');
			if (run.style.italic) attrs.push('font-style="italic"');
			const decoration = [run.style.underline && 'underline', run.style.strike && 'line-through']
				.filter(Boolean)
				.join(' ');
			if (decoration) attrs.push(`text-decoration="${decoration}"`);
			spans.push(`<tspan ${attrs.join(' ')}>${escapeXml(run.text.trim())}</tspan>`);
		}
		if (spans.length > 0) texts.push(`<text y="${baseline.toFixed(1)}">${spans.join('')}</text>`);
	});
	const dots = ['#ff5f57', '#febc2e', '#28c840']
		.map((fill, i) => `<circle cx="${pad + 6 + i * 20}" cy="${bar / 2 + 2}" r="6" fill="${fill}"/>`)
		.join('');
	return [
		`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeXml(title)}">`,
		`<title>${escapeXml(title)}</title>`,
		`<rect width="${width}" height="${height}" rx="8" fill="${defaultBg}"/>`,
		dots,
		`<text x="${width / 2}" y="${bar / 2 + 6}" text-anchor="middle" font-family="sans-serif" font-size="12" fill="#8a8a8a">${escapeXml(title)}</text>`,
		...backgrounds,
		`<g font-family="'DejaVu Sans Mono', Menlo, Consolas, 'Liberation Mono', monospace" font-size="${fontSize}" xml:space="preserve">`,
		...texts,
		'</g>',
		'</svg>',
		'',
	].join('\n');
}

/** Poll `fn` until it returns a truthy value (or throw after `timeoutMs`). */
async function poll(fn, timeoutMs, what) {
	const deadline = Date.now() + timeoutMs;
	let last;
	while (Date.now() < deadline) {
		last = await fn();
		if (last && last.ok) return last;
		await delay(200);
	}
	throw new Error(`timed out waiting for ${what}; screen:\n${last?.screen ?? ''}`);
}

/** Run the demo at `columns`×`rows`, wait for a good moment, return the coloured capture. */
async function shoot(columns, rows, scratch) {
	const socket = `gpujup-shot-${process.pid}-${columns}x${rows}`;
	const home = path.join(scratch, `home-${columns}x${rows}`);
	await mkdir(home, {recursive: true, mode: 0o700});
	const env = {
		...process.env,
		HOME: home,
		XDG_CONFIG_HOME: path.join(home, '.config'),
		XDG_STATE_HOME: path.join(home, '.local', 'state'),
		XDG_DATA_HOME: path.join(home, '.local', 'share'),
		XDG_RUNTIME_DIR: path.join(home, 'run'),
		TERM: 'xterm-256color',
		CI: 'false',
		FORCE_COLOR: '2',
		// The stand-in, whose simulated notebooks fill the Notebooks pane (a real Jupyter has none).
		GPUJUP_DEMO_JUPYTER: 'stand-in',
	};
	delete env.NO_COLOR;
	delete env.TMUX;
	delete env.TMUX_PANE;
	const tmux = async (...args) =>
		(await execFileP('tmux', ['-L', socket, ...args], {env, maxBuffer: 16 << 20})).stdout;
	await tmux(
		'-f',
		'/dev/null',
		'start-server',
		';',
		'set',
		'-s',
		'exit-empty',
		'off',
		';',
		'set',
		'-g',
		'default-terminal',
		'xterm-256color',
		';',
		'set',
		'-g',
		'status',
		'off',
		';',
		'set',
		'-g',
		'remain-on-exit',
		'on',
		';',
		'new-session',
		'-d',
		'-s',
		'main',
		'-x',
		String(columns),
		'-y',
		String(rows),
		'--',
		process.execPath,
		cli,
		'demo',
	);
	try {
		// Hops up for a few seconds, so that the GPU sparklines have some history.
		await poll(
			async () => {
				const screen = await tmux('capture-pane', '-p', '-t', 'main');
				const up = /hops up · (?:(\d+)s|\d+m)/.exec(screen);
				const gpus = /simulated|GPU0/.test(screen) && /\d+%/.test(screen);
				// The notebooks with their GPU memory (the training kernel's ramps up over 20 s).
				const notebooks = /llama-7b\S*\s+(?:python3\s+)?busy\s+\S+\s+(?:1: )?[3-9]\d\.\d GiB/.test(
					screen,
				);
				return {
					ok: up !== null && (up[1] === undefined || Number(up[1]) >= 20) && gpus && notebooks,
					screen,
				};
			},
			120_000,
			`the demo's hops and GPUs at ${columns}×${rows}`,
		);
		return (await tmux('capture-pane', '-e', '-p', '-t', 'main')).replace(/\n$/, '').split('\n');
	} finally {
		await tmux('send-keys', '-t', 'main', 'q').catch(() => '');
		await poll(
			async () => {
				const dead = await tmux('display', '-p', '-t', 'main', '#{pane_dead}').catch(() => '1');
				return {ok: dead.trim() === '1'};
			},
			15_000,
			'the demo to quit',
		).catch(() => undefined);
		await tmux('kill-server').catch(() => '');
	}
}

async function main() {
	const scratch = await mkdtemp(path.join(os.tmpdir(), 'gpujup-shot-'));
	await mkdir(media, {recursive: true});
	let rsvg = false;
	try {
		execFileSync('rsvg-convert', ['--version'], {stdio: 'ignore'});
		rsvg = true;
	} catch {
		process.stderr.write(
			'rsvg-convert not found: SVG only (Debian: apt-get install librsvg2-bin)\n',
		);
	}
	try {
		for (const [columns, rows] of [
			[160, 48],
			[80, 24],
		]) {
			const screen = await shoot(columns, rows, scratch);
			const name = `dashboard-${columns}x${rows}`;
			const svg = renderSvg(screen, {columns, title: `gpujup demo — ${columns}×${rows}`});
			const svgFile = path.join(media, `${name}.svg`);
			await writeFile(svgFile, svg);
			process.stdout.write(`${path.relative(root, svgFile)}\n`);
			if (rsvg) {
				const png = path.join(media, `${name}.png`);
				await execFileP('rsvg-convert', ['--zoom', '2', '-o', png, svgFile]);
				process.stdout.write(`${path.relative(root, png)}\n`);
			}
		}
	} finally {
		await rm(scratch, {recursive: true, force: true});
	}
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
	await main();
}
