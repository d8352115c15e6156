import { availableParallelism } from "node:os";
import { exposeForTests } from "../test-hooks.ts";

/** Something the watchdog checks. */
export interface Watched {
	/** The shortest time between two checks, in milliseconds. */
	readonly intervalMs: number;
	/**
	 * Checks, and returns how long the next check can wait, in milliseconds (at least
	 * `intervalMs` is waited, at most `MAX_CHECK_MS`); nothing means `intervalMs`.
	 */
	check(): number | void;
}

/** The longest a watched call goes unchecked, in milliseconds. */
export const MAX_CHECK_MS = 1_000;

/**
 * The fastest one thread is taken to fill memory, in bytes per millisecond (4 GB/s; filling
 * fresh pages runs at about 1.2–1.5 GB/s on the machine the benchmarks ran on). A check that
 * finds a call far below its memory limit waits until it could have reached it at this rate,
 * times the threads that can be filling it (`CORES` for a process and its children).
 */
export const MEMORY_GROWTH_BYTES_PER_MS = (4 * 1024 ** 3) / 1000;

/** How many threads can run at once on this machine. */
export const CORES = availableParallelism();

/**
 * One timer for every running call that has a CPU or memory limit. Each call is checked when it
 * could first have passed its limit: CPU time cannot grow faster than wall time, and memory is
 * taken to grow at most `MEMORY_GROWTH_BYTES_PER_MS` per thread, so a call far from its limits is checked
 * seldom, one close to them every `intervalMs`. The timer runs only while there is something to
 * watch, and never keeps the process alive.
 */
export class Watchdog {
	readonly #due = new Map<Watched, number>();
	#timer: NodeJS.Timeout | undefined;
	#timerAt = Number.POSITIVE_INFINITY;
	#ticks = 0;
	/** While a tick runs its checks, re-arming waits for the tick's end. */
	#ticking = false;

	constructor() {
		exposeForTests(this, { state: () => ({ ticks: this.#ticks, active: this.#timer !== undefined }) });
	}

	/**
	 * Watches `watched`; its first check comes after `firstMs` (`intervalMs` by default). Adding
	 * what is already watched can only bring its next check forward.
	 */
	add(watched: Watched, firstMs = watched.intervalMs): void {
		const due = performance.now() + clamp(firstMs, watched.intervalMs);
		const current = this.#due.get(watched);
		this.#due.set(watched, current === undefined ? due : Math.min(current, due));
		this.#arm();
	}

	delete(watched: Watched): void {
		if (this.#due.delete(watched)) {
			this.#arm();
		}
	}

	#arm(): void {
		if (this.#ticking) {
			return;
		}
		if (this.#due.size === 0) {
			clearTimeout(this.#timer);
			this.#timer = undefined;
			this.#timerAt = Number.POSITIVE_INFINITY;
			return;
		}
		let earliest = Number.POSITIVE_INFINITY;
		for (const due of this.#due.values()) {
			earliest = Math.min(earliest, due);
		}
		if (this.#timer !== undefined && earliest >= this.#timerAt) {
			return;
		}
		clearTimeout(this.#timer);
		this.#timerAt = earliest;
		this.#timer = setTimeout(() => this.#tick(), Math.max(1, earliest - performance.now()));
		this.#timer.unref();
	}

	#tick(): void {
		this.#ticks++;
		this.#timer = undefined;
		this.#timerAt = Number.POSITIVE_INFINITY;
		// Timers round to whole milliseconds: what is due within the next one is checked now.
		const now = performance.now();
		this.#ticking = true;
		try {
			for (const [watched, due] of [...this.#due]) {
				if (due <= now + 1 && this.#due.has(watched)) {
					const wait = watched.check();
					if (this.#due.get(watched) === due) {
						this.#due.set(watched, now + clamp(wait ?? watched.intervalMs, watched.intervalMs));
					}
				}
			}
		} finally {
			this.#ticking = false;
		}
		this.#arm();
	}
}

function clamp(waitMs: number, intervalMs: number): number {
	return Math.min(MAX_CHECK_MS, Math.max(intervalMs, Number.isFinite(waitMs) ? waitMs : MAX_CHECK_MS));
}
