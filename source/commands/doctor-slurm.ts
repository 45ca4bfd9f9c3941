import type {Duplex} from 'node:stream';
import type {SlurmConfig} from '../config/types.js';
import type {ClassifiedError} from '../core/types.js';
import {runSlurmDoctorChecks, type SlurmDoctorStep} from '../services/slurm-doctor.js';
import {readBanner} from '../services/tcp-probe.js';
import {disposeHops, firstOutcome} from '../wiring/connect.js';
import {createSlurmHops, loginChain, slurmJobOptions, slurmStore} from '../wiring/slurm.js';

function loginFix(error: ClassifiedError, user: string): string {
	switch (error.kind) {
		case 'host-key': {
			return "compare the fingerprint with the login node's own (ask the cluster's admins, or their documentation page) before you change ~/.ssh/known_hosts";
		}
		case 'auth': {
			return `check the user (${user}) and key: load it into ssh-agent or pass -i ~/.ssh/KEY; many clusters take keys only through their own web portal`;
		}
		default: {
			return error.message;
		}
	}
}

/**
 * `doctor --slurm` after DNS and TCP: each hop of the chain to the login node, then the Slurm
 * steps (services/slurm-doctor.ts) over the login node: commands, partition, Jupyter in the env,
 * ssh to the job's node (its banner read through the login node).
 */
export async function slurmDoctorSteps(config: SlurmConfig): Promise<SlurmDoctorStep[]> {
	const settings = config.slurm;
	const steps: SlurmDoctorStep[] = [];
	const store = slurmStore(config);
	const {loginHops} = createSlurmHops(config, store, () => ({}));
	const login = loginChain(config);
	try {
		for (const [index, hop] of loginHops.entries()) {
			const target = login[index]!;
			const name = index === loginHops.length - 1 ? 'login node' : `hop ${target.name}`;
			hop.start();
			const outcome = await firstOutcome(hop, () => store.getSnapshot().hops[index]?.error ?? null);
			if (!outcome || 'kind' in outcome) {
				const error = outcome ?? {kind: 'closed' as const, message: 'the session closed'};
				steps.push({name, ok: false, detail: error.message, fix: loginFix(error, target.user)});
				return steps;
			}
			steps.push({
				name,
				ok: true,
				detail: `logged in to ${target.name} (${target.host}:${target.port}) as ${target.user}`,
				fix: null,
			});
		}

		const loginHop = loginHops.at(-1)!;
		steps.push(
			...(await runSlurmDoctorChecks({
				...slurmJobOptions(config, loginHop),
				nodeSshPort: settings.nodeSshPort,
				async nodeBanner(node, port) {
					const client = loginHop.client;
					if (!client) throw new Error('the login node hop is down');
					const stream = await new Promise<Duplex>((resolve, reject) => {
						client.forwardOut('127.0.0.1', 0, node, port, (error, channel) => {
							if (error) reject(error);
							else resolve(channel);
						});
					});
					const banner = await readBanner(stream, 5000);
					stream.destroy();
					return banner.text.split(/\r?\n/)[0] ?? '';
				},
			})),
		);
		return steps;
	} finally {
		await disposeHops(loginHops);
	}
}
