import type { Usage } from "../future.ts";
import { clearLongTimeout, type LongTimeout, setLongTimeout } from "../long-timeout.ts";
import { CpuTimeLimitError, MemoryLimitError, WallTimeLimitError } from "./errors.ts";
import { Escalation, type OffHeapCall, type OffHeapWatch, overBudget } from "./off-heap.ts";
import type { StopReason } from "./stopper.ts";
import type { Limits } from "./types.ts";
import { CORES, MAX_CHECK_MS, MEMORY_GROWTH_BYTES_PER_MS, type Watchdog, type Watched } from "./watchdog.ts";

/** Reads what a running call uses, from outside the thread or process that runs it. */
export interface Probe {
	/** When the call started where it runs, in `performance.now()` time; `undefined` before it has. */
	startedAt(): number | undefined;
	/** CPU time used by the call so far in milliseconds, or -1 when it cannot be read. */
	cpuMs(): number;
	/** Resident memory of the call's process (and its children) in bytes, where the call has a process of its own. */
	rssBytes?(): number;
	/** How far the call's memory outside the heap grew, where a heap cap limits it in a thread (`memoryKind: "auto"`). */
	readonly offHeapBytes?: (() => number) | undefined;
	/**
	 * Whether the call started worker threads or processes of its own, whose CPU time and memory
	 * are not measured where it runs (a worker thread).
	 */
	readonly startedUnmeasured?: (() => boolean) | undefined;
}

const UNMEASURED = (): Escalation =>
	new Escalation("The call started a worker thread or a process of its own, whose CPU time and memory its thread does not show", "started-unmeasured");

/**
 * How long a call may wait for its thread or process to start, at least, before its time limits
 * end it (in ms): a call not started when this or its limit (the longer) has passed since it was
 * sent is taken never to start. Starting a thread and loading its modules takes well under a
 * second even on a busy machine; a thread that fails to start is seen at once (see
 * `ThreadExecutor`), this is the last resort.
 */
export const START_WAIT_MS = 5_000;

/** The message of a time limit's error for a call that never started. */
function notStarted(kind: string, limit: number, waited: number): string {
	return `${kind} limit of ${limit} ms reached: the call waited ${Math.round(waited)} ms for its thread or process to start, and it did not start`;
}

/** The shared watchers of an executor's limited calls. */
export interface Watchers {
	readonly watchdog: Watchdog;
	readonly offHeap: OffHeapWatch;
}

/**
 * Watches one running call against its limits: a timer for wall time, the shared watchdog for
 * CPU time and resident memory, the off-heap watch for `"auto"` calls in threads. The first limit
 * passed calls `onStop` once with its error (or the escalation, to be stopped at once).
 */
export class CallMonitor implements Watched {
	readonly intervalMs: number;
	readonly #limits: Limits;
	readonly #probe: Probe;
	readonly #watchers: Watchers;
	readonly #onStop: (reason: StopReason, immediately: boolean) => void;
	readonly #offHeap: OffHeapCall | undefined;
	#wallTimer: LongTimeout | undefined;
	/** When watching began (the call was sent), in `performance.now()` time. */
	#sentAt = 0;
	#cpuMs = -1;
	#peakRss = 0;
	#fired = false;
	#watching = false;
	#finishing = false;
	/** Set once the call started something (a thread) that may end between two sparse readings. */
	#closely = false;

	constructor(limits: Limits, probe: Probe, watchers: Watchers, onStop: (reason: StopReason, immediately: boolean) => void) {
		this.#limits = limits;
		this.#probe = probe;
		this.#watchers = watchers;
		this.#onStop = onStop;
		this.intervalMs = limits.sampleMs;
		const offHeapBytes = probe.offHeapBytes;
		if (offHeapBytes !== undefined && limits.memoryBytes !== undefined) {
			this.#offHeap = { budget: limits.memoryBytes, external: offHeapBytes, escalate: (escalation) => this.#fire(escalation) };
		}
	}

	/** The last CPU time read, in milliseconds (-1 when none was). */
	get cpuMs(): number {
		return this.#cpuMs;
	}

	/** The highest resident memory read, in bytes (0 when not read). */
	get peakRss(): number {
		return this.#peakRss;
	}

	/** Reads the call every `intervalMs` from now on: it started something that may end between two sparse readings. */
	closely(): void {
		if (!this.#closely) {
			this.#closely = true;
			if (this.#watching) {
				this.#watchers.watchdog.add(this, this.intervalMs);
			}
		}
	}

	/** Checks now, between the watchdog's checks: where the call runs reported a reading past one of its limits. */
	checkNow(): void {
		if (this.#watching && !this.#fired) {
			this.check();
		}
	}

	/** Starts watching. Wall time counts from the call's start where it runs. */
	start(): void {
		const { wallMs, cpuMs, memoryBytes } = this.#limits;
		this.#sentAt = performance.now();
		if (wallMs !== undefined) {
			this.#armWall(wallMs, wallMs);
		}
		const rss = this.#probe.rssBytes !== undefined;
		if (cpuMs !== undefined || rss) {
			this.#watching = true;
			// A call far from its memory limit needs no look before its CPU time could reach its limit.
			this.#watchers.watchdog.add(this, (rss && memoryBytes !== undefined) || cpuMs === undefined ? this.intervalMs : cpuMs);
		}
		if (this.#offHeap !== undefined) {
			this.#watchers.offHeap.add(this.#offHeap);
		}
	}

	/** How long after it was sent a call not started yet may still start, for a time limit of `limit` ms. */
	#startLeft(limit: number): number {
		return Math.max(limit, START_WAIT_MS) - (performance.now() - this.#sentAt);
	}

	#armWall(limit: number, delay: number): void {
		// A limit may be longer than one timer can wait (`[720, "h"]`).
		this.#wallTimer = setLongTimeout(
			() => {
				const start = this.#probe.startedAt();
				if (start === undefined) {
					// Not started where it runs (a thread still starting): its limit counts from its start,
					// unless it waited so long that it is taken never to start.
					const left = this.#startLeft(limit);
					if (left > 0) {
						this.#armWall(limit, Math.max(1, Math.min(limit, Math.ceil(left))));
					} else {
						const waited = performance.now() - this.#sentAt;
						this.#fire(new WallTimeLimitError(limit, waited, { message: notStarted("Wall time", limit, waited) }));
					}
					return;
				}
				const elapsed = performance.now() - start;
				// Timers round to whole milliseconds and may fire a fraction early.
				if (elapsed < limit) {
					this.#armWall(limit, Math.max(1, Math.ceil(limit - elapsed)));
				} else {
					this.#fire(new WallTimeLimitError(limit, elapsed));
				}
			},
			delay,
			{ ref: false },
		);
	}

	/** Reads the call's CPU time and memory; returns how long the next check can wait (see `Watchdog`). */
	check(): number {
		if (this.#fired) {
			return MAX_CHECK_MS;
		}
		if (this.#unmeasured()) {
			this.#fire(UNMEASURED());
			return MAX_CHECK_MS;
		}
		const { cpuMs, memoryBytes } = this.#limits;
		let wait = this.#closely ? this.intervalMs : MAX_CHECK_MS;
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
			if (this.#probe.startedAt() === undefined) {
				// Not started where it runs: from its start it needs its whole limit of wall time to
				// pass it. A call that waited so long that it is taken never to start ends here.
				const left = this.#startLeft(cpuMs);
				if (left <= 0) {
					const waited = performance.now() - this.#sentAt;
					this.#fire(new CpuTimeLimitError(cpuMs, 0, { message: notStarted("CPU time", cpuMs, waited) }));
					return MAX_CHECK_MS;
				}
				// Checked again once it could have passed its limit from a start now, or once it has
				// waited too long to start, whichever comes first.
				wait = Math.min(cpuMs, left);
			} else {
				// Started but not readable now: look again soon.
				wait = this.intervalMs;
			}
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

	/**
	 * The check at the call's end, on the readings it reports (`usage`): a call can end before a
	 * periodic check sees it pass a limit, and a call that ends past a limit ends with its error,
	 * as the kernel's `RLIMIT_CPU` would have stopped it. Memory outside the heap counts too: the
	 * process's resident memory may not show it when the allocator reused pages an earlier call
	 * freed.
	 */
	finish(usage: Usage): void {
		// The call has ended: a limit passed now stops it at once, with no grace period.
		this.#finishing = true;
		const { wallMs, cpuMs, memoryBytes } = this.#limits;
		if (cpuMs !== undefined && usage.cpuMs >= cpuMs) {
			this.#fire(new CpuTimeLimitError(cpuMs, usage.cpuMs));
		} else if (wallMs !== undefined && usage.wallMs >= wallMs) {
			this.#fire(new WallTimeLimitError(wallMs, usage.wallMs));
		} else if (memoryBytes !== undefined && this.#probe.rssBytes !== undefined && usage.peakMemoryBytes > memoryBytes) {
			this.#fire(new MemoryLimitError(memoryBytes, usage.peakMemoryBytes, "rss"));
		} else if (this.#unmeasured()) {
			this.#fire(UNMEASURED());
		} else if (this.#offHeap !== undefined && !this.#fired) {
			const escalation = overBudget(this.#offHeap);
			if (escalation !== undefined) {
				this.#fire(escalation);
			}
		}
		this.dispose();
	}

	/** Whether the call started threads or processes whose use counts against its CPU or memory limit but is not measured. */
	#unmeasured(): boolean {
		return (this.#limits.cpuMs !== undefined || this.#limits.memoryBytes !== undefined) && this.#probe.startedUnmeasured?.() === true;
	}

	#fire(reason: Error | Escalation): void {
		if (this.#fired) {
			return;
		}
		this.#fired = true;
		this.dispose();
		this.#onStop(reason, this.#finishing || !(reason instanceof Error));
	}

	/** Stops every timer and watch of this call. */
	dispose(): void {
		clearLongTimeout(this.#wallTimer);
		this.#wallTimer = undefined;
		if (this.#watching) {
			this.#watching = false;
			this.#watchers.watchdog.delete(this);
		}
		if (this.#offHeap !== undefined) {
			this.#watchers.offHeap.delete(this.#offHeap);
		}
	}
}
