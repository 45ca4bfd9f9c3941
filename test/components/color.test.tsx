/**
 * Colours on and off. vitest sets FORCE_COLOR=0 for every file; this one turns the terminal's
 * colour support on before Ink (and its chalk) load, so `color` alone decides.
 */
import type * as InkTesting from 'ink-testing-library';
import {afterEach, beforeAll, describe, expect, test} from 'vitest';
import type * as DashboardModule from '../../source/components/dashboard.js';
import type * as Fixtures from './fixtures.js';

// Type-only imports are erased: nothing loads before FORCE_COLOR is set below.
type Modules = {
	render: typeof InkTesting.render;
	cleanup: typeof InkTesting.cleanup;
	Dashboard: typeof DashboardModule.Dashboard;
	fixtures: typeof Fixtures;
};
let m: Modules;

beforeAll(async () => {
	process.env['FORCE_COLOR'] = '3';
	const ink = await import('ink-testing-library');
	const {Dashboard} = await import('../../source/components/dashboard.js');
	const fixtures = await import('./fixtures.js');
	m = {render: ink.render, cleanup: ink.cleanup, Dashboard, fixtures};
});

afterEach(() => {
	m.cleanup();
});

// eslint-disable-next-line no-control-regex
const stripAnsi = (text: string) => text.replaceAll(/\u001B\[[0-9;]*m/g, '');

describe('NO_COLOR', () => {
	test('colour on grades glyphs; off, the same glyphs and text without one escape', () => {
		const {fixtures, Dashboard, render} = m;
		const state = fixtures.laptopState({gpus: 4});
		const frame = (color: boolean) =>
			render(
				<Dashboard state={state} now={fixtures.now} columns={80} rows={24} color={color} />,
			).lastFrame() ?? '';
		const coloured = frame(true);
		const plain = frame(false);
		expect(coloured).toContain('\u001B[32m●');
		expect(plain).not.toContain('\u001B');
		expect(stripAnsi(coloured)).toBe(plain);
	});
});
