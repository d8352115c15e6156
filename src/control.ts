import { closeSync, openSync, readSync, readlinkSync } from "node:fs";
import type { Usage } from "./future.ts";

/**
 * Shared memory through which a worker thread tells the main thread, without a message, that a
 * call has started, on which thread, and that thread's CPU counter at that moment. The main
 * thread's watchdog can then read the thread's CPU time even while the thread is stuck in a
 * synchronous loop. The call's figures at its end are written here too, so that its answer
 * carries only its value.
 */
export const SLOT_BYTES = 64;
const INTS = SLOT_BYTES / 4;
const FLOATS = SLOT_BYTES / 8;

/** How a call in a slot ended, as its worker recorded it. */
export const ENDED_OK = 1;
export const ENDED_THROWN = 2;

/**
 * The layout of one slot, shared by both sides. Int32 fields: 0 the state word, 1 OS thread id,
 * 2 the load word, 3 how the call ended. Float64 fields: 2 CPU counter at start (ns), 3 peak memory, 4 memory
 * outside the heap, 5 wall time (ms), 6 CPU time (ms), 7 when the call started (ms since the
 * epoch, `performance.timeOrigin + performance.now()`).
 *
 * Each call given a slot has a generation, a number new for each call. The state word is the
 * generation while the call waits to start, 0 while its worker writes its start, and minus the
 * generation while it runs; a worker claims the slot with a compare-and-swap, so a thread still
 * ending after its call was stopped cannot take or mark a slot that has moved on.
 *
 * The load word is the generation while the worker loads modules for the call (a loader, or the
 * job's module), and minus the generation once the main thread has asked for the call to stop
 * during that load. A thread terminated while Node's module loader reads a file never closes
 * that file, so the main thread lets a load end before it ends the thread: the worker sees the
 * request when its load is done, and returns without running the call.
 */
export class ControlView {
	readonly ints: Int32Array;
	readonly floats: Float64Array;

	constructor(buffer: SharedArrayBuffer) {
		this.ints = new Int32Array(buffer);
		this.floats = new Float64Array(buffer);
	}

	/** Main side: clears `slot` and gives it to call `generation` (a positive 32-bit integer). */
	reset(slot: number, generation: number): void {
		const base = slot * INTS;
		this.ints[base + 1] = 0;
		this.ints[base + 2] = 0;
		this.ints[base + 3] = 0;
		this.floats[slot * FLOATS + 3] = 0;
		this.floats[slot * FLOATS + 4] = 0;
		Atomics.store(this.ints, base, generation);
	}

	/**
	 * Worker side: marks `slot` as running call `generation` on the OS thread `tid`, with the
	 * thread's CPU counter at start. Returns `false` when the slot has moved on to another call
	 * (this call was stopped before it started): the call must not run.
	 */
	markStarted(slot: number, generation: number, tid: number, cpuNs: number): boolean {
		const base = slot * INTS;
		if (Atomics.compareExchange(this.ints, base, generation, 0) !== generation) {
			return false;
		}
		this.ints[base + 1] = tid;
		this.floats[slot * FLOATS + 2] = cpuNs;
		this.floats[slot * FLOATS + 7] = performance.timeOrigin + performance.now();
		return Atomics.compareExchange(this.ints, base, 0, -generation) === 0;
	}

	/**
	 * Worker side: call `generation` is about to load modules. Returns `false` when the slot has
	 * moved on to another call: the call must not run.
	 */
	beginLoad(slot: number, generation: number): boolean {
		const base = slot * INTS;
		const state = Atomics.load(this.ints, base);
		if (state !== generation && state !== -generation) {
			return false;
		}
		// Minus the generation here means the main thread has already asked for the call to stop.
		return Atomics.compareExchange(this.ints, base + 2, 0, generation) === 0;
	}

	/**
	 * Worker side: call `generation` has loaded its modules. Returns `false` when the main thread
	 * asked for it to stop meanwhile (it is told so here): the call must not run.
	 */
	endLoad(slot: number, generation: number): boolean {
		const word = slot * INTS + 2;
		if (Atomics.compareExchange(this.ints, word, generation, 0) === generation) {
			return true;
		}
		if (Atomics.compareExchange(this.ints, word, -generation, 0) === -generation) {
			Atomics.notify(this.ints, word);
		}
		return false;
	}

	/**
	 * Main side: when call `generation`'s worker is loading modules, asks it to stop at the end of
	 * the load and returns whether it did so within `withinMs` (resolves `false` when it did not).
	 * Returns `undefined` when the worker is not loading: the call can be ended at once.
	 */
	stopAfterLoad(slot: number, generation: number, withinMs: number): Promise<boolean> | undefined {
		const word = slot * INTS + 2;
		if (Atomics.compareExchange(this.ints, word, generation, -generation) !== generation) {
			// Not loading: the word now refuses a load the worker would begin from here on.
			Atomics.compareExchange(this.ints, word, 0, -generation);
			return undefined;
		}
		const waiting = Atomics.waitAsync(this.ints, word, -generation, withinMs);
		const acknowledged = (): boolean => Atomics.load(this.ints, word) !== -generation;
		return waiting.async ? waiting.value.then(acknowledged) : Promise.resolve(acknowledged());
	}

	/** Whether call `generation` is running in `slot` (its worker has marked its start). */
	running(slot: number, generation: number): boolean {
		return Atomics.load(this.ints, slot * INTS) === -generation;
	}

	/** Main side: when call `generation` started, in this thread's `performance.now()` time; `undefined` before. */
	startedAt(slot: number, generation: number): number | undefined {
		if (!this.running(slot, generation)) {
			return undefined;
		}
		return (this.floats[slot * FLOATS + 7] ?? 0) - performance.timeOrigin;
	}

	/** Worker side: call `generation`'s peak memory so far, and the most its memory outside the heap grew since its start, in bytes. */
	setMemory(slot: number, generation: number, peak: number, external: number): void {
		if (!this.running(slot, generation)) {
			return;
		}
		this.floats[slot * FLOATS + 3] = peak;
		this.floats[slot * FLOATS + 4] = external;
	}

	/**
	 * Worker side: records how call `generation` ended and what it used, before its answer (the
	 * value or the error) is posted: the answer then carries nothing else.
	 */
	finish(slot: number, generation: number, ok: boolean, wallMs: number, cpuMs: number, peak: number): void {
		if (!this.running(slot, generation)) {
			return;
		}
		const base = slot * FLOATS;
		this.floats[base + 3] = peak;
		this.floats[base + 5] = wallMs;
		this.floats[base + 6] = cpuMs;
		Atomics.store(this.ints, slot * INTS + 3, ok ? ENDED_OK : ENDED_THROWN);
	}

	/** How the slot's call ended: `ENDED_OK`, `ENDED_THROWN`, or 0 when its worker recorded nothing. */
	ended(slot: number): number {
		return Atomics.load(this.ints, slot * INTS + 3);
	}

	/** What the slot's call used, as its worker recorded it at the end. */
	usage(slot: number): Usage {
		const base = slot * FLOATS;
		return { wallMs: this.floats[base + 5] ?? 0, cpuMs: this.floats[base + 6] ?? -1, peakMemoryBytes: this.floats[base + 3] ?? 0, where: "thread" };
	}

	/** The last peak memory a worker reported for `slot`. */
	peakMemory(slot: number): number {
		return this.floats[slot * FLOATS + 3] ?? 0;
	}

	/** The most the memory outside the heap grew during `slot`'s call, as its worker last reported. */
	externalMemory(slot: number): number {
		return this.floats[slot * FLOATS + 4] ?? 0;
	}

	/** The OS thread id the slot's call runs on (0 before it starts). */
	tid(slot: number): number {
		return this.ints[slot * INTS + 1] ?? 0;
	}

	cpuBaseline(slot: number): number {
		return this.floats[slot * FLOATS + 2] ?? 0;
	}
}

/** Allocates a shared control block with `slots` slots. */
export function createControl(slots: number): SharedArrayBuffer {
	return new SharedArrayBuffer(slots * SLOT_BYTES);
}

const scratch = Buffer.alloc(128);

/** Reads the first field of a `schedstat` file: CPU time in nanoseconds. Returns -1 when it cannot. */
export function readSchedstat(fd: number): number {
	try {
		const length = readSync(fd, scratch, 0, scratch.length, 0);
		let value = 0;
		for (let i = 0; i < length; i++) {
			const code = scratch[i]!;
			if (code < 48 || code > 57) {
				break;
			}
			value = value * 10 + (code - 48);
		}
		return value;
	} catch {
		return -1;
	}
}

/** The OS thread id of the calling thread on Linux, or 0 where `/proc/thread-self` does not exist. */
export function currentTid(): number {
	try {
		return Number(readlinkSync("/proc/thread-self").split("/").pop()) || 0;
	} catch {
		return 0;
	}
}

/** The resolution of a call's CPU time, in milliseconds (see `ThreadClock`). */
export const CPU_REUSE_MS = 0.05;
/** How old a reading a call may take as its start, in milliseconds (see `ThreadClock`). */
export const START_REUSE_MS = 0.5;

/**
 * The CPU time of the calling thread, read at the start and end of each call. A read of
 * `schedstat` costs a system call of a few microseconds, more than a no-op call itself, so two
 * shortcuts keep it off the path of short calls, since a thread cannot use more CPU time than
 * wall time passes: a call that starts within `START_REUSE_MS` of the last reading takes that
 * reading as its start (what the thread did in between, at most that long, counts towards the
 * call: calls that follow each other closely read once between them), and a call that ends
 * within `CPU_REUSE_MS` of its start reports its wall time, the most CPU time it can have used.
 */
export class ThreadClock {
	#fd = -2;
	#last = -1;
	#lastAt = Number.NEGATIVE_INFINITY;

	/** The CPU time at a call's start, in nanoseconds; -1 where it cannot be read. */
	start(): number {
		if (this.#last >= 0 && performance.now() - this.#lastAt <= START_REUSE_MS) {
			return this.#last;
		}
		return this.read();
	}

	/** The CPU time a call that started at `startNs` and ran for `wallMs` used, in milliseconds; -1 where it cannot be read. */
	spent(startNs: number, wallMs: number): number {
		if (startNs >= 0 && wallMs <= CPU_REUSE_MS) {
			return wallMs;
		}
		const spent = cpuMs(startNs, this.read());
		// A reused start may hold up to START_REUSE_MS from before the call; no more can be its own.
		return spent < 0 ? spent : Math.min(spent, wallMs + START_REUSE_MS);
	}

	/** The CPU time now, in nanoseconds; -1 where it cannot be read. */
	read(): number {
		if (this.#fd === -2) {
			this.#fd = openOwnSchedstat();
		}
		let ns = this.#fd >= 0 ? readSchedstat(this.#fd) : -1;
		if (ns < 0) {
			const usage = (process as { threadCpuUsage?: () => NodeJS.CpuUsage }).threadCpuUsage?.();
			ns = usage === undefined ? -1 : (usage.user + usage.system) * 1000;
		}
		this.#last = ns;
		this.#lastAt = performance.now();
		return ns;
	}

	/** Closes the descriptor it reads through. */
	close(): void {
		if (this.#fd >= 0) {
			closeSync(this.#fd);
		}
		this.#fd = -2;
		this.#last = -1;
	}
}

/** Milliseconds between two CPU readings in nanoseconds; -1 when either could not be read. */
export function cpuMs(startNs: number, endNs: number): number {
	return startNs < 0 || endNs < 0 ? -1 : (endNs - startNs) / 1e6;
}

/** Opens the calling thread's `schedstat`, or returns -1 where there is none. */
export function openOwnSchedstat(): number {
	try {
		return openSync("/proc/thread-self/schedstat", "r");
	} catch {
		return -1;
	}
}
