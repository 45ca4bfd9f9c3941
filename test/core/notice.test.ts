import {describe, expect, test} from 'vitest';
import {noticeShownMs, visibleNotice} from '../../source/core/notice.js';

describe('the notice policy', () => {
	test('an info notice stays 3 s; a warning and an error stay 8 s, not 2', () => {
		const at = 1_000_000;
		const info = {text: 'copied ✓', level: 'info', at} as const;
		const warn = {text: 'no Jupyter URL yet', level: 'warn', at} as const;
		const error = {text: 'restart failed', level: 'error', at} as const;
		expect(visibleNotice(info, at + 2900)).toBe(info);
		expect(visibleNotice(info, at + 3000)).toBeNull();
		for (const notice of [warn, error]) {
			expect(visibleNotice(notice, at + 2000)).toBe(notice);
			expect(visibleNotice(notice, at + 7900)).toBe(notice);
			expect(visibleNotice(notice, at + 8000)).toBeNull();
		}

		expect(visibleNotice(null, at)).toBeNull();
		expect(noticeShownMs).toEqual({info: 3000, warn: 8000, error: 8000});
	});
});
