/**
 * core/slurm.ts on its own. What the real squeue prints (both forms) and the job script under real
 * Slurm are covered in test/services/slurm-job.test.ts against the test cluster.
 */
import {execFileSync, spawnSync} from 'node:child_process';
import {describe, expect, test} from 'vitest';
import {
	activeJob,
	gpusInTres,
	jobNotifications,
	jobObject,
	jobScript,
	jobState,
	loginProbeScript,
	parseJobEndpoint,
	parseLoginProbe,
	parseSlurmDuration,
	parseSlurmVersion,
	parseSqueueJson,
	parseSqueueText,
	parseSubmitted,
	partitionsIn,
	profileProblem,
	sbatchArgsProblem,
	squeueCommand,
	squeueJsonUsable,
	submitScript,
	type SlurmJob,
} from '../../source/core/slurm.js';
import {shCommand} from '../../source/core/shell.js';

const job = (overrides: Partial<SlurmJob>): SlurmJob => ({
	id: '1',
	name: 'gpujup-p',
	state: 'PENDING',
	slurmState: 'PENDING',
	reason: null,
	node: null,
	gpus: null,
	timeLeftS: null,
	...overrides,
});

describe('squeue fields', () => {
	test('durations as Slurm prints them; its words for none are null', () => {
		expect(parseSlurmDuration('59')).toBe(59);
		expect(parseSlurmDuration('10:00')).toBe(600);
		expect(parseSlurmDuration('1:02:03')).toBe(3723);
		expect(parseSlurmDuration('2-03:04:05')).toBe(2 * 86_400 + 3 * 3600 + 4 * 60 + 5);
		for (const none of ['UNLIMITED', 'NOT_SET', 'INVALID', '', 'N/A', '1:2:3:4'])
			expect(parseSlurmDuration(none), none).toBeNull();
	});

	test('GPUs from allocated and requested TRES in every spelling', () => {
		expect(gpusInTres('cpu=4,mem=16G,node=1,billing=4,gres/gpu=2')).toBe(2);
		expect(gpusInTres('cpu=4,gres/gpu=2,gres/gpu:a100=2')).toBe(2);
		expect(gpusInTres('cpu=4,gres/gpu:a100=1,gres/gpu:v100=2')).toBe(3);
		expect(gpusInTres('gres:gpu:1')).toBe(1);
		expect(gpusInTres('gres/gpu:a100:4')).toBe(4);
		expect(gpusInTres('gpu:2')).toBe(2);
		expect(gpusInTres('cpu=1,node=1,billing=1')).toBeNull();
		expect(gpusInTres('')).toBeNull();
		expect(gpusInTres(null)).toBeNull();
	});

	test('Slurm states map onto gpujup’s four', () => {
		expect(jobState('PENDING')).toBe('PENDING');
		expect(jobState('CONFIGURING')).toBe('PENDING');
		expect(jobState('SUSPENDED')).toBe('PENDING');
		expect(jobState('RUNNING')).toBe('RUNNING');
		expect(jobState('COMPLETING')).toBe('COMPLETING');
		for (const ended of [
			'COMPLETED',
			'CANCELLED',
			'TIMEOUT',
			'FAILED',
			'NODE_FAIL',
			'PREEMPTED',
			'OUT_OF_MEMORY',
			'BOOT_FAIL',
			'DEADLINE',
		])
			expect(jobState(ended), ended).toBe('ENDED');
	});

	test('versions, and --json only where squeue honours its filters with it (23.02 on)', () => {
		expect(parseSlurmVersion('slurm 22.05.8')).toEqual({
			major: 22,
			minor: 5,
			text: 'slurm 22.05.8',
		});
		expect(parseSlurmVersion('slurm-wlm 23.11.4')).toMatchObject({major: 23, minor: 11});
		expect(parseSlurmVersion('command not found')).toBeNull();
		expect(squeueJsonUsable(parseSlurmVersion('slurm 22.05.8'))).toBe(false);
		expect(squeueJsonUsable(parseSlurmVersion('slurm 23.02.0'))).toBe(true);
		expect(squeueJsonUsable(parseSlurmVersion('slurm 24.05.1'))).toBe(true);
		expect(squeueJsonUsable(null)).toBe(false);
	});
});

describe('squeue text form', () => {
	test('the reason keeps its own | and loses escape sequences; other names and junk lines are skipped', () => {
		const out = [
			'12|gpujup-p|PENDING|||cpu=1||Resources|',
			'13|gpujup-p|PENDING||||gres:gpu:2|admin says: wait | later \u001B[31mred\u001B[0m|',
			'14|other|RUNNING|n1|1:00|cpu=1||None|',
			'module: some banner a login shell printed',
			'15|gpujup-p|RUNNING|gpu-07|1-00:00:00|cpu=8,gres/gpu=4|gres:gpu:4|None|',
			'16|gpujup-p|TIMEOUT|gpu-07|0:00|cpu=8|gres:gpu:4|TimeLimit|',
			'17|gpujup-p|running; rm|x|0:00||||',
		].join('\n');
		expect(parseSqueueText(out, 'gpujup-p')).toEqual([
			job({id: '12', reason: 'Resources'}),
			job({id: '13', reason: 'admin says: wait | later red', gpus: 2}),
			job({
				id: '15',
				state: 'RUNNING',
				slurmState: 'RUNNING',
				node: 'gpu-07',
				gpus: 4,
				timeLeftS: 86_400,
			}),
			job({
				id: '16',
				state: 'ENDED',
				slurmState: 'TIMEOUT',
				reason: 'TIMEOUT: TimeLimit',
				node: 'gpu-07',
				gpus: 4,
			}),
		]);
	});

	test('the command names the job and asks for every field in one line', () => {
		const line = squeueCommand('gpujup-p', 'text');
		expect(line).toMatch(/^squeue --me --states=all --name=gpujup-p --noheader --Format=/);
		expect(line).toContain('tres-per-node:|,Reason:|');
		expect(squeueCommand('gpujup-p', 'json')).toBe(
			'squeue --me --states=all --name=gpujup-p --json',
		);
	});
});

describe('squeue --json', () => {
	// Slurm 23.11 and later write numbers as {set, infinite, number} and job_state as a list
	// (Slurm's OpenAPI v0.0.40 schema); 22.05's plain form is parsed from the real squeue in
	// test/services/slurm-job.test.ts.
	const now = Date.UTC(2026, 0, 1);
	const nowS = now / 1000;
	const newer = {
		jobs: [
			{
				job_id: 40,
				name: 'gpujup-p',
				user_name: 'ada',
				job_state: ['RUNNING'],
				state_reason: 'None',
				state_description: '',
				batch_host: 'gpu-01',
				nodes: 'gpu-01',
				end_time: {set: true, infinite: false, number: nowS + 600},
				time_limit: {set: true, infinite: false, number: 60},
				tres_alloc_str: 'cpu=2,gres/gpu=1',
				tres_per_node: 'gres/gpu:1',
			},
			{
				job_id: 41,
				name: 'gpujup-p',
				user_name: 'ada',
				job_state: ['RUNNING', 'COMPLETING'],
				state_reason: 'None',
				batch_host: 'gpu-02',
				end_time: {set: true, infinite: false, number: nowS + 5},
				time_limit: {set: false, infinite: true, number: 0},
			},
			{
				job_id: 42,
				name: 'gpujup-p',
				user_name: 'bob',
				job_state: ['PENDING'],
				state_reason: 'Priority',
			},
			{
				job_id: 43,
				name: 'other',
				user_name: 'ada',
				job_state: ['PENDING'],
				state_reason: 'Priority',
			},
			{
				job_id: 44,
				name: 'gpujup-p',
				user_name: 'ada',
				job_state: 'PENDING',
				state_reason: 'QOSMaxGRESPerUser',
				state_description: '',
			},
		],
	};

	test('the reason leads with Slurm’s word; its description, when it says more, follows', () => {
		const pending = (reason: string, description: string) =>
			parseSqueueJson(
				JSON.stringify({
					jobs: [
						{
							job_id: 45,
							name: 'gpujup-p',
							user_name: 'ada',
							job_state: 'PENDING',
							state_reason: reason,
							state_description: description,
						},
					],
				}),
				'gpujup-p',
				'ada',
				now,
			)?.[0]?.reason;
		// What slurmctld writes on a drained node for a while after the submit (seen in CI).
		expect(
			pending(
				'ReqNodeNotAvail',
				'Nodes required for job are DOWN, DRAINED or reserved for jobs in higher priority partitions',
			),
		).toBe(
			'ReqNodeNotAvail (Nodes required for job are DOWN, DRAINED or reserved for jobs in higher priority partitions)',
		);
		expect(pending('ReqNodeNotAvail', 'ReqNodeNotAvail, UnavailableNodes:localhost')).toBe(
			'ReqNodeNotAvail, UnavailableNodes:localhost',
		);
		expect(pending('Priority', '')).toBe('Priority');
		expect(pending('None', 'held by the admin')).toBe('held by the admin');
		// Just after a submit slurmctld may have set the description but not yet the word (CI).
		expect(
			pending(
				'None',
				'Nodes required for job are DOWN, DRAINED or reserved for jobs in higher priority partitions',
			),
		).toBe(
			'Nodes required for job are DOWN, DRAINED or reserved for jobs in higher priority partitions',
		);
	});

	test('the newer number and state forms; other users and names filtered out here', () => {
		expect(parseSqueueJson(JSON.stringify(newer), 'gpujup-p', 'ada', now)).toEqual([
			job({
				id: '40',
				state: 'RUNNING',
				slurmState: 'RUNNING',
				node: 'gpu-01',
				gpus: 1,
				timeLeftS: 600,
			}),
			// No limit: no countdown, whatever end_time says.
			job({id: '41', state: 'COMPLETING', slurmState: 'COMPLETING', node: 'gpu-02'}),
			job({id: '44', reason: 'QOSMaxGRESPerUser'}),
		]);
	});

	test('anything but squeue’s JSON is null (the text form is used instead)', () => {
		expect(parseSqueueJson('squeue: unrecognized option --json', 'n', 'u', now)).toBeNull();
		expect(parseSqueueJson('{"meta":{}}', 'n', 'u', now)).toBeNull();
		expect(parseSqueueJson('[]', 'n', 'u', now)).toBeNull();
	});
});

test('the job to attach to: running first, then completing, then the newest pending; never an ended one', () => {
	const pending = job({id: '9', state: 'PENDING'});
	const newerPending = job({id: '10', state: 'PENDING'});
	const running = job({id: '3', state: 'RUNNING'});
	const ended = job({id: '11', state: 'ENDED'});
	expect(activeJob([pending, ended, running, newerPending])).toBe(running);
	expect(activeJob([pending, ended, newerPending])).toBe(newerPending);
	expect(activeJob([ended])).toBeNull();
	expect(activeJob([])).toBeNull();
});

describe('sbatch', () => {
	test('--sbatch options are passed, but not the ones gpujup sets, nor a script', () => {
		expect(
			sbatchArgsProblem(['--partition', 'gpu', '--gres=gpu:1', '-t', '4:00:00', '-A', 'proj']),
		).toBeNull();
		expect(sbatchArgsProblem([])).toBeNull();
		expect(sbatchArgsProblem(['train.sh'])).toMatch(/"train.sh" is not an sbatch option/);
		for (const own of [
			'-J',
			'-Jx',
			'--job-name=x',
			'-o',
			'--output=f',
			'-e',
			'--error',
			'--wrap=x',
			'--parsable',
			'--array=1-3',
		])
			expect(sbatchArgsProblem(['--partition', 'gpu', own]), own).toMatch(/cannot be given/);
	});

	test('profile names that make a job name and a directory', () => {
		expect(profileProblem('cluster')).toBeNull();
		expect(profileProblem('a.b_c-1')).toBeNull();
		for (const bad of ['', '..', '.', 'a/b', 'a b', 'x'.repeat(65)])
			expect(profileProblem(bad), bad).toMatch(/cannot name/);
	});

	test('the job id from --parsable', () => {
		expect(parseSubmitted('1234\n')).toBe('1234');
		expect(parseSubmitted('1234;cluster-a\n')).toBe('1234');
		expect(parseSubmitted('Submitted batch job 1234\n')).toBeNull();
		expect(parseSubmitted('')).toBeNull();
	});

	test('the job script is valid bash, takes the token from its file and has no token itself', () => {
		for (const env of [
			{kind: 'none'},
			{kind: 'conda', name: 'tf'},
			{kind: 'venv', path: '/opt/v env'},
		] as const) {
			const script = jobScript({
				dir: '/h/u/.local/state/gpujup/slurm/p',
				profile: 'p',
				env,
				cmd: null,
				notebookDir: '/h/u',
				allowRoot: false,
			});
			expect(script.startsWith('#!/bin/bash\n')).toBe(true);
			const check = spawnSync('/bin/bash', ['-n'], {input: script});
			expect(check.status, check.stderr.toString()).toBe(0);
			expect(script).toContain('JUPYTER_TOKEN=$(cat /h/u/.local/state/gpujup/slurm/p/token)');
			expect(script).toContain('--port-retries=0');
			expect(script).toContain('"--port=$__gpujup_port"');
			expect(script).toContain('"--ip=$__gpujup_ip"');
			expect(script).not.toMatch(/--allow-root/);
			expect(script).toContain('__gpujup_ip=127.0.0.1');
		}
		const node = jobScript({
			dir: '/d',
			profile: 'p',
			env: {kind: 'none'},
			cmd: null,
			notebookDir: '/h',
			allowRoot: true,
			listen: 'node',
		});
		expect(node).toContain('getent ahostsv4 "$__gpujup_node"');
		expect(node).toContain('"listen":"node"');
		expect(node).toContain('"--ip=$__gpujup_ip"');
		expect(node).toContain('--allow-root');
	});

	test('the submit script is one line every login shell passes to sh unchanged', () => {
		const line = shCommand(submitScript, ['/d', 'c2NyaXB0', '--partition', 'gpu'], 'gpujup-submit');
		expect(line).not.toMatch(/\n/);
		// The script sh receives is the one we wrote (checked by echoing it instead of running it).
		const out = execFileSync('/bin/sh', [
			'-c',
			shCommand('printf %s "$1"', [submitScript]),
		]).toString();
		expect(out).toBe(submitScript);
	});
});

describe('what the job and the login node write', () => {
	test('the endpoint file: for this job only, with a port, a pid and a host name', () => {
		const ok =
			'{"jobId":"7","node":"gpu-01.cluster","host":"10.1.2.3","listen":"node","port":40001,"pid":1234}';
		expect(parseJobEndpoint(ok, '7')).toEqual({
			jobId: '7',
			node: 'gpu-01.cluster',
			host: '10.1.2.3',
			listen: 'node',
			port: 40_001,
			pid: 1234,
		});
		// An older job script wrote neither: the loopback.
		expect(parseJobEndpoint('{"jobId":"7","node":"n","port":9,"pid":2}', '7')).toMatchObject({
			host: '127.0.0.1',
			listen: 'loopback',
		});
		expect(
			parseJobEndpoint('{"jobId":"7","node":"n","host":"$(x)","port":9,"pid":2}', '7'),
		).toBeNull();
		expect(parseJobEndpoint(ok, '8')).toBeNull();
		expect(parseJobEndpoint('{"jobId":"7","node":"a;b","port":1,"pid":1}', '7')).toBeNull();
		expect(parseJobEndpoint('{"jobId":"7","node":"n","port":0,"pid":1}', '7')).toBeNull();
		expect(parseJobEndpoint('{"jobId":"7","node":"n","port":22,"pid":"1"}', '7')).toBeNull();
		expect(parseJobEndpoint('', '7')).toBeNull();
	});

	test('the login probe, run by a real sh here: paths, uid and user', () => {
		const out = execFileSync('/bin/sh', ['-c', loginProbeScript], {
			env: {PATH: '/usr/bin:/bin', HOME: '/h/u'},
		}).toString();
		const probe = parseLoginProbe(out);
		expect(probe).toMatchObject({
			home: '/h/u',
			stateHome: '/h/u/.local/state',
			uid: process.getuid?.(),
		});
		expect(parseLoginProbe('state=/x\nuid=1\nuser=u\n')).toBeNull();
		expect(
			parseLoginProbe(
				'home=/h\nstate=/h/s\nuid=5\nuser=u\nsbatch=\nsqueue=/usr/bin/squeue\nscancel=/usr/bin/scancel\nversion=slurm 23.02.1\n',
			),
		).toEqual({
			home: '/h',
			stateHome: '/h/s',
			uid: 5,
			user: 'u',
			sbatch: null,
			squeue: '/usr/bin/squeue',
			scancel: '/usr/bin/scancel',
			version: {major: 23, minor: 2, text: 'slurm 23.02.1'},
		});
	});
});

describe('job notifications', () => {
	const running = (timeLeftS: number | null, id = '5') =>
		job({id, state: 'RUNNING', slurmState: 'RUNNING', node: 'gpu-01', timeLeftS});

	test('job-ending once, when the time left first falls to 10 minutes', () => {
		expect(jobNotifications(null, running(3600))).toEqual([]);
		expect(jobNotifications(running(3600), running(601))).toEqual([]);
		const ending = jobNotifications(running(601), running(599));
		expect(ending).toEqual([
			{
				kind: 'job-ending',
				title: 'Job 5 ends in 10 min',
				message: 'Slurm job 5 on gpu-01 reaches its time limit in 10 min: save your notebooks',
				notebook: null,
			},
		]);
		expect(jobNotifications(running(599), running(590))).toEqual([]);
		// Attached with little time left: said at once.
		expect(jobNotifications(null, running(90))[0]?.title).toBe('Job 5 ends in 90 s');
		// No limit: never.
		expect(jobNotifications(running(null), running(null))).toEqual([]);
	});

	test('job-ended once, with Slurm’s reason; never for a job first seen ended', () => {
		const ended = job({
			id: '5',
			state: 'ENDED',
			slurmState: 'TIMEOUT',
			reason: 'TIMEOUT',
			node: 'gpu-01',
		});
		expect(jobNotifications(running(30), ended)).toEqual([
			{
				kind: 'job-ended',
				title: 'Job 5 ended',
				message:
					'Slurm job 5 ended (TIMEOUT); its Jupyter and kernels are gone: r submits a new one',
				notebook: null,
			},
		]);
		expect(jobNotifications(ended, ended)).toEqual([]);
		expect(jobNotifications(null, ended)).toEqual([]);
		expect(jobNotifications(running(30, '4'), ended)).toEqual([]);
	});
});

test('the partitions --sbatch names, in every spelling', () => {
	expect(partitionsIn(['-p', 'gpu,a100', '--time=1:00:00'])).toEqual(['gpu', 'a100']);
	expect(partitionsIn(['-pgpu', '--partition', 'big', '--partition=gpu'])).toEqual(['gpu', 'big']);
	expect(partitionsIn(['--gres=gpu:1'])).toEqual([]);
});

test('the JSON contract’s job object: exactly its six fields', () => {
	const running = job({
		id: '8',
		state: 'RUNNING',
		slurmState: 'RUNNING',
		node: 'n1',
		gpus: 2,
		timeLeftS: 60,
	});
	expect(JSON.stringify(jobObject(running))).toBe(
		'{"id":"8","state":"RUNNING","reason":null,"node":"n1","gpus":2,"timeLeftS":60}',
	);
});
