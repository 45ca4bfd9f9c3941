import {useSyncExternalStore} from 'react';
import type {Store} from '../core/store.js';

/** The store's current snapshot; re-renders on every change (the reducer keeps identities). */
export function useStore<S, A>(store: Store<S, A>): S {
	return useSyncExternalStore(store.subscribe, store.getSnapshot, store.getSnapshot);
}
