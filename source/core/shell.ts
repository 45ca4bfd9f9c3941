/**
 * Command lines for shells gpujup does not choose. An exec channel's command is read by the GPU
 * host user's login shell, which may be sh, bash, zsh, fish or tcsh; each quotes differently, so
 * gpujup sends one line that all of them read the same — `sh -c 'SCRIPT' NAME ARGS…` — and writes
 * every script for POSIX sh.
 */

/** Words that every one of those shells leaves alone (no `=` first: zsh expands `=cmd`). */
const bareWord = /^[\w@+:,./-][\w@%+=:,./-]*$/;

/**
 * Inside single quotes, fish still reads `\\` and `\'`, and tcsh still expands `!` (history):
 * those characters leave the quotes, each behind a backslash that every shell reads the same.
 */
const outsideQuotes: Readonly<Record<string, string>> = {
	"'": `'\\''`,
	'\\': `'\\\\'`,
	'!': `'\\!'`,
};

/**
 * Quote one word so that sh, bash, dash, zsh, fish and tcsh all read it back unchanged: `it's` →
 * `'it'\''s'`; safe words stay bare. A newline survives every shell but tcsh (see {@link shCommand}).
 */
export function shellQuote(word: string): string {
	if (bareWord.test(word)) return word;
	return `'${word.replaceAll(/['\\!]/g, (c) => outsideQuotes[c] ?? c)}'`;
}

/**
 * The one line that runs `script` with POSIX sh whatever the login shell is: `sh -c 'SCRIPT'`,
 * then `name` as `$0` and `args` as `$1`…, when there are any. Throws on a newline, which tcsh
 * cannot take inside quotes: scripts for the GPU host are written on one line.
 */
export function shCommand(script: string, args: readonly string[] = [], name = 'sh'): string {
	const words = ['sh', '-c', shellQuote(script)];
	if (args.length > 0) words.push(shellQuote(name), ...args.map(shellQuote));
	const line = words.join(' ');
	if (/[\n\r]/.test(line))
		throw new Error('shCommand: a remote command must be one line (tcsh cannot quote a newline)');
	return line;
}

/**
 * Split `text` into words as a POSIX shell would, without expanding anything: blanks separate
 * words; single quotes keep everything; double quotes keep everything but `\"`, `\\`, `\$` and
 * `` \` ``; a backslash outside quotes keeps the next character. How `--sbatch='--partition gpu
 * --comment "two words"'` becomes sbatch's arguments. Throws on an unclosed quote or a trailing
 * backslash, naming it.
 */
export function splitWords(text: string): string[] {
	const words: string[] = [];
	let word = '';
	let inWord = false;
	let quote: "'" | '"' | null = null;
	for (let i = 0; i < text.length; i++) {
		const c = text[i]!;
		if (quote === "'") {
			if (c === "'") quote = null;
			else word += c;
			continue;
		}
		if (quote === '"') {
			if (c === '"') quote = null;
			else if (c === '\\' && i + 1 < text.length && '"\\$`'.includes(text[i + 1]!))
				word += text[++i];
			else word += c;
			continue;
		}
		if (c === ' ' || c === '\t' || c === '\n') {
			if (inWord) words.push(word);
			word = '';
			inWord = false;
			continue;
		}
		inWord = true;
		if (c === "'" || c === '"') quote = c;
		else if (c === '\\') {
			if (i + 1 >= text.length) throw new Error('a trailing backslash has nothing to escape');
			word += text[++i];
		} else word += c;
	}
	if (quote) throw new Error(`the ${quote === "'" ? 'single' : 'double'} quote is not closed`);
	if (inWord) words.push(word);
	return words;
}
