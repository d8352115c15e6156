/**
 * Calls `stop` on the first Ctrl-C (SIGINT) or SIGTERM, so that the command stops its calls and
 * ends with code 130 once they are stopped. A second signal does not wait: it runs `hurry` (which
 * must be synchronous: write out what is held) and exits at once with 130. Threads end with the
 * process; pool processes end when their parent is gone. Returns a function that stops listening.
 */
export function onInterrupt(stop: () => void, hurry: () => void = () => {}): () => void {
	let signals = 0;
	const handler = (): void => {
		signals++;
		if (signals === 1) {
			stop();
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
