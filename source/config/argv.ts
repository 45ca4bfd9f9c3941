/** The command line: flags and words by `node:util`'s parseArgs, the command and its aliases. */
import {readFileSync} from 'node:fs';
import {parseArgs} from 'node:util';
import {ConfigError} from './errors.js';
import {cliFlags, kebabCase} from './flags.js';
import {camelCase, closest} from './helpers.js';
import {type Command, commands, type Config} from './types.js';
import {show} from './values.js';

export type Flags = Record<string, unknown>;

/** `node:util`'s parseArgs options for {@link cliFlags}, by their kebab-case names. */
const parseOptions = Object.fromEntries(
	Object.entries(cliFlags).map(([key, flag]) => [
		kebabCase(key),
		{
			type: flag.type,
			...('shortFlag' in flag ? {short: flag.shortFlag} : {}),
			...('isMultiple' in flag ? {multiple: true} : {}),
		},
	]),
);

const isBooleanFlag = (name: string) => parseOptions[name]?.type === 'boolean';

/**
 * The version in package.json, read when asked: from dist/gpujup.cjs (the built CLI) or
 * source/config (tests), the package root is one or two folders up.
 */
function packageVersion(): string {
	for (const up of ['..', '../..']) {
		try {
			const file = new URL(`${up}/package.json`, import.meta.url);
			const json = JSON.parse(readFileSync(file, 'utf8')) as {name?: unknown; version?: unknown};
			if (json.name === 'gpujup') return String(json.version ?? 'unknown');
		} catch {
			// Not there from this layout: try the next.
		}
	}

	return 'unknown';
}

/**
 * The flags (camelCase keys, as cliFlags names them) and the words, by `node:util`'s parseArgs
 * (meow cost a fifth of the start-up). Unknown flags were refused by checkUnknownFlags already.
 * A boolean's `--no-` form sets it false; `--flag=true|false` is read as a boolean; a string flag
 * given with no value is ''; a flag that is no list given twice (but a boolean repeated) is refused.
 */
export function parseCommandLine(argv: readonly string[]): {
	flags: Flags;
	input: string[];
	version: string;
} {
	const end = argv.indexOf('--');
	const options = end === -1 ? argv : argv.slice(0, end);
	const negated = new Map<string, number>();
	const args = options.filter((token, index) => {
		const match = /^--no-([^=]+)$/.exec(token);
		if (!match || !isBooleanFlag(match[1]!)) return true;
		negated.set(match[1]!, index);
		return false;
	});
	const {values, positionals, tokens} = parseArgs({
		args: end === -1 ? args : [...args, ...argv.slice(end)],
		options: parseOptions,
		strict: false,
		allowPositionals: true,
		tokens: true,
	});
	const seen = new Set<string>();
	for (const token of tokens) {
		if (token.kind !== 'option') continue;
		const option = parseOptions[token.name];
		if (!option || option.multiple || option.type === 'boolean') continue;
		if (seen.has(token.name))
			throw new ConfigError(`--${token.name}: given more than once; give it once`);
		seen.add(token.name);
	}

	const flags: Flags = {};
	for (const [name, value] of Object.entries(values)) {
		const key = camelCase(name);
		if (isBooleanFlag(name) && typeof value === 'string') {
			if (value !== 'true' && value !== 'false')
				throw new ConfigError(`--${name}: expected no value (or true/false), got "${value}"`);
			flags[key] = value === 'true';
		} else {
			flags[key] = value === true && !isBooleanFlag(name) ? '' : value;
		}
	}

	// `--no-tui` after `--tui` wins, and the other way round, as the last word always does.
	for (const [name, index] of negated) {
		const last = options.findLastIndex(
			(token) => token === `--${name}` || token.startsWith(`--${name}=`),
		);
		if (last < index) flags[camelCase(name)] = false;
	}

	return {
		flags,
		input: positionals,
		get version() {
			return packageVersion();
		},
	};
}

const longFlags = new Set<string>();
const shortFlags = new Set<string>();
for (const [key, flag] of Object.entries(cliFlags)) {
	const name = kebabCase(key);
	longFlags.add(name);
	if (flag.type === 'boolean') longFlags.add(`no-${name}`);
	if ('shortFlag' in flag) shortFlags.add(flag.shortFlag);
}

export function checkUnknownFlags(argv: readonly string[]): void {
	for (const token of argv) {
		if (token === '--') return;
		// `-5` is a (bad) value for the flag before it, not a flag.
		if (!token.startsWith('-') || token === '-' || /^-\d/.test(token)) continue;
		if (token.startsWith('--')) {
			const name = token.slice(2).split('=')[0] ?? '';
			if (longFlags.has(name)) continue;
			const guess = closest(
				name,
				[...longFlags].filter((flag) => !flag.startsWith('no-') || flag === 'no-tui'),
			);
			throw new ConfigError(
				`unknown flag --${name}${guess ? `; did you mean --${guess}?` : ''} (gpujup --help lists the flags)`,
			);
		}

		const letter = token.slice(1, 2);
		if (!shortFlags.has(letter)) {
			throw new ConfigError(`unknown flag -${letter} (gpujup --help lists the flags)`);
		}
	}
}

/** Commands that take a chain: `gpujup connect ALIAS` (and `status`, `doctor`). */
export const chainCommands: readonly Command[] = ['connect', 'status', 'doctor'];

/** Commands that take several hosts (`gpujup A B`, `[fleet.<alias>]` tables): a fleet. */
export const fleetCommands: readonly Command[] = ['connect', 'status'];

/**
 * The command and, for `gpujup ALIAS` / `gpujup connect ALIAS`, the alias. A first word that is
 * no command is an alias, unless it is a near miss of one (`conect`): then it is only an alias
 * when `~/.ssh/config` names it (`typo` says so; the caller looks).
 */
export function pickCommand(input: readonly string[]): {
	command: Command | 'help';
	alias: string | null;
	/** `gpujup A B …` (connect, status): the aliases after the first, for a fleet. */
	more: string[];
	typo: string | null;
} {
	const [first, ...rest] = input;
	if (first === undefined) return {command: 'connect', alias: null, more: [], typo: null};
	if (first === 'help') return {command: 'help', alias: null, more: [], typo: null};
	const known = (commands as readonly string[]).includes(first);
	const command = known ? (first as Command) : 'connect';
	const takesAlias = !known || chainCommands.includes(command) || command === 'url';
	const alias = known ? (takesAlias ? (rest[0] ?? null) : null) : first;
	// After `--` a word that looks like a flag is still no alias; `pair` takes the pairing string.
	let extra =
		(known && takesAlias && !alias?.startsWith('-')) || first === 'pair' ? rest.slice(1) : rest;
	if (alias?.startsWith('-') && known)
		throw new ConfigError(
			`unexpected argument "${alias}" after "${first}" (gpujup --help lists the usage)`,
		);
	if (!known && first.startsWith('-')) throw unknownCommand(first);
	// Several hosts: connect and status take a fleet of aliases (`gpujup p507 p508`).
	const more = fleetCommands.includes(command) && alias !== null ? extra : [];
	if (more.length > 0) extra = [];
	for (const word of more)
		if (word.startsWith('-'))
			throw new ConfigError(
				`unexpected argument "${word}" after "${alias}" (gpujup --help lists the usage)`,
			);
	if (extra.length > 0) {
		throw new ConfigError(
			`unexpected argument "${extra[0]}" after "${alias ?? first}" (gpujup --help lists the usage)`,
		);
	}

	return {command, alias, more, typo: known ? null : first};
}

export function unknownCommand(word: string): ConfigError {
	const guess = closest(word, commands);
	return new ConfigError(
		`unknown command "${word}"${guess ? `; did you mean "${guess}"?` : ''} (commands: ${commands.join(', ')})`,
	);
}

/**
 * `pair STRING [--name NAME]` (`--profile NAME` too, as the profile is then used), and `host
 * --pair`; each flag is refused where it means nothing.
 */
export function pairArguments(
	command: Command,
	input: readonly string[],
	flags: Flags,
): Pick<Config, 'pair' | 'pairString' | 'pairName'> {
	if (flags.pair === true && command !== 'host')
		throw new ConfigError(
			'--pair: only `gpujup host --pair` prints a pairing string; on the laptop run `gpujup pair STRING`',
		);
	const name = typeof flags.name === 'string' ? flags.name : null;
	if (command !== 'pair') {
		if (name !== null)
			throw new ConfigError(
				'--name: only for `gpujup pair STRING --name NAME` (use --profile NAME)',
			);
		return {pair: flags.pair === true, pairString: null, pairName: null};
	}

	const profile = typeof flags.profile === 'string' ? flags.profile : null;
	if (name !== null && profile !== null && name !== profile)
		throw new ConfigError(`--name ${name} and --profile ${profile}: give one profile name`);
	const pairName = name ?? profile;
	if (pairName?.trim() === '' || /\p{Cc}/u.test(pairName ?? ''))
		throw new ConfigError(`--name: expected a profile name, got ${show(pairName)}`);
	const pairString = input[1];
	if (pairString === undefined || pairString.trim() === '')
		throw new ConfigError(
			"pair: give the string `gpujup host --pair` printed on the GPU host, in quotes: gpujup pair 'gpujup://…'",
		);
	return {pair: false, pairString, pairName};
}
