import {lookup} from 'node:dns/promises';
import type {Client} from 'ssh2';
import type {Duplex} from 'node:stream';
import {withSlurm} from '../config/narrow.js';
import type {Config, RelayConfig} from '../config/types.js';
import {parseRuntimeFiles, pickServer, runtimeDiscoveryScript} from '../core/jupyter-runtime.js';
import {recognizeNvidiaSmiError} from '../core/nvidia-smi.js';
import {sanitizeLine} from '../core/sanitize.js';
import type {ClassifiedError} from '../core/types.js';
import {probeJupyter} from '../services/jupyter-probe.js';
import {execText} from '../services/remote-exec.js';
import {openRemoteStream, remotePortOwner} from '../services/remote-jupyter.js';
import {probeTcp, readBanner} from '../services/tcp-probe.js';
import {probeWorkarounds} from '../services/workarounds/index.js';
import {connectStore, createHops, disposeHops, firstOutcome} from '../wiring/connect.js';
import {chainOf, configSources, relayAddress} from '../wiring/ssh-options.js';
import {slurmDoctorSteps} from './doctor-slurm.js';

/** One line of `gpujup doctor`. */
export type DoctorStep = {
	readonly name: string;
	readonly ok: boolean;
	readonly detail: string;
	/** The exact fix, on the first failure. */
	readonly fix: string | null;
};

function hopFix(error: ClassifiedError, which: 'relay' | 'GPU host', config: RelayConfig): string {
	switch (error.kind) {
		case 'host-key': {
			// The message above already says what the key is and what to run; do not repeat it.
			const policy = which === 'relay' ? config.relayHostKeys : config.gpuHostKeys;
			const change = policy.pin
				? 'you pair again'
				: `you change ${policy.userFiles[0] ?? '~/.ssh/known_hosts'}`;
			return `compare the fingerprint with the ${which}'s own (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub there) before ${change}`;
		}

		case 'auth': {
			return which === 'relay'
				? `check the user (${config.relay.user}) and key: load it into ssh-agent or pass -i ~/.ssh/KEY; its public key must be in the relay's ~/.ssh/authorized_keys`
				: `the GPU host must accept ${config.hostUser}'s key: add the public key to ~/.ssh/authorized_keys there, or pass --host-user / -i`;
		}

		default: {
			return error.message;
		}
	}
}

/** Runs every check in order, stopping at the first failure (later steps need the earlier). */
export async function runDoctorChecks(config: RelayConfig): Promise<DoctorStep[]> {
	const steps: DoctorStep[] = [];
	const pass = (name: string, detail: string) => {
		steps.push({name, ok: true, detail, fix: null});
	};

	const fail = (name: string, detail: string, fix: string) => {
		steps.push({name, ok: false, detail, fix});
		return steps;
	};

	const {relay} = config;
	const chain = chainOf(config);
	// A one-hop alias: the first hop is the GPU host itself, with no relay before it.
	const direct = chain.length === 1;
	const first = chain[0]!;
	const firstWho = direct ? 'the GPU host' : 'the relay';
	const firstWhich = direct ? 'GPU host' : 'relay';
	// Where the user fixes the first hop's address: the alias's lines, or --relay.
	const setAddress = (what: 'HostName' | 'Port', value: string) =>
		config.hostAlias
			? `${what} in ~/.ssh/config for ${first.name}`
			: what === 'Port'
				? `--relay ${relay.host}:${value}`
				: '--relay';
	pass('config', configSources(config));

	try {
		const address = await lookup(relay.host);
		pass('DNS', `${relay.host} → ${address.address}`);
	} catch {
		return fail(
			'DNS',
			`${relay.host} does not resolve`,
			config.hostAlias
				? `check ${firstWho}'s name (${setAddress('HostName', '')})`
				: `check the relay's name (--relay, or HostName in ~/.ssh/config for the alias)`,
		);
	}

	if (!(await probeTcp({host: relay.host, port: relay.port, timeoutMs: 5000, banner: true})))
		return fail(
			'TCP',
			`no SSH server answers on ${relay.host}:${relay.port}`,
			`is ${firstWho} up, and is its SSH port ${relay.port}? Set it with ${setAddress('Port', 'PORT')}`,
		);
	pass('TCP', `${relay.host}:${relay.port} answers with an SSH banner`);
	// A cluster: the chain ends at its login node, and the GPU host is a job's node.
	const slurm = withSlurm(config);
	if (slurm) return [...steps, ...(await slurmDoctorSteps(slurm))];

	const store = connectStore(config);
	const {relay: relayHop, host: hostHop, hops} = createHops(config, store, () => ({}));
	const lastError = (index: number) =>
		store.getSnapshot().hops.find((h) => h.index === index)?.error ?? null;
	const gpu = chain.at(-1)!;
	try {
		relayHop.start();
		const relayOutcome = await firstOutcome(relayHop, () => lastError(0));
		if ('kind' in relayOutcome && relayOutcome.kind === 'host-key')
			return fail('host key', relayOutcome.message, hopFix(relayOutcome, firstWhich, config));
		// ✓ only for a key the hop verified: a session can fail before any key was shown.
		const verified = relayHop.hostKeyVerified;
		if (verified)
			pass(
				'host key',
				verified.how === 'known'
					? `${firstWho}'s key ${verified.key} matches ${verified.file}`
					: `new key ${verified.key} recorded in ${verified.file}`,
			);
		if ('kind' in relayOutcome)
			return fail(
				relayOutcome.kind === 'auth' ? 'auth' : 'SSH',
				relayOutcome.message,
				hopFix(relayOutcome, firstWhich, config),
			);
		pass(
			'auth',
			direct
				? `logged in to the GPU host (${first.name}) as ${first.user}`
				: `logged in to the relay as ${relay.user}`,
		);
		// Reached directly, the GPU host's session is the one just checked.
		if (direct) return await gpuHostChecks(relayOutcome, config, pass, fail, steps);

		// A longer chain: each jump between the relay and the GPU host, in order.
		let viaClient = relayOutcome;
		let via = 'the relay';
		for (const [index, jump] of hops.slice(1, -1).entries()) {
			const link = chain[index + 1]!;
			jump.start();
			const outcome = await firstOutcome(jump, () => lastError(index + 1));
			if ('kind' in outcome)
				return fail(`hop ${link.name}`, outcome.message, hopFix(outcome, 'relay', config));
			pass(
				`hop ${link.name}`,
				`logged in to ${link.name} (${link.host}:${link.port}) as ${link.user}`,
			);
			viaClient = outcome;
			via = link.name;
		}

		let tunnel: Duplex;
		try {
			tunnel = await new Promise<Duplex>((resolve, reject) => {
				viaClient.forwardOut('127.0.0.1', 0, gpu.host, gpu.port, (error, channel) => {
					if (error) reject(error);
					else resolve(channel);
				});
			});
		} catch (error) {
			const message = error instanceof Error ? error.message : String(error);
			return fail(
				'reverse port',
				`nothing listens on ${via}'s ${gpu.host}:${gpu.port} (${message})`,
				`no reverse tunnel: start \`gpujup host --relay ${relayAddress(relay)}\` on the GPU host (or your ssh -R ${gpu.port}:localhost:22 loop), or fix --relay-port`,
			);
		}

		pass('reverse port', `${via}'s ${gpu.host}:${gpu.port} accepts connections`);
		const banner = (await readBanner(tunnel, 5000)).text.split(/\r?\n/)[0] ?? '';
		if (!banner.startsWith('SSH-'))
			return fail(
				'GPU host sshd',
				`${gpu.host}:${gpu.port} on ${via} does not answer like sshd (${banner ? JSON.stringify(banner.slice(0, 40)) : 'no banner'})`,
				`the reverse tunnel must lead to the GPU host's sshd: check that sshd runs there and the tunnel's target port (gpujup host --ssh-port, or -R ${config.relayPort}:localhost:22)`,
			);
		pass('GPU host sshd', banner.trim());

		hostHop.start();
		const hostOutcome = await firstOutcome(hostHop, () => lastError(chain.length - 1));
		if ('kind' in hostOutcome)
			return fail(
				hostOutcome.kind === 'host-key' ? 'GPU host key' : 'GPU host auth',
				hostOutcome.message,
				hopFix(hostOutcome, 'GPU host', config),
			);
		pass('GPU host login', `logged in to the GPU host as ${config.hostUser}`);

		return await gpuHostChecks(hostOutcome, config, pass, fail, steps);
	} finally {
		await disposeHops(hops);
	}
}

/** What is checked on the GPU host once logged in there: Jupyter, then nvidia-smi. */
async function gpuHostChecks(
	client: Client,
	config: Config,
	pass: (name: string, detail: string) => void,
	fail: (name: string, detail: string, fix: string) => DoctorStep[],
	steps: DoctorStep[],
): Promise<DoctorStep[]> {
	let token: string | null = null;
	try {
		const {stdout} = await execText(client, runtimeDiscoveryScript);
		token = pickServer(parseRuntimeFiles(stdout), config.jupyterPort)?.token ?? null;
	} catch {
		// The probe below still tells whether Jupyter answers.
	}

	// The token goes only to a listener of the SSH user's own.
	const owner = await remotePortOwner(client, config.jupyterPort);
	if (owner.kind === 'foreign')
		return fail(
			'Jupyter',
			owner.message,
			`find what listens there (\`ss -ltnp 'sport = :${config.jupyterPort}'\` on the GPU host) and stop it, or run Jupyter on another port and pass --jupyter-port`,
		);
	if (owner.kind !== 'ours') token = null;
	const probe = await probeJupyter(async () => openRemoteStream(client, config.jupyterPort), token);
	if (!probe.reachable)
		return fail(
			'Jupyter',
			`nothing answers on the GPU host's 127.0.0.1:${config.jupyterPort} (${probe.message})`,
			`start Jupyter there: \`gpujup host\` supervises it, or \`jupyter notebook --no-browser --ip=127.0.0.1 --port=${config.jupyterPort} --port-retries=0\`; or fix --jupyter-port`,
		);
	pass(
		'Jupyter',
		`answers on the GPU host's 127.0.0.1:${config.jupyterPort}${token ? (probe.status === 200 ? ' and accepts its token' : ` (HTTP ${probe.status} with the runtime file's token)`) : ` (HTTP ${probe.status}; no runtime file with its token)`}`,
	);

	try {
		const result = await execText(
			client,
			`${config.nvidiaSmi} --query-gpu=name,driver_version --format=csv,noheader`,
			{timeoutMs: 15_000},
		);
		const problem = recognizeNvidiaSmiError(result.stdout + result.stderr);
		if (problem) return fail('nvidia-smi', problem.message, problem.fix);
		if (result.code !== 0)
			return fail(
				'nvidia-smi',
				`\`${config.nvidiaSmi}\` failed on the GPU host (exit ${result.code}): ${(result.stderr || result.stdout).trim().slice(0, 200)}`,
				result.code === 127
					? `install the NVIDIA driver there, or point --nvidia-smi at it (WSL: /usr/lib/wsl/lib/nvidia-smi)`
					: `run \`${config.nvidiaSmi}\` on the GPU host to see why`,
			);
		const gpus = result.stdout.trim().split('\n').filter(Boolean);
		pass('nvidia-smi', `${gpus.length} GPU${gpus.length === 1 ? '' : 's'}: ${gpus.join('; ')}`);
	} catch (error) {
		return fail(
			'nvidia-smi',
			error instanceof Error ? error.message : String(error),
			`\`${config.nvidiaSmi}\` hangs on the GPU host: the driver may be stuck (check dmesg there)`,
		);
	}

	return steps;
}

/** `gpujup doctor`: a line per check, the fix at the first failure, exit 1 on failure. */
export async function runDoctor(config: RelayConfig): Promise<number> {
	const steps = await runDoctorChecks(config);
	const width = Math.max(...steps.map((s) => s.name.length));
	for (const step of steps) {
		// Details quote the servers (banners, nvidia-smi's output, error messages): printed plain.
		const detail = sanitizeLine(step.detail);
		process.stdout.write(`${step.ok ? '✓' : '✗'} ${step.name.padEnd(width)}  ${detail}\n`);
		if (step.fix) process.stdout.write(`  ${' '.repeat(width)}  fix: ${sanitizeLine(step.fix)}\n`);
	}

	// Not checks: off only means the safe fallback runs, so they never fail the doctor.
	const workarounds = await probeWorkarounds();
	process.stdout.write(
		"workarounds (reaches into dependencies' internals; off: a safe fallback runs)\n",
	);
	const nameWidth = Math.max(...workarounds.map((w) => w.name.length));
	for (const w of workarounds)
		process.stdout.write(
			`  ${w.active ? 'active' : 'off   '} ${w.name.padEnd(nameWidth)}  ${sanitizeLine(w.detail)}\n`,
		);

	const failed = steps.some((s) => !s.ok);
	process.stdout.write(failed ? 'doctor found a problem\n' : 'all checks passed\n');
	return failed ? 1 : 0;
}
