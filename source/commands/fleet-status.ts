import {readdirSync} from 'node:fs';
import {needRelay} from '../config/narrow.js';
import type {Config} from '../config/types.js';
import {jupyterUrlWithToken, type KernelObject, type StatusObject} from '../core/events.js';
import {sanitizeLine} from '../core/sanitize.js';
import {requestControl} from '../services/control-socket.js';
import {stringifyJson} from '../services/json-writer.js';
import {fleetSocketDir, fleetSocketPath} from '../wiring/fleet.js';
import {controlSocketPath} from '../wiring/ssh-options.js';
import {checkChainOnce, cleanStatus, describe} from './status.js';

/** A fleet host in `status --json`: its name, then what `status --json` gives for one host. */
export type FleetHostStatus = {readonly name: string; readonly reason?: string} & StatusObject;

/**
 * The hosts of a fleet running here (`gpujup A B` serves `fleet/<name>.sock` per host), by the
 * names of their sockets; empty when none was left there.
 */
export function runningFleet(config: Config): string[] {
	try {
		return readdirSync(fleetSocketDir(config))
			.filter((file) => file.endsWith('.sock'))
			.map((file) => decodeURIComponent(file.slice(0, -'.sock'.length)))
			.sort();
	} catch {
		return [];
	}
}

/** One host's status: from the fleet running here, else one check of its chain (from config). */
async function hostStatus(
	config: Config,
	name: string,
): Promise<{status: StatusObject; once: boolean} | null> {
	try {
		return {
			status: await requestControl(fleetSocketPath(config, name), 'status', 3000),
			once: false,
		};
	} catch {
		// Not running here (or a stale socket): check it once, when its chain is known.
	}

	const host = config.fleet?.find((member) => member.fleetName === name);
	return host ? {status: await checkChainOnce(needRelay(host)), once: true} : null;
}

/**
 * `gpujup status [--json]` with several GPU hosts: `{"ok":…,"hosts":[{"name":…, …one host's
 * fields…}]}`, `ok` when every host is; as text, each host's lines under its name.
 */
export async function runFleetStatus(
	config: Config,
	names: readonly string[] = config.fleetHosts ?? [],
): Promise<number> {
	const results = await Promise.all(
		names.map(async (name) => ({name, result: await hostStatus(config, name)})),
	);
	const hosts: FleetHostStatus[] = [];
	const text: string[] = [];
	for (const {name, result} of results) {
		if (!result) {
			const reason = `${name}: no gpujup runs for it here and its chain is not configured`;
			hosts.push({
				name,
				ok: false,
				reason,
				hops: [],
				forward: null,
				jupyter: null,
				gpu: null,
				source: null,
				kernels: [],
			});
			text.push(`${name}\n  ${reason}`);
			continue;
		}

		const clean = await cleanStatus(result.status, result.once);
		hosts.push({name, ...clean});
		const remotePort = result.once
			? (config.fleet?.find((member) => member.fleetName === name)?.jupyterPort ?? null)
			: null;
		text.push(
			`${name}\n${describe(clean, remotePort)
				.trimEnd()
				.split('\n')
				.map((line) => `  ${line}`)
				.join('\n')}`,
		);
	}

	const ok = hosts.length > 0 && hosts.every((host) => host.ok);
	process.stdout.write(
		config.json
			? stringifyJson({ok, hosts}) + '\n'
			: `${text.join('\n')}\n${ok ? 'all hosts up' : 'not all hosts up'}\n`,
	);
	return ok ? 0 : 1;
}

/**
 * `gpujup url` with several GPU hosts: one line per host, `name<TAB>url`, for the hosts whose
 * token is known (exit 1 when one is not); `gpujup url NAME`: that host's URL alone.
 */
export async function runFleetUrl(config: Config): Promise<number> {
	const one = config.fleetName ?? null;
	const names = one ? [one] : config.fleetHosts?.length ? config.fleetHosts : runningFleet(config);
	const lines: string[] = [];
	const missing: string[] = [];
	for (const name of names) {
		const token = await hostToken(config, name);
		if (token) lines.push(one ? token : `${name}\t${token}`);
		else missing.push(name);
	}

	if (lines.length > 0) process.stdout.write(lines.join('\n') + '\n');
	if (missing.length > 0)
		process.stderr.write(
			`gpujup: no running gpujup here knows a Jupyter token for ${missing.join(', ')} — start the fleet with \`gpujup ${names.join(' ')}\`, then try again\n`,
		);
	return missing.length === 0 && lines.length > 0 ? 0 : 1;
}

async function hostToken(config: Config, name: string): Promise<string | null> {
	try {
		const answer = await requestControl(fleetSocketPath(config, name), 'token', 3000);
		if (answer) return jupyterUrlWithToken(answer.port, answer.token);
	} catch {
		// No fleet for it here: perhaps `gpujup NAME` alone runs.
	}

	try {
		const socket = controlSocketPath(config, 'connect');
		const status = await requestControl(socket, 'status', 3000);
		if (status.hops.at(-1)?.name !== name) return null;
		const answer = await requestControl(socket, 'token', 3000);
		return answer ? jupyterUrlWithToken(answer.port, answer.token) : null;
	} catch {
		return null;
	}
}

/**
 * `gpujup kernels [--json]` while a fleet runs here: `{"hosts":[{"name":…,"kernels":[…]}]}`, or
 * each host's table under its name.
 */
export async function runFleetKernels(
	config: Config,
	names: readonly string[],
	table: (
		kernels: readonly KernelObject[],
		gpus: ReadonlyArray<{readonly index: number; readonly uuid: string}>,
	) => Promise<string>,
): Promise<number> {
	const hosts: Array<{name: string; kernels: KernelObject[]; error?: string}> = [];
	const text: string[] = [];
	for (const name of names) {
		try {
			const {kernels, gpus} = await requestControl(fleetSocketPath(config, name), 'kernels', 3000);
			hosts.push({name, kernels});
			text.push(
				`${name}\n${(await table(kernels, gpus))
					.split('\n')
					.map((line) => `  ${line}`)
					.join('\n')}`,
			);
		} catch (error) {
			const why = sanitizeLine(error instanceof Error ? error.message : String(error));
			hosts.push({name, kernels: [], error: why});
			text.push(`${name}\n  ${why}`);
		}
	}

	process.stdout.write(config.json ? stringifyJson({hosts}) + '\n' : `${text.join('\n')}\n`);
	return hosts.every((host) => host.error === undefined) ? 0 : 1;
}
