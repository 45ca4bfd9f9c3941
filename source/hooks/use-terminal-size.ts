import {useStdout} from 'ink';
import {useEffect, useState} from 'react';

export type TerminalSize = {readonly columns: number; readonly rows: number};

const fallback: TerminalSize = {columns: 80, rows: 24};

function read(stdout: NodeJS.WriteStream): TerminalSize {
	const columns = stdout.columns > 0 ? stdout.columns : fallback.columns;
	const rows = stdout.rows > 0 ? stdout.rows : fallback.rows;
	return {columns, rows};
}

/** Columns and rows of Ink's stdout, following 'resize'; 80×24 when the stream does not say. */
export function useTerminalSize(): TerminalSize {
	const {stdout} = useStdout();
	const [size, setSize] = useState(() => read(stdout));
	useEffect(() => {
		const update = () => {
			const next = read(stdout);
			setSize((previous) =>
				previous.columns === next.columns && previous.rows === next.rows ? previous : next,
			);
		};

		update();
		stdout.on('resize', update);
		return () => {
			stdout.off('resize', update);
		};
	}, [stdout]);
	return size;
}
