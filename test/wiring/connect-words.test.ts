import {describe, expect, it} from 'vitest';
import {jupyterLines} from '../../source/components/jupyter-pane.js';
import type {RelayConfig} from '../../source/config/types.js';
import type {JupyterStatus} from '../../source/core/types.js';
import {relayLabel} from '../../source/wiring/connect.js';
import {configSources} from '../../source/wiring/ssh-options.js';
import {RemoteJupyter} from '../../source/services/remote-jupyter.js';
import {segmentsText} from '../components/fixtures.js';

const relay = {host: '127.0.0.1', port: 22622, user: 'root'};

describe('the words of a laptop-side run', () => {
	it('names the relay as typed: the ~/.ssh/config alias, with its address beside it', () => {
		const viaAlias = {relay: {...relay, alias: 'relay'}, configFile: null} as RelayConfig;
		expect(relayLabel(viaAlias)).toBe('relay (127.0.0.1:22622)');
		expect(configSources(viaAlias)).toBe(
			'no config file (flags, environment and defaults); relay relay from ~/.ssh/config (root@127.0.0.1:22622)',
		);
		const typed = {relay: {...relay, alias: null}, configFile: null} as RelayConfig;
		expect(relayLabel(typed)).toBe('127.0.0.1:22622');
		expect(configSources(typed)).toBe('no config file (flags, environment and defaults)');
	});

	it('says where Jupyter facts come from once: no `gpujup host · via gpujup host`', () => {
		const jupyter: JupyterStatus = {
			state: 'running',
			url: 'http://127.0.0.1:19507/',
			pid: 7,
			kernels: 0,
			restarts: 0,
			startedAt: null,
			lastActivity: null,
			origin: 'gpujup host',
			message: null,
		};
		const text = jupyterLines(jupyter, 'gpujup host', 0).map(segmentsText);
		expect(text.at(-1)).toBe('via gpujup host');
		expect(
			jupyterLines({...jupyter, origin: 'runtime file'}, 'gpujup host', 0)
				.map(segmentsText)
				.at(-1),
		).toBe('runtime file · via gpujup host');
	});

	it('a new Jupyter pid from gpujup host counts a restart and starts the uptime again', () => {
		const seen: JupyterStatus[] = [];
		const remote = new RemoteJupyter({
			remotePort: 19508,
			localPort: 19507,
			onStatus(status) {
				seen.push(status);
			},
		});
		const url = 'http://127.0.0.1:19508/';
		remote.agentEvent({state: 'running', pid: 100, url});
		remote.agentEvent({state: 'restarting', pid: 100, url});
		remote.agentEvent({state: 'running', pid: 200, url});
		const last = seen.at(-1)!;
		expect(last).toMatchObject({pid: 200, restarts: 1, startedAt: null});
		remote.dispose();
	});
});
