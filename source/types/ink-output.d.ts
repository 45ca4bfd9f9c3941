/**
 * Ink's Output class (build/output.js), which Ink's package exports do not name: the dashboard's
 * bundle resolves it to the copy of Ink it draws with (rolldown.config.js), for
 * services/workarounds/ink-output-cache.ts, which checks its shape before it touches it.
 */
declare module 'ink/build/output.js' {
	const Output: unknown;
	export default Output;
}
