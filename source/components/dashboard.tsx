import {Box} from 'ink';
import type {AppState} from '../core/app-state.js';
import {
	confirmKeys,
	confirmQuitKeys,
	filterKeys,
	helpKeys,
	hostKeyPromptKeys,
	modeFooterItems,
	modeHint,
	notebookFooterItems,
	secretPromptKeys,
} from '../core/keymap.js';
import {initialView, logScrollOf, selectedKernelIndex, type ViewState} from '../core/view-state.js';
import {ThemeContext, makeTheme} from '../theme.js';
import {Confirm, jobQuitQuestion, quitQuestion, restartQuestion} from './confirm.js';
import {Footer} from './footer.js';
import {GpuPane} from './gpu-pane.js';
import {Header} from './header.js';
import {HelpOverlay} from './help-overlay.js';
import {JupyterPane} from './jupyter-pane.js';
import {computeLayout, focusedPane, type PaneId} from './layout.js';
import {Line} from './line.js';
import {LogPane} from './log-pane.js';
import {compactNotebookLine, kernelQuestion, NotebooksPane} from './notebooks-pane.js';
import {PathPane} from './path-pane.js';
import {PromptView} from './prompt-view.js';

export type DashboardProps = {
	readonly state: AppState;
	/** What only the view knows: overlay, focus, scroll, filter, selection (core/view-state.ts). */
	readonly view?: ViewState;
	/** Epoch ms to compute uptimes and countdowns against. */
	readonly now: number;
	readonly columns: number;
	readonly rows: number;
	readonly color: boolean;
	/** What has been typed into a prompt (kept by the App, never in the store). */
	readonly draft?: string;
	/** The host-key prompt's last answer was neither yes, no nor the fingerprint. */
	readonly promptAgain?: boolean;
};

/** The whole screen for one store snapshot: exactly `columns` wide, at most `rows` tall. */
export function Dashboard({
	state,
	view = initialView,
	now,
	columns,
	rows,
	color,
	draft = '',
	promptAgain = false,
}: DashboardProps) {
	const layout = computeLayout(state, columns, rows, view);
	const {compact} = layout;
	const focused = (pane: PaneId) => focusedPane(state, view) === pane;
	const kernels = state.jupyter?.kernels ?? null;
	const selected = selectedKernelIndex(state.kernels, view);
	const pinned = state.kernels.find((k) => k.id === view.kernelId);
	const gpus = state.gpu?.gpus ?? [];
	let bottom;
	if (state.prompt) {
		const keys = state.prompt.kind === 'host-key' ? hostKeyPromptKeys : secretPromptKeys;
		bottom = <Footer role={state.role} width={columns} items={modeFooterItems(keys)} />;
	} else if (view.overlay === 'confirm-restart') {
		bottom = (
			<Confirm question={restartQuestion(kernels)} hint={modeHint(confirmKeys)} width={columns} />
		);
	} else if (
		(view.overlay === 'confirm-kernel-restart' || view.overlay === 'confirm-kernel-shutdown') &&
		pinned
	) {
		const action = view.overlay === 'confirm-kernel-restart' ? 'restart' : 'shutdown';
		bottom = (
			<Confirm
				question={kernelQuestion(pinned, action, gpus)}
				hint={modeHint(confirmKeys)}
				width={columns}
			/>
		);
	} else if (view.overlay === 'confirm-quit') {
		bottom = (
			<Confirm
				question={
					state.role === 'connect' && state.job
						? jobQuitQuestion(state.job.id)
						: quitQuestion(kernels)
				}
				hint={modeHint(confirmQuitKeys)}
				width={columns}
			/>
		);
	} else if (view.overlay === 'help') {
		bottom = <Footer role={state.role} width={columns} items={modeFooterItems(helpKeys)} />;
	} else if (view.filterEditing) {
		bottom = <Footer role={state.role} width={columns} items={modeFooterItems(filterKeys)} />;
	} else if (focused('notebooks')) {
		bottom = <Footer role={state.role} width={columns} items={notebookFooterItems(state.role)} />;
	} else {
		bottom = <Footer role={state.role} width={columns} />;
	}

	const gpu = (
		<Box width={layout.gpuWidth} height={layout.gpu} flexShrink={0} overflowY="hidden">
			<GpuPane
				gpu={state.gpu}
				history={state.gpuHistory}
				host={state.host}
				width={layout.gpuWidth}
				height={layout.gpu}
				compact={compact}
				focused={focused('gpu')}
				kernels={state.kernels}
			/>
		</Box>
	);
	const notebooks =
		layout.notebooks > 0 ? (
			compact ? (
				<Box flexDirection="column" width={columns} height={layout.notebooks} flexShrink={0}>
					{state.kernels.slice(0, layout.notebooks).map((kernel, index) => (
						<Line
							key={kernel.id}
							segments={[
								{text: focused('notebooks') && index === selected ? '›' : ' ', accent: true},
								...compactNotebookLine(kernel, gpus, now, columns - 1),
							]}
						/>
					))}
				</Box>
			) : (
				<NotebooksPane
					kernels={state.kernels}
					gpus={gpus}
					hostName={state.title || 'GPU host'}
					now={now}
					width={layout.notebooksWidth}
					height={layout.notebooks}
					focused={focused('notebooks')}
					selected={selected}
				/>
			)
		) : null;
	const jupyter = (
		<JupyterPane
			jupyter={state.jupyter}
			source={state.source}
			now={now}
			width={layout.jupyterWidth}
			height={layout.jupyter}
			// Beside the Notebooks pane, Jupyter is the line above it.
			compact={compact || layout.notebooks > 0}
			focused={focused('jupyter')}
		/>
	);
	return (
		<ThemeContext.Provider value={makeTheme(color)}>
			<Box flexDirection="column" width={columns} height={rows} overflowY="hidden">
				{layout.header > 0 ? (
					<Header state={state} now={now} width={columns} compact={compact} />
				) : null}
				{layout.help > 0 ? (
					<HelpOverlay
						role={state.role}
						configFile={state.configFile}
						width={columns}
						height={layout.help}
					/>
				) : null}
				{layout.path > 0 ? (
					<PathPane
						state={state}
						now={now}
						width={columns}
						height={layout.path}
						compact={compact}
						focused={focused('path')}
					/>
				) : null}
				{compact ? (
					<>
						{layout.gpu > 0 ? gpu : null}
						{notebooks}
						{layout.jupyter > 0 ? jupyter : null}
					</>
				) : layout.gpu > 0 ? (
					<Box width={columns} height={layout.gpu} flexShrink={0}>
						{gpu}
						{notebooks ? (
							<Box flexDirection="column" width={layout.jupyterWidth} height={layout.gpu}>
								{jupyter}
								{notebooks}
							</Box>
						) : (
							jupyter
						)}
					</Box>
				) : null}
				{layout.log > 0 ? (
					<LogPane
						logs={state.logs}
						filter={view.logFilter}
						editing={view.filterEditing}
						scroll={logScrollOf(view, state.logSeq, state.logs.length)}
						width={columns}
						height={layout.log}
						compact={compact}
						focused={focused('log')}
						hint={state.logHint}
					/>
				) : null}
				{state.prompt && layout.prompt > 0 ? (
					<PromptView
						prompt={state.prompt}
						draft={draft}
						again={promptAgain}
						width={columns}
						compact={compact}
					/>
				) : null}
				{layout.footer > 0 ? bottom : null}
			</Box>
		</ThemeContext.Provider>
	);
}
