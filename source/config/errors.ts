/** Bad usage or configuration: the message names the flag, variable or file:line and key. */
export class ConfigError extends Error {
	readonly exitCode = 2;

	constructor(message: string) {
		super(message);
		this.name = 'ConfigError';
	}
}
