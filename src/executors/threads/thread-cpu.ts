import { closeSync } from "node:fs";
import { readSchedstat, tryOpen } from "../../procfs.ts";
import type { MainSlots } from "./slots.ts";

/**
 * Reads, from outside, the CPU time that the thread running a call has used since the call
 * started: the thread's `schedstat` less the counter its worker recorded at the start. Once the
 * call has ended, its worker's own final figure is the reading, so that the check at its end and
 * the usage it reports agree.
 */
export class ThreadCpu {
	readonly #slots: MainSlots;
	readonly #slot: number;
	readonly #generation: number;
	#fd = -1;
	#closed = false;

	constructor(slots: MainSlots, slot: number, generation: number) {
		this.#slots = slots;
		this.#slot = slot;
		this.#generation = generation;
	}

	/** Milliseconds; -1 before the call has started in its thread, after `close()`, or when it cannot be read. */
	read(): number {
		if (this.#slots.ended(this.#slot) !== 0) {
			return this.#slots.finalCpuMs(this.#slot);
		}
		if (this.#fd < 0) {
			// A stop that waited for a load may come after the call has ended.
			if (this.#closed) {
				return -1;
			}
			const tid = this.#slots.running(this.#slot, this.#generation) ? this.#slots.tid(this.#slot) : 0;
			if (tid <= 0) {
				return -1;
			}
			this.#fd = tryOpen(`/proc/self/task/${tid}/schedstat`);
			if (this.#fd < 0) {
				return -1;
			}
		}
		const ns = readSchedstat(this.#fd);
		return ns < 0 ? -1 : (ns - this.#slots.cpuBase(this.#slot)) / 1e6;
	}

	close(): void {
		this.#closed = true;
		if (this.#fd >= 0) {
			closeSync(this.#fd);
			this.#fd = -1;
		}
	}
}
