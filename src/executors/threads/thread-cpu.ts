import { closeSync, existsSync } from "node:fs";
import { readSchedstat, tryOpen } from "../../procfs.ts";
import type { MainSlots } from "./slots.ts";

/** The highest thread id Linux gives (`PID_MAX_LIMIT`). */
const MAX_TID = 4_194_304;
/** How far two readings of one call's CPU time may go backwards, in ms: float rounding, no more. */
const BACKWARDS_MS = 1;

/**
 * Reads, from outside, the CPU time that the thread running a call has used since the call
 * started: the thread's `schedstat` less the counter its worker recorded at the start. Once the
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
	#fd = -1;
	#closed = false;
	#last = -1;

	constructor(slots: MainSlots, slot: number, generation: number, nonsense: (what: string) => void) {
		this.#slots = slots;
		this.#slot = slot;
		this.#generation = generation;
		this.#nonsense = nonsense;
	}

	/** Milliseconds; -1 before the call has started in its thread, after `close()`, or when it cannot be read. */
	read(): number {
		if (this.#slots.ended(this.#slot) !== 0) {
			return this.#sound(this.#slots.finalCpuMs(this.#slot), "a final CPU time");
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
		const ns = readSchedstat(this.#fd);
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
