import type {AppAction, AppState} from '../core/app-state.js';
import type {Store} from '../core/store.js';
import type {HopName, Prompt} from '../core/types.js';
import type {AskerFactory} from '../wiring/ssh-options.js';

type Pending = {
	readonly prompt: Prompt;
	readonly resolve: (answer: boolean | string | null) => void;
};

/**
 * Turns a hop's questions (passphrase, 2FA code, unknown host key) into dashboard prompts, one at
 * a time, and the user's answers back into the hop's promises.
 */
export function createPromptAsker(store: Store<AppState, AppAction>): {
	readonly factory: AskerFactory;
	answer(id: number, answer: boolean | string | null): void;
	/** Refuses every open question (on exit). */
	cancelAll(): void;
} {
	let nextId = 1;
	const queue: Pending[] = [];
	const show = () => {
		store.dispatch({type: 'prompt', prompt: queue[0]?.prompt ?? null});
	};

	const ask = (prompt: Prompt) =>
		new Promise<boolean | string | null>((resolve) => {
			queue.push({prompt, resolve});
			if (queue.length === 1) show();
		});

	return {
		factory: (hop: HopName) => ({
			async askSecret(message: string, echo: boolean) {
				const answer = await ask({kind: 'secret', id: nextId++, hop, message, echo});
				return typeof answer === 'string' ? answer : null;
			},
			async confirmHostKey(info: {host: string; keyType: string; fingerprint: string}) {
				const answer = await ask({kind: 'host-key', id: nextId++, hop, ...info});
				return answer === true;
			},
		}),
		answer(id, answer) {
			const index = queue.findIndex((p) => p.prompt.id === id);
			if (index === -1) return;
			const [pending] = queue.splice(index, 1);
			pending!.resolve(answer);
			show();
		},
		cancelAll() {
			for (const pending of queue.splice(0)) pending.resolve(null);
			show();
		},
	};
}
