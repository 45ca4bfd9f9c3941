/**
 * The one notice policy: how long a line in the header (`copied ✓`, `no Jupyter URL yet…`) stays.
 * Long enough to read a warning or an error; the log keeps anything longer. The header hides a
 * notice once its time is up, so no timer has to clear it.
 */
import type {Notice} from './types.js';

/** How long each level of notice stays, in ms. */
export const noticeShownMs: Readonly<Record<Notice['level'], number>> = {
	info: 3000,
	warn: 8000,
	error: 8000,
};

/** The notice to show at `now`, or null once its time is up. */
export function visibleNotice(notice: Notice | null, now: number): Notice | null {
	if (!notice) return null;
	return now - notice.at < noticeShownMs[notice.level] ? notice : null;
}
