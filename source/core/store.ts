/** A tiny external store for `useSyncExternalStore` and the JSON lines writer alike. */
export type Store<S, A> = {
	readonly getSnapshot: () => S;
	readonly dispatch: (action: A) => void;
	/** Returns the unsubscribe function. */
	readonly subscribe: (listener: () => void) => () => void;
};

export function createStore<S, A>(reducer: (state: S, action: A) => S, initial: S): Store<S, A> {
	let state = initial;
	const listeners = new Set<() => void>();
	return {
		getSnapshot: () => state,
		dispatch(action) {
			const next = reducer(state, action);
			if (next === state) return;
			state = next;
			for (const listener of [...listeners]) listener();
		},
		subscribe(listener) {
			listeners.add(listener);
			return () => {
				listeners.delete(listener);
			};
		},
	};
}
