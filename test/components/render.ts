import {render} from 'ink-testing-library';
import type {ReactElement} from 'react';

/**
 * ink-testing-library's stdout says 100 columns, and Ink lays the root out at that width (text
 * placed past it is misdrawn). Give this instance the wanted width, then render again.
 */
export function renderAt(tree: ReactElement, columns: number): ReturnType<typeof render> {
	const instance = render(tree);
	Object.defineProperty(instance.stdout, 'columns', {get: () => columns, configurable: true});
	instance.stdout.emit('resize');
	instance.rerender(tree);
	return instance;
}
