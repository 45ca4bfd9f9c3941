import {cleanup, render} from 'ink-testing-library';
import {afterEach, describe, expect, test} from 'vitest';
import {LogPane} from '../../source/components/log-pane.js';
import {ThemeContext, makeTheme} from '../../source/theme.js';

afterEach(() => {
	cleanup();
});

const lines = Array.from({length: 20}, (_, i) =>
	i % 5 === 0 ? `[I 14:00:${String(i).padStart(2, '0')}] Kernel started: k${i}` : `[D] line ${i}`,
);

function frame(props: {
	filter?: string;
	editing?: boolean;
	scroll?: number;
	compact?: boolean;
	logs?: string[];
}) {
	return render(
		<ThemeContext.Provider value={makeTheme(false)}>
			<LogPane
				logs={props.logs ?? lines}
				filter={props.filter ?? ''}
				editing={props.editing ?? false}
				scroll={props.scroll ?? 0}
				width={50}
				height={6}
				compact={props.compact ?? false}
				focused={false}
			/>
		</ThemeContext.Provider>,
	).lastFrame();
}

const box = (title: string, ...body: string[]) =>
	[
		`┌ ${title} ${'─'.repeat(50 - 4 - title.length)}┐`,
		...body.map((line) => `│ ${line.padEnd(46)} │`),
		`└${'─'.repeat(48)}┘`,
	].join('\n');

describe('log pane', () => {
	test('follows the newest lines', () => {
		expect(frame({})).toBe(
			box('Log  jupyter · following', '[D] line 16', '[D] line 17', '[D] line 18', '[D] line 19'),
		);
	});

	test('scrolled up from the bottom, clamped at the top', () => {
		expect(frame({scroll: 3})).toBe(
			box(
				'Log  jupyter · scrolled',
				'[D] line 13',
				'[D] line 14',
				'[I 14:00:15] Kernel started: k15',
				'[D] line 16',
			),
		);
		expect(frame({scroll: 500})).toBe(
			box(
				'Log  jupyter · scrolled',
				'[I 14:00:00] Kernel started: k0',
				'[D] line 1',
				'[D] line 2',
				'[D] line 3',
			),
		);
	});

	test('filtered, case-insensitively, with the filter in the title', () => {
		expect(frame({filter: 'KERNEL', editing: true})).toBe(
			box(
				'Log  jupyter · following · filter: KERNEL▏',
				'[I 14:00:00] Kernel started: k0',
				'[I 14:00:05] Kernel started: k5',
				'[I 14:00:10] Kernel started: k10',
				'[I 14:00:15] Kernel started: k15',
			),
		);
		expect(frame({filter: 'nothing'})).toBe(
			box('Log  jupyter · following · filter: nothing', 'no lines match “nothing”', '', '', ''),
		);
	});

	test('lines are cut, never wrapped; tokens and escapes never reach the screen', () => {
		expect(
			frame({
				logs: [
					`GET /api/kernels?token=abc123def456 ${'x'.repeat(60)}`,
					'\u001B[31mred\u001B[0m\tand a bell\u0007',
				],
				compact: true,
			}),
		).toBe(
			[
				' ─ log · jupyter · following ─────────────────────',
				' GET /api/kernels?token=… xxxxxxxxxxxxxxxxxxxxxxx…',
				' red    and a bell',
				'',
				'',
				'',
			].join('\n'),
		);
	});
});
