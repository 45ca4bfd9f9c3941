import type {Client} from 'ssh2';
import {withRelay, withSlurm} from '../config/narrow.js';
import type {Config, RelayConfig} from '../config/types.js';
import type {ControlReplies} from '../core/control-decode.js';
import {
	jupyterUrlWithToken,
	kernelStatusOf,
	statusObject,
	type KernelObject,
	type StatusObject,
} from '../core/events.js';
import type {GpuInfo} from '../core/types.js';
import {describeServers} from '../core/jupyter-runtime.js';
import {sanitizeLines} from '../core/sanitize.js';
import {stringifyJson} from '../services/json-writer.js';
import {RemoteJupyter} from '../services/remote-jupyter.js';
import {ControlReplyError, requestControl} from '../services/control-socket.js';
import {GpuStream} from '../services/gpu-stream.js';
import {sshRunner} from '../services/command-runner.js';
import {probeWorkarounds} from '../services/workarounds/index.js';
import {connectStore, createHops, disposeHops, startHops} from '../wiring/connect.js';
import {fleetSocketPath} from '../wiring/fleet.js';
import {controlSocketPath} from '../wiring/ssh-options.js';
import {checkSlurmOnce} from './status-slurm.js';

/**
 * Sockets of a gpujup running on this machine, the GPU host's agent first; with an alias, its
 * host in a fleet running here before them (`gpujup status p507` while `gpujup p507 p508` runs).
 */
function socketPaths(config: Config): string[] {
	return [
		...(config.hostAlias ? [fleetSocketPath(config, config.hostAlias)] : []),
		controlSocketPath(config, 'host'),
		controlSocketPath(config, 'connect'),
	];
}

/**
 * Asks whichever gpujup runs here: its reply, decoded; `{malformed}` when one answered with a
 * reply of another shape (the message names the field); null when none answers.
 */
async function askRunning<Op extends 'status' | 'token' | 'kernels'>(
	config: Config,
	op: Op,
): Promise<{readonly reply: ControlReplies[Op]} | {readonly malformed: string} | null> {
	for (const socket of socketPaths(config)) {
		try {
			return {reply: await requestControl(socket, op, 3000)};
		} catch (error) {
			if (error instanceof ControlReplyError) return {malformed: error.message};
			// Not running there: try the next.
		}
	}

	return null;
}

/**
 * The one-line words. `remotePort`: the status came from a one-shot check, where nothing forwards
 * a local port, so Jupyter is said to answer on the GPU host rather than at a local URL.
 */
export function describe(status: StatusObject, remotePort: number | null = null): string {
	const lines = status.hops.map((h) => {
		const rtt = h.rttMs === null ? '' : `  rtt ${Math.round(h.rttMs)} ms`;
		const error = h.error ? `  — ${h.error.message}` : '';
		return `${(h.hop === 'jump' ? h.name : h.hop).padEnd(8)}${h.state}${rtt}${error}`;
	});
	if (status.forward)
		lines.push(
			`forward ${status.forward.local} → ${status.forward.remote} ${status.forward.state} (${status.forward.connections} open)`,
		);
	if (status.jupyter) {
		const where =
			remotePort === null
				? status.jupyter.url
					? `  ${status.jupyter.url}`
					: ''
				: `  on the GPU host's 127.0.0.1:${remotePort} (not forwarded here: no gpujup connect runs)`;
		lines.push(
			`jupyter ${status.jupyter.state}${where}${status.jupyter.kernels === null ? '' : `  ${status.jupyter.kernels} kernels`}${status.jupyter.message ? `  — ${status.jupyter.message}` : ''}`,
		);
	}
	if (status.jupyter?.servers && status.jupyter.servers.length > 1)
		lines.push(`servers ${describeServers(status.jupyter.servers)}`);
	if (status.gpu) {
		if (status.gpu.error) lines.push(`gpu     ${status.gpu.error.message}`);
		for (const gpu of status.gpu.gpus)
			lines.push(
				`gpu ${gpu.index}   ${gpu.name}  ${gpu.mig ? 'MIG' : gpu.utilizationGpu === null ? '–' : `${gpu.utilizationGpu}%`}  ${gpu.memoryUsedMiB ?? '–'}/${gpu.memoryTotalMiB ?? '–'} MiB`,
			);
	}

	if (status.job)
		lines.push(
			`job     ${status.job.id} ${status.job.state}${status.job.node ? ` on ${status.job.node}` : ''}${status.job.reason ? `  (${status.job.reason})` : ''}${status.job.timeLeftS === null ? '' : `  ${Math.round(status.job.timeLeftS / 60)} min left`}`,
		);
	lines.push(status.ok ? 'all up' : 'not all up');
	// Hop errors, GPU names: remote text, printed plain.
	return sanitizeLines(lines.join('\n')) + '\n';
}

async function waitUntil(check: () => boolean, timeoutMs: number): Promise<void> {
	const end = Date.now() + timeoutMs;
	while (!check() && Date.now() < end) {
		await new Promise((resolve) => {
			setTimeout(resolve, 100);
		});
	}
}

/**
 * Checks the chain once from flags and config, without binding the local port: both hops, then
 * Jupyter through the second, then one GPU sample.
 */
export async function checkChainOnce(config: RelayConfig): Promise<StatusObject> {
	const store = connectStore(config);
	const {host, hops} = createHops(config, store, () => ({}));
	const jupyter = new RemoteJupyter({
		remotePort: config.jupyterPort,
		localPort: config.localPort,
		onStatus(status) {
			store.dispatch({type: 'jupyter', jupyter: status});
		},
	});
	let client: Client | null = null;
	const gpu = new GpuStream({
		runner: sshRunner(() => client),
		nvidiaSmi: config.nvidiaSmi,
		onStatus(status) {
			store.dispatch({type: 'gpu', gpu: status});
		},
	});
	host.on('ready', (ready: Client) => {
		client = ready;
		jupyter.attach(ready);
		gpu.start();
	});
	const deadlineMs = Math.max(20_000, config.keepaliveS * config.keepaliveCount * 1000);
	// Stop waiting at the first real failure; each hop waits for the one before it at first.
	const settled = () =>
		hops.some(
			(hop, index) =>
				hop.state === 'failed' ||
				(hop.state === 'waiting' && (index === 0 || hops[index - 1]!.state === 'ready')),
		);

	try {
		startHops(hops);
		await waitUntil(() => host.state === 'ready' || settled(), deadlineMs);
		if (host.state === 'ready') {
			await waitUntil(() => store.getSnapshot().jupyter !== null, 15_000);
			await waitUntil(() => store.getSnapshot().gpu !== null, 5000);
		}

		return statusObject(store.getSnapshot());
	} finally {
		jupyter.dispose();
		await gpu.dispose();
		await disposeHops(hops);
	}
}

/** What `status` prints of a status: checked once, no local URL; the fields an older one lacks. */
export async function cleanStatus(status: StatusObject, once: boolean): Promise<StatusObject> {
	return {
		ok: status.ok,
		hops: status.hops,
		forward: status.forward,
		// Checked once, nothing forwards the local port: no local URL to hand out.
		jupyter: once && status.jupyter ? {...status.jupyter, url: null} : status.jupyter,
		gpu: status.gpu,
		source: status.source ?? null,
		kernels: status.kernels ?? [],
		job: status.job ?? null,
		// Those of the gpujup that answered; checked once (or an older one answered): this install's.
		workarounds: status.workarounds ?? (await probeWorkarounds()),
	};
}

/** `gpujup status [--json]`: exit 0 only when all is up. */
export async function runStatus(config: Config): Promise<number> {
	// Several GPU hosts: `{"ok":…,"hosts":[…]}` (commands/fleet-status.ts).
	const fleet = await import('./fleet-status.js');
	if (config.fleetHosts && config.fleetHosts.length > 1) return fleet.runFleetStatus(config);
	const answer = await askRunning(config, 'status');
	if (answer && 'malformed' in answer)
		process.stderr.write(
			`gpujup: the running gpujup sent ${answer.malformed}; checking the chain once\n`,
		);
	let status: StatusObject | null = answer && 'reply' in answer ? answer.reply : null;
	const once = !status;
	if (!status) {
		const running = config.hostAlias ? [] : fleet.runningFleet(config);
		if (running.length > 0) return fleet.runFleetStatus(config, running);
		const relayed = withRelay(config);
		if (!relayed) {
			const reason =
				'no gpujup is running here and no relay is configured — start `gpujup --relay user@relay`, or pass --relay to check the chain once';
			// Scripts read stdout: they get the one object, saying why it is not ok.
			if (config.json)
				process.stdout.write(
					stringifyJson({ok: false, reason, hops: [], forward: null, jupyter: null, gpu: null}) +
						'\n',
				);
			process.stderr.write(`gpujup: ${reason}\n`);
			return 1;
		}

		const slurm = withSlurm(relayed);
		status = slurm ? await checkSlurmOnce(slurm) : await checkChainOnce(relayed);
	}

	const clean = await cleanStatus(status, once);
	process.stdout.write(
		config.json ? stringifyJson(clean) + '\n' : describe(clean, once ? config.jupyterPort : null),
	);
	return clean.ok ? 0 : 1;
}

/** `gpujup url`: the URL with its token, from the gpujup running here. */
export async function runUrl(config: Config): Promise<number> {
	const fleet = await import('./fleet-status.js');
	// `gpujup url NAME`: that host of a fleet. Otherwise the single gpujup running here first,
	// then a fleet (the config's, or one found by its sockets): a line per host.
	if (config.fleetName) return fleet.runFleetUrl(config);
	const asked = await askRunning(config, 'token');
	const answer = asked && 'reply' in asked ? asked.reply : null;
	if (!answer && ((config.fleetHosts?.length ?? 0) > 1 || fleet.runningFleet(config).length > 0))
		return fleet.runFleetUrl(config);
	if (!answer) {
		process.stderr.write(
			'gpujup: no running gpujup here knows a Jupyter token — start one with `gpujup --relay user@relay` (laptop) or `gpujup host --relay user@relay` (GPU host), then try again\n',
		);
		return 1;
	}

	process.stdout.write(jupyterUrlWithToken(answer.port, answer.token) + '\n');
	return 0;
}

/** The kernels as text: the Notebooks pane's table, without colours. */
async function kernelTable(
	kernels: readonly KernelObject[],
	gpus: ReadonlyArray<{readonly index: number; readonly uuid: string}>,
): Promise<string> {
	const {notebookLines} = await import('../dashboard.js');
	// The table reads a GPU's index and uuid only.
	const known = gpus.map((gpu) => ({...gpu}) as unknown as GpuInfo);
	return notebookLines(kernels.map(kernelStatusOf), known, Date.now(), 120, -1)
		.map((segments) =>
			segments
				.map((segment) => segment.text)
				.join('')
				.trimEnd(),
		)
		.join('\n');
}

/** `gpujup kernels [--json]`: the notebooks' kernels, from the gpujup running here. */
export async function runKernels(config: Config): Promise<number> {
	const answer = await askRunning(config, 'kernels');
	const fleet = await import('./fleet-status.js');
	const running = answer ? [] : fleet.runningFleet(config);
	if (running.length > 0)
		return fleet.runFleetKernels(config, running, async (kernels, gpus) =>
			kernels.length === 0 ? 'no kernels running' : kernelTable(kernels, gpus),
		);
	if (!answer) {
		process.stderr.write(
			'gpujup: no gpujup is running here — start `gpujup host` (GPU host) or `gpujup --relay user@relay` (laptop), then try again\n',
		);
		return 1;
	}

	if ('malformed' in answer) {
		process.stderr.write(`gpujup: the running gpujup sent ${answer.malformed}\n`);
		return 1;
	}

	const {kernels, gpus} = answer.reply;
	process.stdout.write(
		config.json
			? stringifyJson({kernels}) + '\n'
			: (kernels.length === 0 ? 'no kernels running' : await kernelTable(kernels, gpus)) + '\n',
	);
	return 0;
}
