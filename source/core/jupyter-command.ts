/**
 * The command line `gpujup host` starts Jupyter with: environment activation, the default command
 * and the flags that pin it to the loopback port it was told. Pure: the supervisor runs it.
 */

/** `--env`: which environment Jupyter runs in. */
export type JupyterEnv =
	| {readonly kind: 'none'}
	| {readonly kind: 'conda'; readonly name: string}
	| {readonly kind: 'venv'; readonly path: string};

export type JupyterCommandOptions = {
	/** `--jupyter-cmd`, a shell command line; null picks `jupyter lab`, else `jupyter notebook`. */
	readonly cmd: string | null;
	readonly env: JupyterEnv;
	readonly port: number;
	readonly notebookDir: string;
	/** Jupyter refuses to run as root without `--allow-root`. */
	readonly allowRoot: boolean;
};

/** Where conda installers put it, tried when `conda` is not on PATH. */
export const condaPlaces = [
	'$HOME/miniconda3',
	'$HOME/anaconda3',
	'$HOME/miniforge3',
	'$HOME/mambaforge',
	'/opt/conda',
] as const;

/** The program that runs {@link jupyterScript} (conda's activation script wants bash or zsh). */
export const jupyterShell = '/bin/bash';

/** Quote one word for a POSIX shell: `it's` → `'it'\''s'`. Safe words stay bare. */
export function shellQuote(word: string): string {
	if (/^[\w@%+=:,./-]+$/.test(word)) return word;
	return `'${word.replaceAll("'", `'\\''`)}'`;
}

/**
 * The flags that pin Jupyter to 127.0.0.1:<port> (never moving to the next port: the tunnel points
 * at this one). The token is not among them: it travels in `JUPYTER_TOKEN`, never in argv.
 */
export function jupyterArgs(
	options: Pick<JupyterCommandOptions, 'port' | 'notebookDir' | 'allowRoot'>,
): string[] {
	const args = [
		'--no-browser',
		'--ip=127.0.0.1',
		`--port=${options.port}`,
		'--port-retries=0',
		`--notebook-dir=${options.notebookDir}`,
	];
	if (options.allowRoot) args.push('--allow-root');
	return args;
}

/**
 * Shell text that activates `env`, ending in ` && ` (or empty for `none`). Conda's shell functions
 * come from its own `conda.sh`, found with `conda info --base`, as `conda init` would set up.
 */
export function activation(env: JupyterEnv): string {
	switch (env.kind) {
		case 'none': {
			return '';
		}

		case 'conda': {
			// A non-login shell (systemd) rarely has conda on PATH: look where installers put it.
			const places = condaPlaces.map((p) => `"${p}"`).join(' ');
			return (
				'__conda_base="$(conda info --base 2>/dev/null)" || __conda_base=""; ' +
				`if [ -z "$__conda_base" ]; then for __d in ${places}; do ` +
				'if [ -f "$__d/etc/profile.d/conda.sh" ]; then __conda_base="$__d"; break; fi; done; fi; ' +
				'if [ -z "$__conda_base" ]; then echo "gpujup: conda not found (not on PATH, nor in ' +
				`${condaPlaces.join(', ')})" >&2; exit 127; fi; ` +
				'. "$__conda_base/etc/profile.d/conda.sh" && ' +
				`conda activate ${shellQuote(env.name)} && `
			);
		}

		case 'venv': {
			return `. ${shellQuote(`${env.path.replace(/\/+$/, '')}/bin/activate`)} && `;
		}
	}
}

/**
 * The script for `bash -c`. `exec` replaces the shell so the pid we record is Jupyter's; without
 * `--jupyter-cmd`, JupyterLab is used when the activated environment has it.
 */
export function jupyterScript(options: JupyterCommandOptions): string {
	const args = jupyterArgs(options).map(shellQuote).join(' ');
	const run =
		options.cmd === null
			? `if jupyter lab --version >/dev/null 2>&1; then exec jupyter lab ${args}; ` +
				`else exec jupyter notebook ${args}; fi`
			: `exec ${options.cmd} ${args}`;
	return `${activation(options.env)}${run}`;
}

/** What `--env` reads as for messages: `conda:tf`, `venv:/opt/venv`, `none`. */
export function describeEnv(env: JupyterEnv): string {
	return env.kind === 'none'
		? 'none'
		: env.kind === 'conda'
			? `conda:${env.name}`
			: `venv:${env.path}`;
}
