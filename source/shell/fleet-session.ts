import type {Config, RelayConfig} from '../config/types.js';
import {sanitizeLine} from '../core/sanitize.js';
import type {Commands} from '../core/view-commands.js';
import {startJsonWriter} from '../services/json-writer.js';
import {enterAlternateScreen, restoreTerminal} from '../services/terminal.js';
import {offLogLines, sessionWorkarounds} from '../services/workarounds/index.js';
import {fleetHosts, fleetSocketPath, runFleet, type FleetHandle} from '../wiring/fleet.js';
import type {ConnectHandle} from '../wiring/connect.js';
import {serveSession} from '../wiring/control.js';
import type {AskerFactory} from '../wiring/ssh-options.js';
import {createPromptAsker} from './asker.js';
import {
	disposeDeadlineMs,
	loadDashboard,
	onQuitSignals,
	ringOnNotifications,
	sayStartFailed,
	sessionCommands,
} from './session.js';

/**
 * `gpujup A B …` / `[fleet.<alias>]`: the session shell of a fleet. Each GPU host is what a
 * `gpujup ALIAS` session would be — its store, its dashboard's commands, its control socket
 * (`fleet/<name>.sock`, for `status` and `url`), its JSON lines (each with `"host"`) — over one
 * shared relay connection (wiring/fleet.ts). On a TTY the fleet view comes first (a row per host;
 * Enter opens that host's dashboard). Under `--no-tui` a host whose hop fails for good (auth,
 * host key) says so on stderr; the run ends, exit 1, once every host has failed.
 */
export async function runFleetCommand(
	config: Config,
	members: readonly RelayConfig[],
): Promise<number> {
	const tui = !config.noTui;
	const hosts = fleetHosts(members);
	let fleet: FleetHandle | undefined;
	const handleOf = (name: string): ConnectHandle | undefined =>
		fleet?.hosts.find((host) => host.name === name)?.handle;
	let finish: (code: number) => void = () => {};
	const done = new Promise<number>((resolve) => {
		finish = resolve;
	});

	let quitting = false;
	const prompts = new Map(hosts.map((host) => [host.name, createPromptAsker(host.store)]));
	const quit = async (code: number) => {
		if (quitting) return;
		quitting = true;
		for (const asker of prompts.values()) asker.cancelAll();
		const deadline = new Promise<void>((resolve) => {
			setTimeout(resolve, disposeDeadlineMs).unref();
		});
		await Promise.race([fleet?.dispose().catch(() => {}), deadline]);
		finish(code);
	};

	const fallbacks = offLogLines(sessionWorkarounds());
	const commands = new Map<string, Commands>();
	for (const host of hosts) {
		if (fallbacks.length > 0) host.store.dispatch({type: 'log', lines: fallbacks});
		commands.set(
			host.name,
			sessionCommands({
				config: host.config,
				store: host.store,
				handle: () => handleOf(host.name),
				prompts: prompts.get(host.name)!,
				quit() {
					void quit(0);
				},
			}),
		);
	}

	const offSignals = onQuitSignals(() => {
		void quit(0);
	});

	// One socket per host, claimed before anything starts: a second fleet for a host is refused.
	const servers: Array<{dispose(): Promise<void> | void}> = [];
	try {
		for (const host of hosts) {
			servers.push(
				await serveSession(
					host.config,
					'connect',
					host.store,
					() => handleOf(host.name) ?? null,
					fleetSocketPath(config, host.name),
				),
			);
		}
	} catch (error) {
		offSignals();
		await Promise.all(servers.map(async (server) => server.dispose()));
		sayStartFailed(error, tui);
		return 1;
	}

	const cleanups: Array<() => void> = [];
	let ink: {unmount(): void} | undefined;
	if (tui) {
		const {drawFleetDashboard, offLines} = await loadDashboard();
		if (offLines.length > 0)
			for (const host of hosts) host.store.dispatch({type: 'log', lines: offLines});
		enterAlternateScreen();
		ink = drawFleetDashboard({
			hosts: hosts.map((host) => ({
				name: host.name,
				store: host.store,
				commands: commands.get(host.name)!,
			})),
			quit() {
				void quit(0);
			},
			frameMs: 1000,
		});
		// A new notification of any host rings the terminal, its title naming the host.
		for (const host of hosts)
			cleanups.push(ringOnNotifications(host.store, (title) => `${host.name}: ${title}`));
	} else {
		// Every host's writer on the one stdout: a host's lines carry its name.
		process.stdout.setMaxListeners(0);
		const failedHosts = new Set<string>();
		for (const host of hosts) {
			const writer = startJsonWriter(host.store, process.stdout, {
				host: host.name,
				onClosed() {
					void quit(0);
				},
			});
			cleanups.push(() => {
				writer.dispose();
			});
			cleanups.push(
				host.store.subscribe(() => {
					const failed = host.store.getSnapshot().hops.find((h) => h.state === 'failed');
					if (!failed || quitting || failedHosts.has(host.name)) return;
					failedHosts.add(host.name);
					if (failed.error)
						process.stderr.write(
							`gpujup: ${host.name}: ${failed.hop}: ${sanitizeLine(failed.error.message)}\n`,
						);
					if (failedHosts.size === hosts.length) void quit(1);
				}),
			);
		}
	}

	const askers = new Map<string, AskerFactory>(
		hosts.map((host) => [host.name, tui ? prompts.get(host.name)!.factory : () => ({})]),
	);
	try {
		fleet = await runFleet(hosts, askers);
	} catch (error) {
		await quit(1);
		await Promise.all(servers.map(async (server) => server.dispose()));
		ink?.unmount();
		restoreTerminal();
		for (const cleanup of cleanups) cleanup();
		offSignals();
		sayStartFailed(error, tui);
		return 1;
	}

	const code = await done;
	for (const cleanup of cleanups) cleanup();
	await Promise.all(servers.map(async (server) => server.dispose()));
	ink?.unmount();
	restoreTerminal();
	offSignals();
	return code;
}
