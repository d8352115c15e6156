import { clearLongTimeout, type LongTimeout, setLongTimeout } from "./long-timeout.ts";

/**
 * The timers of one run (`callLater`, the run's timeout): cleared together when the run ends.
 * Any delay works, however long (see `setLongTimeout`).
 */
export class TimerSet {
	readonly #timers = new Set<LongTimeout>();

	/** How many are pending. */
	get size(): number {
		return this.#timers.size;
	}

	/** Calls `fn` after `ms`; returns a function that cancels it. */
	after(ms: number, fn: () => void): () => void {
		const timer = setLongTimeout(() => {
			this.#timers.delete(timer);
			fn();
		}, ms);
		this.#timers.add(timer);
		return () => {
			clearLongTimeout(timer);
			this.#timers.delete(timer);
		};
	}

	clear(): void {
		for (const timer of this.#timers) {
			clearLongTimeout(timer);
		}
		this.#timers.clear();
	}
}
