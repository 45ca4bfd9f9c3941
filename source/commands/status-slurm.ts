import type {SlurmConfig} from '../config/types.js';
import {statusObject, type StatusObject} from '../core/events.js';
import {shellQuote} from '../core/shell.js';
import {jobObject} from '../core/slurm.js';
import type {JupyterStatus} from '../core/types.js';
import {RemoteJupyter} from '../services/remote-jupyter.js';
import {SlurmJobService} from '../services/slurm-job.js';
import type {SshHop} from '../services/ssh-hop.js';
import {disposeHops, startHops} from '../wiring/connect.js';
import {
	createSlurmHops,
	loginChain,
	nodeTarget,
	slurmJobOptions,
	slurmStore,
} from '../wiring/slurm.js';

async function waitUntil(check: () => boolean, timeoutMs: number): Promise<void> {
	const end = Date.now() + timeoutMs;
	while (!check() && Date.now() < end) {
		await new Promise((resolve) => {
			setTimeout(resolve, 100);
		});
	}
}

/** The hop is up, or has failed for now (waiting after its first try, or failed for good). */
const settled = (hop: SshHop) =>
	hop.state === 'ready' || hop.state === 'failed' || hop.state === 'waiting';

/**
 * `status --slurm` with no gpujup running here: the login chain once, the profile's job as squeue
 * has it (never submitting one), and while it runs its Jupyter through the node (or, for a job made
 * for clusters without ssh to their nodes, through the login node), as `connect` would reach it.
 */
export async function checkSlurmOnce(config: SlurmConfig): Promise<StatusObject> {
	const settings = config.slurm;
	const store = slurmStore(config);
	const {loginHops, makeHop} = createSlurmHops(config, store, () => ({}));
	const login = loginChain(config);
	const loginHop = loginHops.at(-1)!;
	const hops: SshHop[] = [...loginHops];
	const deadlineMs = Math.max(20_000, config.keepaliveS * config.keepaliveCount * 1000);
	let jupyter: RemoteJupyter | null = null;
	const service = new SlurmJobService(slurmJobOptions(config, loginHop));
	try {
		startHops(loginHops);
		await waitUntil(
			() => loginHop.state === 'ready' || loginHops.some((hop) => settled(hop) && !hop.client),
			deadlineMs,
		);
		if (!loginHop.client) return statusObject(store.getSnapshot());
		const found = await service.find().catch(() => null);
		if (!found) return statusObject(store.getSnapshot());
		const job = found.state === 'RUNNING' ? await service.attach().catch(() => found) : found;
		store.dispatch({
			type: 'job',
			job: {...jobObject(job), seenAt: Date.now(), onQuit: settings.onQuit},
		});
		const endpoint = service.endpoint;
		if (!endpoint) return statusObject(store.getSnapshot());
		const token = await service.readToken().catch(() => null);
		const onStatus = (status: JupyterStatus) => {
			store.dispatch({type: 'jupyter', jupyter: status});
		};
		let client = loginHop.client;
		if (endpoint.listen === 'loopback') {
			const nodeHop = makeHop(
				nodeTarget(config, login.at(-1)!, endpoint.node),
				login.length,
				loginHop,
				`${endpoint.node} (job ${endpoint.jobId})`,
			);
			hops.push(nodeHop);
			store.dispatch({type: 'hop', hop: 'host', index: login.length, patch: {name: endpoint.node}});
			nodeHop.start();
			await waitUntil(() => settled(nodeHop), deadlineMs);
			if (!nodeHop.client) return statusObject(store.getSnapshot());
			client = nodeHop.client;
			jupyter = new RemoteJupyter({
				remotePort: endpoint.port,
				localPort: config.localPort,
				knownToken: token,
				knownPid: endpoint.pid,
				onStatus,
			});
		} else {
			const srun = `srun --jobid=${endpoint.jobId} --overlap --ntasks=1 --nodes=1`;
			store.dispatch({
				type: 'hop',
				hop: 'host',
				index: login.length,
				patch: {name: endpoint.node, state: 'ready', error: null},
			});
			jupyter = new RemoteJupyter({
				remotePort: endpoint.port,
				localPort: config.localPort,
				knownToken: token,
				knownPid: endpoint.pid,
				remoteHost: endpoint.host,
				wrapCommand: (command) => `${srun} sh -c ${shellQuote(command)}`,
				onStatus,
			});
		}
		jupyter.attach(client);
		await waitUntil(() => store.getSnapshot().jupyter !== null, 15_000);
		return statusObject(store.getSnapshot());
	} finally {
		jupyter?.dispose();
		service.dispose();
		await disposeHops(hops);
	}
}
