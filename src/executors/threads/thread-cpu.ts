import { closeSync, existsSync } from "node:fs";
import type { Worker } from "node:worker_threads";
import { WORKER_CPU_USAGE } from "../../limits/placement.ts";
import { procAvailable, readSchedstat, tryOpen } from "../../procfs.ts";
import type { MainSlots } from "./slots.ts";

/** `worker.cpuUsage()` (Node >= 24.6), which the types of older Node lack. */
type CpuUsageWorker = Worker & { cpuUsage(): Promise<NodeJS.CpuUsage> };

/** The highest thread id Linux gives (`PID_MAX_LIMIT`). */
const MAX_TID = 4_194_304;
/** How far two readings of one call's CPU time may go backwards, in ms: float rounding, no more. */
const BACKWARDS_MS = 1;

/**
 * Reads, from outside, the CPU time that the thread running a call has used since the call
 * started: the thread's `schedstat` less the counter its worker recorded at the start. Where
 * `/proc` is not read (`procAvailable()`), the thread's counter comes from `worker.cpuUsage()`,
 * which answers asynchronously: each reading starts the next request and gives the last answer,
 * at most one reading old (a check every `sampleInterval` near the limit). Once the
 * call has ended, its worker's own final figure is the reading, so that the check at its end and
 * the usage it reports agree.
 *
 * What the slot holds is checked before it is used: a thread id that is no thread of this
 * process, a start counter that is not a count, a reading below an earlier one. Such a slot
 * calls `nonsense` with what it found, and reads as the last sound reading.
 */
export class ThreadCpu {
	readonly #slots: MainSlots;
	readonly #slot: number;
	readonly #generation: number;
	readonly #nonsense: (what: string) => void;
	/** The worker running the call, by its Node thread id, where `worker.cpuUsage()` is read. */
	readonly #worker: ((threadId: number) => Worker | undefined) | undefined;
	#fd = -1;
	#closed = false;
	#last = -1;
	/** The counter `worker.cpuUsage()` last answered, in ns (-1 before its first answer). */
	#answered = -1;
	/** The request in flight to `worker.cpuUsage()`, if any. */
	#asking: Promise<void> | undefined;

	constructor(slots: MainSlots, slot: number, generation: number, nonsense: (what: string) => void, worker?: (threadId: number) => Worker | undefined) {
		this.#slots = slots;
		this.#slot = slot;
		this.#generation = generation;
		this.#nonsense = nonsense;
		this.#worker = procAvailable() || !WORKER_CPU_USAGE ? undefined : worker;
	}

	/** Milliseconds; -1 before the call has started in its thread, after `close()`, or when it cannot be read. */
	read(): number {
		if (this.#slots.ended(this.#slot) !== 0) {
			return this.#sound(this.#slots.finalCpuMs(this.#slot), "a final CPU time");
		}
		if (this.#worker !== undefined) {
			return this.#closed ? -1 : this.#fromWorker(this.#worker);
		}
		if (this.#fd < 0) {
			// A stop that waited for a load may come after the call has ended.
			if (this.#closed) {
				return -1;
			}
			const tid = this.#slots.running(this.#slot, this.#generation) ? this.#slots.tid(this.#slot) : 0;
			if (tid === 0) {
				return -1;
			}
			if (!Number.isInteger(tid) || tid < 0 || tid > MAX_TID || tid === process.pid) {
				this.#nonsense(`the thread id ${tid}`);
				return this.#last;
			}
			this.#fd = tryOpen(`/proc/self/task/${tid}/schedstat`);
			if (this.#fd < 0) {
				// Where /proc can be read, a thread that runs a call is listed there.
				if (existsSync(`/proc/self/task/${process.pid}`) && !existsSync(`/proc/self/task/${tid}`)) {
					this.#nonsense(`the thread id ${tid}, which is no thread of this process`);
				}
				return -1;
			}
		}
		return this.#sinceStart(readSchedstat(this.#fd));
	}

	/** The reading from `worker.cpuUsage()`: its last answer, and a request for the next. */
	#fromWorker(worker: (threadId: number) => Worker | undefined): number {
		if (!this.#slots.running(this.#slot, this.#generation)) {
			return -1;
		}
		if (this.#asking === undefined) {
			this.#ask(worker);
		}
		return this.#answered < 0 ? -1 : this.#sinceStart(this.#answered);
	}

	#ask(worker: (threadId: number) => Worker | undefined): Promise<void> | undefined {
		const thread = worker(this.#slots.threadId(this.#slot)) as CpuUsageWorker | undefined;
		if (thread === undefined) {
			return undefined;
		}
		const asking = thread.cpuUsage().then(
			(usage) => {
				this.#asking = undefined;
				this.#answered = Math.max(this.#answered, (usage.user + usage.system) * 1000);
			},
			() => {
				// The thread has ended: the call's end gives the reading.
				this.#asking = undefined;
			},
		);
		this.#asking = asking;
		return asking;
	}

	/**
	 * Where the thread's CPU time comes from `worker.cpuUsage()`: a promise that resolves once a
	 * fresh reading has come (or after `withinMs`), so that a call ended from outside reports what
	 * it used until then. `undefined` where there is nothing to wait for (the counter is read
	 * synchronously, or the call is not running).
	 */
	refresh(withinMs: number): Promise<void> | undefined {
		const worker = this.#worker;
		if (worker === undefined || this.#closed || !this.#slots.running(this.#slot, this.#generation)) {
			return undefined;
		}
		const asking = this.#asking ?? this.#ask(worker);
		if (asking === undefined) {
			return undefined;
		}
		let timer: NodeJS.Timeout | undefined;
		return Promise.race([asking, new Promise<void>((resolve) => (timer = setTimeout(resolve, withinMs)))]).finally(() => clearTimeout(timer));
	}

	/** The call's CPU time in ms from the thread's counter `ns` (-1: unread) and the counter at its start. */
	#sinceStart(ns: number): number {
		if (ns < 0) {
			return -1;
		}
		const base = this.#slots.cpuBase(this.#slot);
		if (!Number.isFinite(base) || (base < 0 && base !== -1)) {
			this.#nonsense(`the start CPU counter ${base}`);
			return this.#last;
		}
		return this.#sound((ns - base) / 1e6, "a CPU time");
	}

	/**
	 * The reading to give for `ms`: itself, never below an earlier reading, when it can follow the
	 * last one (-1 is "cannot be read"); else the last one, and the slot is reported.
	 */
	#sound(ms: number, what: string): number {
		if (ms === -1) {
			return -1;
		}
		if (!Number.isFinite(ms) || ms < -BACKWARDS_MS || ms < this.#last - BACKWARDS_MS) {
			this.#nonsense(`${what} of ${ms} ms${this.#last >= 0 ? ` after a reading of ${this.#last} ms` : ""}`);
			return this.#last;
		}
		this.#last = Math.max(this.#last, ms, 0);
		return this.#last;
	}

	close(): void {
		this.#closed = true;
		if (this.#fd >= 0) {
			closeSync(this.#fd);
			this.#fd = -1;
		}
	}
}
