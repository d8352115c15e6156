/**
 * The shared memory through which a worker thread tells the main thread, without a message, that
 * a call has started, on which OS thread, and that thread's CPU counter at that moment: the main
 * thread's watchdog can then read the thread's CPU time even while the thread is stuck in a
 * synchronous loop. The call's figures at its end are written here too, so that its answer
 * carries only its value. One slot per call that may run at once.
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
 *
 * The worker's half is `worker/slot-writer.ts`, the main thread's `executors/threads/slots.ts`.
 */
export const SLOT_BYTES = 80;

/** The Int32 fields of a slot, by index within the slot. */
export const INT = {
	/** The state word (see above). */
	state: 0,
	/** The OS thread id the call runs on. */
	tid: 1,
	/** The load word (see above). */
	load: 2,
	/** How the call ended (`ENDED`). */
	ended: 3,
} as const;

/** The Float64 fields of a slot, by index within the slot (0 and 1 hold the Int32 fields). */
export const FLOAT = {
	/** The thread's CPU counter when the call started, in nanoseconds. */
	cpuBase: 2,
	/** The call's peak memory (heap and external), in bytes. */
	peak: 3,
	/** How far the memory outside the heap grew during the call, at most, in bytes. */
	external: 4,
	/** The call's wall time, in milliseconds, written at its end. */
	wallMs: 5,
	/** The call's CPU time, in milliseconds, written at its end. */
	cpuMs: 6,
	/**
	 * When the call started, in ms of the process's monotonic clock (`process.hrtime`), the same
	 * in every thread: each thread's `performance.now()` counts from its own start.
	 */
	startedAt: 7,
	/** The Node thread id (`worker_threads.threadId`) of the thread running the call. */
	threadId: 8,
	/** What the call started beside itself (`STARTED` flags). */
	started: 9,
} as const;

/** What a call started beside itself, as flags of the slot's `started` field. */
export const STARTED = {
	/** A worker thread of its own, whose use its thread's counters do not show. */
	worker: 1,
	/** A child process, which may outlive it. */
	process: 2,
} as const;

/**
 * How a call in a slot ended, as its worker recorded it: `leftWork` is a flag added to `ok` or
 * `thrown`; `refused` means the thread did not run the call, since its heap cap was lifted.
 * `posted` is added once the call's answer has been posted to the main thread.
 */
export const ENDED = { none: 0, ok: 1, thrown: 2, leftWork: 4, refused: 8, posted: 16 } as const;

const INTS = SLOT_BYTES / 4;
// Taken as the module loads, before any task's module: a task cannot replace it for the worker.
const { load } = Atomics;
const FLOATS = SLOT_BYTES / 8;

/** Allocates shared call slots, `count` of them. */
export function createSlots(count: number): SharedArrayBuffer {
	return new SharedArrayBuffer(count * SLOT_BYTES);
}

/** Typed access to the fields of the slots; each side adds its own operations. */
export class SlotView {
	readonly ints: Int32Array;
	readonly floats: Float64Array;

	constructor(buffer: SharedArrayBuffer) {
		this.ints = new Int32Array(buffer);
		this.floats = new Float64Array(buffer);
	}

	/** The index of an Int32 field of `slot`. */
	protected int(slot: number, field: number): number {
		return slot * INTS + field;
	}

	protected float(slot: number, field: number): number {
		return this.floats[slot * FLOATS + field] ?? 0;
	}

	protected setFloat(slot: number, field: number, value: number): void {
		this.floats[slot * FLOATS + field] = value;
	}

	/** Whether call `generation` is running in `slot` (its worker has marked its start). */
	running(slot: number, generation: number): boolean {
		return load(this.ints, this.int(slot, INT.state)) === -generation;
	}
}
