import type { Usage } from "../../future.ts";
import { ENDED, FLOAT, INT, SlotView } from "../../protocol/call-slots.ts";

/**
 * The process's monotonic clock (`process.hrtime`, in which workers record starts) less this
 * thread's `performance.now()`: both count the same clock, from different origins.
 */
const ORIGIN_MS = Number(process.hrtime.bigint()) / 1e6 - performance.now();

/** The flags of the ended word that are added to how the call ended. */
const ENDED_FLAGS = ENDED.leftWork | ENDED.posted;

/**
 * The main thread's half of the call slots (see `protocol/call-slots.ts`). It returns what the
 * slots hold as they hold it: `ThreadCall` checks that it makes sense before acting on it.
 */
export class MainSlots extends SlotView {
	/** Clears `slot` and gives it to call `generation` (a positive 32-bit integer). */
	reset(slot: number, generation: number): void {
		this.ints[this.int(slot, INT.tid)] = 0;
		this.ints[this.int(slot, INT.load)] = 0;
		this.ints[this.int(slot, INT.ended)] = ENDED.none;
		this.setFloat(slot, FLOAT.peak, 0);
		this.setFloat(slot, FLOAT.external, 0);
		this.setFloat(slot, FLOAT.started, 0);
		Atomics.store(this.ints, this.int(slot, INT.state), generation);
	}

	/**
	 * When call `generation`'s worker is loading modules, asks it to stop at the end of the load
	 * and returns whether it did so within `withinMs` (resolves `false` when it did not). Returns
	 * `undefined` when the worker is not loading: the call can be ended at once.
	 */
	stopAfterLoad(slot: number, generation: number, withinMs: number): Promise<boolean> | undefined {
		const word = this.int(slot, INT.load);
		if (Atomics.compareExchange(this.ints, word, generation, -generation) !== generation) {
			// Not loading: the word now refuses a load the worker would begin from here on.
			Atomics.compareExchange(this.ints, word, 0, -generation);
			return undefined;
		}
		const waiting = Atomics.waitAsync(this.ints, word, -generation, withinMs);
		const acknowledged = (): boolean => Atomics.load(this.ints, word) !== -generation;
		return waiting.async ? waiting.value.then(acknowledged) : Promise.resolve(acknowledged());
	}

	/** When call `generation` started, in this thread's `performance.now()` time; `undefined` before. */
	startedAt(slot: number, generation: number): number | undefined {
		return this.running(slot, generation) ? this.float(slot, FLOAT.startedAt) - ORIGIN_MS : undefined;
	}

	/** How the slot's call ended (`ENDED.none`, `ok`, `thrown` or `refused`), as its worker recorded it. */
	ended(slot: number): number {
		return Atomics.load(this.ints, this.int(slot, INT.ended)) & ~ENDED_FLAGS;
	}

	/** The slot's ended word as it is, flags included. */
	endedWord(slot: number): number {
		return Atomics.load(this.ints, this.int(slot, INT.ended));
	}

	/** The slot's state word (see `protocol/call-slots.ts`). */
	state(slot: number): number {
		return Atomics.load(this.ints, this.int(slot, INT.state));
	}

	/** Whether the worker has posted the answer of call `generation` to this thread. */
	posted(slot: number, generation: number): boolean {
		return (Atomics.load(this.ints, this.int(slot, INT.ended)) & ENDED.posted) !== 0 && this.running(slot, generation);
	}

	/** Whether the slot's call left work running in its thread when it ended. */
	leftWork(slot: number): boolean {
		return (Atomics.load(this.ints, this.int(slot, INT.ended)) & ENDED.leftWork) !== 0;
	}

	/** Whether the slot's call started `what` (one of `STARTED`) beside itself. */
	spawned(slot: number, what: number): boolean {
		return (this.float(slot, FLOAT.started) & what) !== 0;
	}

	/** The Node thread id of the thread that ran the slot's call (0 before it starts). */
	threadId(slot: number): number {
		return this.float(slot, FLOAT.threadId);
	}

	/** What the slot's call used, as its worker recorded it at the end. */
	usage(slot: number): Usage {
		return { wallMs: this.float(slot, FLOAT.wallMs), cpuMs: this.float(slot, FLOAT.cpuMs), peakMemoryBytes: this.float(slot, FLOAT.peak), where: "thread" };
	}

	/** The CPU time the slot's call used, as its worker recorded it at the end. */
	finalCpuMs(slot: number): number {
		return this.float(slot, FLOAT.cpuMs);
	}

	/** The last peak memory a worker reported for `slot`. */
	peakMemory(slot: number): number {
		return this.float(slot, FLOAT.peak);
	}

	/** The most the memory outside the heap grew during `slot`'s call, as its worker last reported. */
	externalMemory(slot: number): number {
		return this.float(slot, FLOAT.external);
	}

	/** The OS thread id the slot's call runs on (0 before it starts). */
	tid(slot: number): number {
		return this.ints[this.int(slot, INT.tid)] ?? 0;
	}

	/** The thread's CPU counter when the slot's call started, in nanoseconds. */
	cpuBase(slot: number): number {
		return this.float(slot, FLOAT.cpuBase);
	}
}
