import {createContext, useContext} from 'react';
import type {HopState, JupyterState} from './core/types.js';

/** A colour name Ink understands, or undefined for the terminal's own (NO_COLOR). */
export type Colour = string | undefined;

export type Theme = {
	readonly color: boolean;
	readonly good: Colour;
	readonly warn: Colour;
	readonly bad: Colour;
	/** Titles and the focused pane's border. */
	readonly accent: Colour;
	/** Borders of panes without focus. */
	readonly border: Colour;
	/** Secondary text; `dimColor` is only used when colour is on. */
	readonly dim: boolean;
};

const colourTheme: Theme = {
	color: true,
	good: 'green',
	warn: 'yellow',
	bad: 'red',
	accent: 'cyan',
	border: 'gray',
	dim: true,
};
const plainTheme: Theme = {
	color: false,
	good: undefined,
	warn: undefined,
	bad: undefined,
	accent: undefined,
	border: undefined,
	dim: false,
};

/**
 * One object per choice, the same every frame: a new one would change the context's value and
 * re-render every pane that reads it, memoised or not.
 */
export function makeTheme(color: boolean): Theme {
	return color ? colourTheme : plainTheme;
}

export const ThemeContext = createContext<Theme>(makeTheme(false));

export function useTheme(): Theme {
	return useContext(ThemeContext);
}

export type Grade = 'good' | 'warn' | 'bad';

/** Green → yellow → red, for percentages (utilization, memory, fan). */
export function gradePercent(percent: number | null): Grade | null {
	if (percent === null || !Number.isFinite(percent)) return null;
	if (percent >= 90) return 'bad';
	if (percent >= 70) return 'warn';
	return 'good';
}

export function gradeColour(theme: Theme, grade: Grade | null): Colour {
	return grade === null ? undefined : theme[grade];
}

/** ● ready; ◐ connecting, waiting, lost; ○ failed, closed. */
export function hopGrade(state: HopState): Grade {
	if (state === 'ready') return 'good';
	if (state === 'failed' || state === 'closed') return 'bad';
	return 'warn';
}

export function jupyterGrade(state: JupyterState | null): Grade {
	if (state === 'running') return 'good';
	if (state === 'starting' || state === 'restarting' || state === null) return 'warn';
	return 'bad';
}

export const gradeGlyph: Readonly<Record<Grade, string>> = {good: '●', warn: '◐', bad: '○'};
