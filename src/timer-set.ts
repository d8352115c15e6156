/** The timers of one run (`callLater`, the run's timeout): cleared together when the run ends. */
export class TimerSet {
	readonly #timers = new Set<NodeJS.Timeout>();

	/** How many are pending. */
	get size(): number {
		return this.#timers.size;
	}

	/** Calls `fn` after `ms`; returns a function that cancels it. */
	after(ms: number, fn: () => void): () => void {
		const timer = setTimeout(() => {
			this.#timers.delete(timer);
			fn();
		}, ms);
		this.#timers.add(timer);
		return () => {
			clearTimeout(timer);
			this.#timers.delete(timer);
		};
	}

	clear(): void {
		for (const timer of this.#timers) {
			clearTimeout(timer);
		}
		this.#timers.clear();
	}
}
