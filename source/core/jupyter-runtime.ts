import type {JupyterServerSummary} from './types.js';

/** One running Jupyter server as its runtime file (`jpserver-*.json`, `nbserver-*.json`) tells it. */
export type JupyterServerInfo = {
	readonly port: number;
	readonly token: string;
	readonly pid: number | null;
	readonly baseUrl: string;
	readonly rootDir: string | null;
};

/** Separates the files the discovery script prints. */
export const runtimeFileSeparator = '\u001E';

/**
 * A POSIX sh script printing every Jupyter runtime file on the GPU host, each followed by the
 * separator. A non-login shell often has no `jupyter` on PATH, so the usual places are read too.
 */
export const runtimeDiscoveryScript = [
	'for d in "${JUPYTER_RUNTIME_DIR:-}" "$(jupyter --runtime-dir 2>/dev/null)"',
	' "${XDG_DATA_HOME:-$HOME/.local/share}/jupyter/runtime" "$HOME/Library/Jupyter/runtime"; do',
	' [ -n "$d" ] && [ -d "$d" ] || continue;',
	' for f in "$d"/jpserver-*.json "$d"/nbserver-*.json; do',
	' [ -f "$f" ] && { cat "$f"; printf \'\\036\\n\'; };',
	' done; done; true',
].join('');

/** Parses what `runtimeDiscoveryScript` printed; unreadable pieces are skipped. */
export function parseRuntimeFiles(text: string): JupyterServerInfo[] {
	const servers: JupyterServerInfo[] = [];
	const seen = new Set<string>();
	for (const piece of text.split(runtimeFileSeparator)) {
		const trimmed = piece.trim();
		if (!trimmed) continue;
		let parsed: Record<string, unknown>;
		try {
			parsed = JSON.parse(trimmed) as Record<string, unknown>;
		} catch {
			continue;
		}

		const port = parsed['port'];
		const token = parsed['token'];
		if (typeof port !== 'number' || typeof token !== 'string') continue;
		const pid = typeof parsed['pid'] === 'number' ? parsed['pid'] : null;
		const key = `${port}:${pid}`;
		if (seen.has(key)) continue;
		seen.add(key);
		const rootDir = parsed['root_dir'] ?? parsed['notebook_dir'];
		servers.push({
			port,
			token,
			pid,
			baseUrl: typeof parsed['base_url'] === 'string' ? parsed['base_url'] : '/',
			rootDir: typeof rootDir === 'string' ? rootDir : null,
		});
	}

	return servers;
}

/** The server on `port`, the newest (highest pid) when stale files linger. */
export function pickServer(
	servers: readonly JupyterServerInfo[],
	port: number,
): JupyterServerInfo | null {
	const candidates = servers.filter((s) => s.port === port);
	candidates.sort((a, b) => (b.pid ?? 0) - (a.pid ?? 0));
	return candidates[0] ?? null;
}

/** `19508 (pid 4242) · 19518 (pid 4343)`: the servers a user can pick with `--jupyter-port`. */
export function describeServers(servers: readonly JupyterServerSummary[]): string {
	return servers.map((s) => `${s.port}${s.pid === null ? '' : ` (pid ${s.pid})`}`).join(' · ');
}

/** The servers to list: one per port (the newest file), by port, without tokens. */
export function serverSummaries(
	servers: readonly JupyterServerInfo[],
	livePorts: ReadonlySet<number> | null,
): JupyterServerSummary[] {
	const ports = [...new Set(servers.map((s) => s.port))].filter(
		(port) => !livePorts || livePorts.has(port),
	);
	return ports
		.sort((a, b) => a - b)
		.map((port) => {
			const server = pickServer(servers, port)!;
			const base = server.baseUrl.startsWith('/') ? server.baseUrl : `/${server.baseUrl}`;
			return {port, pid: server.pid, url: `http://127.0.0.1:${port}${base}`};
		});
}
