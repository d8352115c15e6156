/** Something the watchdog checks on each tick. */
export interface Watched {
	/** How often it wants to be checked, in milliseconds. */
	readonly intervalMs: number;
	check(): void;
}

/**
 * One timer for every running call that has a CPU or memory limit. It ticks only while there is
 * something to watch, at the shortest interval asked for, and never keeps the process alive.
 */
export class Watchdog {
	readonly #watched = new Set<Watched>();
	#timer: NodeJS.Timeout | undefined;
	#interval = 0;
	#ticks = 0;

	/** How many times the timer has fired: for tests and benchmarks. */
	get ticks(): number {
		return this.#ticks;
	}

	/** Whether the timer is running. */
	get active(): boolean {
		return this.#timer !== undefined;
	}

	/** How many things are watched now. */
	get size(): number {
		return this.#watched.size;
	}

	add(watched: Watched): void {
		this.#watched.add(watched);
		this.#schedule();
	}

	delete(watched: Watched): void {
		if (this.#watched.delete(watched)) {
			this.#schedule();
		}
	}

	#schedule(): void {
		if (this.#watched.size === 0) {
			clearInterval(this.#timer);
			this.#timer = undefined;
			this.#interval = 0;
			return;
		}
		let interval = Number.POSITIVE_INFINITY;
		for (const watched of this.#watched) {
			interval = Math.min(interval, watched.intervalMs);
		}
		if (this.#timer !== undefined && interval === this.#interval) {
			return;
		}
		clearInterval(this.#timer);
		this.#interval = interval;
		this.#timer = setInterval(() => this.#tick(), interval);
		this.#timer.unref();
	}

	#tick(): void {
		this.#ticks++;
		for (const watched of [...this.#watched]) {
			watched.check();
		}
	}
}
