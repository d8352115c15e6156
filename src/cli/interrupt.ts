/** A signal this soon after the first is the same Ctrl-C: the terminal's, and the one a parent passed on. */
const SAME_SIGNAL_MS = 250;

/**
 * Calls `stop` on the first Ctrl-C (SIGINT) or SIGTERM, so that the command stops its calls and
 * ends with code 130 once they are stopped. A second signal does not wait: it runs `hurry` (which
 * must be synchronous: write out what is held) and exits at once with 130. Threads end with the
 * process; pool processes end when their parent is gone. Returns a function that stops listening.
 */
export function onInterrupt(stop: () => void, hurry: () => void = () => {}): () => void {
	let first: number | undefined;
	const handler = (): void => {
		const now = performance.now();
		if (first === undefined) {
			first = now;
			stop();
			return;
		}
		if (now - first < SAME_SIGNAL_MS) {
			return;
		}
		hurry();
		process.exit(130);
	};
	process.on("SIGINT", handler);
	process.on("SIGTERM", handler);
	return () => {
		process.off("SIGINT", handler);
		process.off("SIGTERM", handler);
	};
}
