/**
 * The command line `gpujup host` starts Jupyter with: environment activation, the env's kernel,
 * the default command and the flags that pin it to the loopback port it was told. Pure: the
 * supervisor runs it.
 */
import {missingIpykernelExitCode} from './exit-codes.js';

import {shellQuote} from './shell.js';

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
	/**
	 * gpujup's own Jupyter data dir (0700, in its state dir), put first on `JUPYTER_PATH`: with an
	 * env, its `kernels/python3` is written to run the env's python. Null: no kernel of ours.
	 */
	readonly dataDir: string | null;
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

/** Why an env cannot run kernels, and the fix; in Jupyter's log and the status message. */
export function missingIpykernelMessage(env: JupyterEnv): string {
	return (
		`${describeEnv(env)} has no ipykernel, so notebooks cannot run in it: ` +
		'run `pip install ipykernel` with that env activated, then restart Jupyter (j)'
	);
}

/**
 * Checks that the env's python has ipykernel, then writes `<dataDir>/kernels/python3/kernel.json`
 * (0600) naming that python: argv[1] is the data dir, argv[2] the display name. Exits with
 * {@link missingIpykernelExitCode} when ipykernel is missing.
 */
const kernelSpecWriter = [
	'import importlib.util, json, os, sys',
	`if importlib.util.find_spec("ipykernel") is None: sys.exit(${missingIpykernelExitCode})`,
	'd = os.path.join(sys.argv[1], "kernels", "python3")',
	'os.makedirs(d, mode=0o700, exist_ok=True)',
	'spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"], ' +
		'"display_name": sys.argv[2], "language": "python", "metadata": {"debugger": True}}',
	'f = os.path.join(d, "kernel.json")',
	'fd = os.open(f + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)',
	'with os.fdopen(fd, "w") as out: json.dump(spec, out, indent=1)',
	'os.replace(f + ".tmp", f)',
].join('\n');

/**
 * Shell text, after activation, that makes the env's python the `python3` kernel (or refuses, with
 * {@link missingIpykernelMessage}), ending in ` && `. Jupyter's own `python3` kernelspec (Debian's
 * names /usr/bin/python3) would otherwise win whatever the env: a kernelspec in a dir first on
 * `JUPYTER_PATH` wins over every other; the user's own entries stay after it.
 */
export function envKernel(env: JupyterEnv, dataDir: string | null): string {
	if (env.kind === 'none' || dataDir === null) return '';
	// The env's own python, never one further down PATH (a conda env without python would get base's).
	const python =
		env.kind === 'venv'
			? shellQuote(`${env.path.replace(/\/+$/, '')}/bin/python`)
			: '"$CONDA_PREFIX/bin/python"';
	const refuse = `{ echo ${shellQuote(`gpujup: ${missingIpykernelMessage(env)}`)} >&2; exit ${missingIpykernelExitCode}; }`;
	return (
		`if [ ! -x ${python} ]; then ${refuse}; fi; ` +
		`${python} -c ${shellQuote(kernelSpecWriter)} ${shellQuote(dataDir)} ${shellQuote(`Python 3 (${describeEnv(env)})`)}; ` +
		`__rc=$?; if [ "$__rc" = ${missingIpykernelExitCode} ]; then ${refuse}; fi; ` +
		'if [ "$__rc" != 0 ]; then exit "$__rc"; fi; ' +
		`export JUPYTER_PATH=${shellQuote(dataDir)}"\${JUPYTER_PATH:+:$JUPYTER_PATH}" && `
	);
}

/**
 * The script for `bash -c`. `exec` replaces the shell so the pid we record is Jupyter's; without
 * `--jupyter-cmd`, JupyterLab is used when the activated environment has it.
 */
export function jupyterScript(options: JupyterCommandOptions): string {
	const args = jupyterArgs(options).map(shellQuote).join(' ');
	return `${activation(options.env)}${envKernel(options.env, options.dataDir)}${jupyterLaunch(options.cmd, args)}`;
}

/**
 * The `exec` that replaces the shell with Jupyter, given its arguments as shell text: `cmd`
 * (`--jupyter-cmd`), or JupyterLab where the env has it, else the classic notebook.
 */
export function jupyterLaunch(cmd: string | null, args: string): string {
	return cmd === null
		? `if jupyter lab --version >/dev/null 2>&1; then exec jupyter lab ${args}; ` +
				`else exec jupyter notebook ${args}; fi`
		: `exec ${cmd} ${args}`;
}

/** What `--env` reads as for messages: `conda:tf`, `venv:/opt/venv`, `none`. */
export function describeEnv(env: JupyterEnv): string {
	return env.kind === 'none'
		? 'none'
		: env.kind === 'conda'
			? `conda:${env.name}`
			: `venv:${env.path}`;
}
