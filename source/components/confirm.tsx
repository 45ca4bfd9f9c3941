import {Box, Text} from 'ink';
import {useTheme} from '../theme.js';

/** `Restart Jupyter? 2 kernels will be stopped. [y/N]` */
export function restartQuestion(kernels: number | null): string {
	const stopped =
		kernels === null
			? 'Its kernels will be stopped.'
			: `${kernels} kernel${kernels === 1 ? '' : 's'} will be stopped.`;
	return `Restart Jupyter? ${stopped} [y/N]`;
}

/** `Stop Jupyter too? 2 kernels running. [y/N]` (No, the default, leaves it running.) */
export function quitQuestion(kernels: number | null): string {
	const running = kernels === null ? '' : ` ${kernels} kernel${kernels === 1 ? '' : 's'} running.`;
	return `Stop Jupyter too?${running} [y/N]`;
}

/** `connect --slurm --on-quit ask`: `Cancel Slurm job 4711 too (frees its GPUs)? [y/N]` */
export function jobQuitQuestion(jobId: string): string {
	return `Cancel Slurm job ${jobId} too (frees its GPUs; N keeps it for the next connect)? [y/N]`;
}

type Props = {
	readonly question: string;
	/** What Esc does, after the question. */
	readonly hint: string;
	readonly width: number;
};

/** A y/N question on the footer's line, vim style: the rest of the screen stays visible. */
export function Confirm({question, hint, width}: Props) {
	const theme = useTheme();
	return (
		<Box width={width} height={1} flexShrink={0}>
			<Text wrap="truncate-end">
				{' '}
				<Text color={theme.warn} bold={theme.color}>
					{question}
				</Text>
				<Text dimColor={theme.dim}>{`  ${hint}`}</Text>
			</Text>
		</Box>
	);
}
