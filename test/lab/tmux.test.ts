import {afterEach, describe, expect, it} from 'vitest';
import {startTmux, type Tmux} from '../helpers/tmux.js';
import {waitFor} from '../helpers/wait-for.js';

describe('tmux helper', () => {
	let tmux: Tmux | undefined;
	afterEach(async () => {
		await tmux?.dispose();
		tmux = undefined;
	});

	it('runs a program, reads the screen, sends keys and reports the exit code', async () => {
		// A tiny interactive program: prints its env, hides the cursor, copies with OSC 52, then
		// waits for a line of input and exits with a status of its own.
		const script = [
			'printf "CI=%s TERM=%s cols=%s\\n" "$CI" "$TERM" "$(tput cols)"',
			"printf '\\033]52;c;%s\\a' \"$(printf 'copied-url' | base64)\"",
			"printf '\\033[?25l'",
			'printf "type: "',
			'read line',
			'echo "got [$line]"',
			'exit 7',
		].join('\n');
		tmux = await startTmux(['sh', '-c', script], {
			env: {...process.env, CI: 'true'},
			width: 100,
			height: 30,
		});
		const screen = await tmux.waitForText('type:');
		expect(screen).toContain('CI=false TERM=xterm-256color cols=100');
		expect(await tmux.buffer()).toBe('copied-url');
		expect(await tmux.cursorVisible()).toBe(false);
		expect(await tmux.exitCode()).toBeNull();

		await tmux.sendText('hello world');
		await tmux.sendKeys('Enter');
		await tmux.waitForText('got [hello world]');
		expect(await waitFor(async () => tmux!.exitCode(), {message: 'exit code'})).toBe(7);
		// The last screen stays for inspection.
		expect(await tmux.capture()).toContain('got [hello world]');
	});

	it('delivers C-c as SIGINT to the program and reports 130', async () => {
		tmux = await startTmux(['sleep', '1000'], {env: process.env});
		await tmux.sendKeys('C-c');
		expect(await waitFor(async () => tmux!.exitCode(), {message: 'exit after C-c'})).toBe(130);
		await tmux.resize(90, 20);
		// The tty echoed ^C; the capture now has the new height.
		expect((await tmux.capture()).split('\n')).toEqual(['^C', ...Array<string>(19).fill(''), '']);
	});
});
