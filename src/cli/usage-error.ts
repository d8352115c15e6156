/** A command line the `byop` command cannot act on: it exits with code 2 and this message. */
export class UsageError extends Error {
	override name = "UsageError";
	readonly code = "ERR_USAGE";
}

/** Formats a value as the user typed it, for messages: `"5x"`. */
export function quote(value: string): string {
	return JSON.stringify(value);
}
