import {mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterEach, beforeEach, describe, expect, it} from 'vitest';
import {needRelay, withSlurm} from '../../source/config/narrow.js';
import {parseCli} from '../../source/config/resolve.js';
import type {SlurmConfig} from '../../source/config/types.js';
import type {SlurmJob} from '../../source/core/slurm.js';
import {jobLine, loginChain, nodeTarget, slurmStore} from '../../source/wiring/slurm.js';

let home = '';

beforeEach(() => {
	home = mkdtempSync(join(tmpdir(), 'gpujup-slurm-role-'));
});

afterEach(() => {
	rmSync(home, {recursive: true, force: true});
});

/** The config of `argv`, which must give --slurm. */
function run(argv: string[]): SlurmConfig {
	const result = parseCli(
		argv,
		{
			HOME: home,
			USER: 'alice',
			XDG_CONFIG_HOME: join(home, 'cfg'),
			XDG_STATE_HOME: join(home, 'st'),
		},
		{stdoutIsTty: true, home, cwd: home, sshSystemConfig: null},
	);
	if (result.kind !== 'run') throw new Error(result.kind);
	const slurm = withSlurm(needRelay(result.config));
	if (!slurm) throw new Error('expected --slurm');
	return slurm;
}

describe('connect --slurm: the chain to the login node, then the job’s node', () => {
	it('--relay is the login node alone; the node follows it on --node-ssh-port as the same user', () => {
		const config = run([
			'--relay',
			'me@login.hpc.example.org',
			'--slurm',
			'--node-ssh-port',
			'2222',
		]);
		const login = loginChain(config);
		expect(login.map((hop) => [hop.name, hop.host, hop.port, hop.user])).toEqual([
			['login.hpc.example.org', 'login.hpc.example.org', 22, 'me'],
		]);
		const node = nodeTarget(config, login[0]!, 'GPU-07');
		expect(node).toMatchObject({
			name: 'GPU-07',
			host: 'gpu-07',
			port: 2222,
			user: 'me',
			keyNames: ['[gpu-07]:2222'],
		});
		expect(node.hostKeys.alias).toBeNull();
		expect(
			nodeTarget({...config, slurm: {...config.slurm, nodeSshPort: 22}}, login[0]!, 'n1').keyNames,
		).toEqual(['n1']);
		// The store has the login node first (relay), the node last (host), waiting for the job.
		expect(
			slurmStore(config)
				.getSnapshot()
				.hops.map((hop) => [hop.hop, hop.name, hop.label]),
		).toEqual([
			['relay', 'login.hpc.example.org', 'login.hpc.example.org'],
			['host', 'node', 'compute node (waiting for the job)'],
		]);
	});

	it('an alias with ProxyJump: bastion → login, then the node', () => {
		mkdirSync(join(home, '.ssh'), {recursive: true});
		writeFileSync(
			join(home, '.ssh', 'config'),
			[
				'Host bastion',
				'  HostName bastion.example.org',
				'Host cluster',
				'  HostName login1.hpc.example.org',
				'  User me',
				'  ProxyJump bastion',
				'',
			].join('\n'),
		);
		const config = run(['cluster', '--slurm']);
		expect(loginChain(config).map((hop) => hop.host)).toEqual([
			'bastion.example.org',
			'login1.hpc.example.org',
		]);
		expect(
			slurmStore(config)
				.getSnapshot()
				.hops.map((hop) => hop.hop),
		).toEqual(['relay', 'jump', 'host']);
	});

	it('says the job in the log: pending with its reason, running on its node, ended with Slurm’s', () => {
		const job: SlurmJob = {
			id: '12',
			name: 'gpujup-cluster',
			state: 'PENDING',
			slurmState: 'PENDING',
			reason: 'Priority',
			node: null,
			gpus: 1,
			timeLeftS: null,
		};
		expect(jobLine(job)).toBe('[gpujup] job 12 PENDING (Priority)');
		expect(
			jobLine({...job, state: 'RUNNING', slurmState: 'RUNNING', reason: null, node: 'g1'}),
		).toBe('[gpujup] job 12 RUNNING on g1');
		expect(
			jobLine({...job, state: 'ENDED', slurmState: 'TIMEOUT', reason: 'TIMEOUT', node: 'g1'}),
		).toBe('[gpujup] job 12 ended (TIMEOUT): r submits a new one');
	});
});
