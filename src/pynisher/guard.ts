import type { Limits } from "../executors/executor.ts";
import { CpuTimeLimitError, type LimitExceededError, MemoryLimitError, WallTimeLimitError } from "./errors.ts";
import { CORES, MAX_CHECK_MS, MEMORY_GROWTH_BYTES_PER_MS, type Watchdog, type Watched } from "./watchdog.ts";

/** Reads what a running call uses, from outside the thread or process that runs it. */
export interface Probe {
	/** CPU time used by the call so far in milliseconds, or -1 when it cannot be read. */
	cpuMs(): number;
	/** Resident memory of the call's process (and its children) in bytes, where the call has a process of its own. */
	rssBytes?(): number;
}

/**
 * Watches one running call against its limits: a timer for wall time, the shared watchdog for
 * CPU time and resident memory. The first limit passed calls `onLimit` once with its error.
 */
export class Guard implements Watched {
	readonly intervalMs: number;
	readonly #limits: Limits;
	readonly #probe: Probe;
	readonly #watchdog: Watchdog;
	readonly #onLimit: (error: LimitExceededError) => void;
	#wallTimer: NodeJS.Timeout | undefined;
	#startedAt = 0;
	#source: (() => number | undefined) | undefined;
	#cpuMs = -1;
	#peakRss = 0;
	#fired: LimitExceededError | undefined;
	#watching = false;

	constructor(limits: Limits, probe: Probe, watchdog: Watchdog, onLimit: (error: LimitExceededError) => void) {
		this.#limits = limits;
		this.#probe = probe;
		this.#watchdog = watchdog;
		this.#onLimit = onLimit;
		this.intervalMs = limits.sampleMs;
	}

	/** The limit error, once one fired. */
	get fired(): LimitExceededError | undefined {
		return this.#fired;
	}

	/** The last CPU time read, in milliseconds. */
	get cpuMs(): number {
		return this.#cpuMs;
	}

	/** The highest resident memory read, in bytes (0 when not read). */
	get peakRss(): number {
		return this.#peakRss;
	}

	/**
	 * Starts watching. Wall time counts from now, or, with `startedAt`, from the moment it gives
	 * (in `performance.now()` time; `undefined` while the call has not started where it runs).
	 */
	start(watchRss: boolean, startedAt?: () => number | undefined): void {
		this.#startedAt = performance.now();
		this.#source = startedAt;
		const { wallMs, cpuMs } = this.#limits;
		if (wallMs !== undefined) {
			this.#armWall(wallMs, wallMs);
		}
		if (cpuMs !== undefined || (watchRss && this.#probe.rssBytes !== undefined)) {
			this.#watching = true;
			// A call far from its memory limit needs no look before its CPU time could reach its limit.
			const memoryWatched = watchRss && this.#probe.rssBytes !== undefined && this.#limits.memoryBytes !== undefined;
			this.#watchdog.add(this, memoryWatched || cpuMs === undefined ? this.intervalMs : cpuMs);
		}
	}

	/** When the call started, in `performance.now()` time; `undefined` when it has not yet. */
	#start(): number | undefined {
		return this.#source === undefined ? this.#startedAt : this.#source();
	}

	#armWall(limit: number, delay: number): void {
		this.#wallTimer = setTimeout(() => {
			const start = this.#start();
			if (start === undefined) {
				// Not started where it runs (a thread still starting): it has its whole limit still.
				this.#armWall(limit, limit);
				return;
			}
			const elapsed = performance.now() - start;
			// Timers round to whole milliseconds and may fire a fraction early.
			if (elapsed < limit) {
				this.#armWall(limit, Math.max(1, Math.ceil(limit - elapsed)));
			} else {
				this.#fire(new WallTimeLimitError(limit, elapsed));
			}
		}, delay);
		this.#wallTimer.unref();
	}

	/** Milliseconds since the call started (0 before it has). */
	elapsed(): number {
		const start = this.#startedAt === 0 ? undefined : this.#start();
		return start === undefined ? 0 : performance.now() - start;
	}

	/** Reads the call's CPU time and memory; returns how long the next check can wait (see `Watchdog`). */
	check(): number {
		if (this.#fired !== undefined) {
			return MAX_CHECK_MS;
		}
		const { cpuMs, memoryBytes } = this.#limits;
		let wait = MAX_CHECK_MS;
		const cpu = this.#probe.cpuMs();
		if (cpu >= 0) {
			this.#cpuMs = cpu;
			if (cpuMs !== undefined && cpu >= cpuMs) {
				this.#fire(new CpuTimeLimitError(cpuMs, cpu));
				return MAX_CHECK_MS;
			}
			// A thread's CPU time grows at most as fast as wall time.
			if (cpuMs !== undefined) {
				wait = Math.min(wait, cpuMs - cpu);
			}
		} else if (cpuMs !== undefined) {
			// Not started yet, or not readable now: look again soon.
			wait = this.intervalMs;
		}
		if (this.#probe.rssBytes !== undefined) {
			const rss = this.#probe.rssBytes();
			this.#peakRss = Math.max(this.#peakRss, rss);
			if (memoryBytes !== undefined && rss > memoryBytes) {
				this.#fire(new MemoryLimitError(memoryBytes, rss, "rss"));
				return MAX_CHECK_MS;
			}
			if (memoryBytes !== undefined) {
				// A process and its children can fill memory on every core at once.
				wait = Math.min(wait, rss < 0 ? this.intervalMs : (memoryBytes - rss) / (MEMORY_GROWTH_BYTES_PER_MS * CORES));
			}
		}
		return wait;
	}

	#fire(error: LimitExceededError): void {
		if (this.#fired !== undefined) {
			return;
		}
		this.#fired = error;
		this.dispose();
		this.#onLimit(error);
	}

	/** Stops every timer of this call. */
	dispose(): void {
		clearTimeout(this.#wallTimer);
		this.#wallTimer = undefined;
		if (this.#watching) {
			this.#watching = false;
			this.#watchdog.delete(this);
		}
	}
}
