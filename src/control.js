import { openSync, readSync, readlinkSync } from "node:fs";
/**
 * Shared memory through which a worker thread tells the main thread, without a message, that a
 * call has started, on which OS thread, and that thread's CPU counter at that moment. The main
 * thread's watchdog can then read the thread's CPU time even while the thread is stuck in a
 * synchronous loop.
 */
export const SLOT_BYTES = 32;
const INTS = SLOT_BYTES / 4;
const FLOATS = SLOT_BYTES / 8;
export const IDLE = 0;
export const RUNNING = 1;
/** The layout of one slot, shared by both sides. */
export class ControlView {
    ints;
    floats;
    constructor(buffer) {
        this.ints = new Int32Array(buffer);
        this.floats = new Float64Array(buffer);
    }
    /** Worker side: marks `slot` as running on `tid`, with the thread's CPU counter at start. */
    markStarted(slot, tid, cpuNs) {
        this.ints[slot * INTS + 1] = tid;
        this.floats[slot * FLOATS + 1] = cpuNs;
        Atomics.store(this.ints, slot * INTS, RUNNING);
        Atomics.notify(this.ints, slot * INTS);
    }
    /** Worker side: the call's peak memory so far and its memory outside the heap now, in bytes. */
    setMemory(slot, peak, external) {
        this.floats[slot * FLOATS + 2] = peak;
        this.floats[slot * FLOATS + 3] = external;
    }
    /** The last peak memory a worker reported for `slot`. */
    peakMemory(slot) {
        return this.floats[slot * FLOATS + 2] ?? 0;
    }
    /** The last memory outside the heap a worker reported for `slot`. */
    externalMemory(slot) {
        return this.floats[slot * FLOATS + 3] ?? 0;
    }
    /** Main side: clears `slot` before it is given to a new call. */
    reset(slot) {
        Atomics.store(this.ints, slot * INTS, IDLE);
        this.ints[slot * INTS + 1] = 0;
        this.floats[slot * FLOATS + 2] = 0;
        this.floats[slot * FLOATS + 3] = 0;
    }
    state(slot) {
        return Atomics.load(this.ints, slot * INTS);
    }
    tid(slot) {
        return this.ints[slot * INTS + 1] ?? 0;
    }
    cpuBaseline(slot) {
        return this.floats[slot * FLOATS + 1] ?? 0;
    }
    /** Main side: resolves when the worker marks `slot` as started. */
    async started(slot) {
        const waited = Atomics.waitAsync(this.ints, slot * INTS, IDLE);
        if (waited.async) {
            await waited.value;
        }
    }
}
/** Allocates a shared control block with `slots` slots. */
export function createControl(slots) {
    return new SharedArrayBuffer(slots * SLOT_BYTES);
}
const scratch = Buffer.alloc(128);
/** Reads the first field of a `schedstat` file: CPU time in nanoseconds. Returns -1 when it cannot. */
export function readSchedstat(fd) {
    try {
        const length = readSync(fd, scratch, 0, scratch.length, 0);
        let value = 0;
        for (let i = 0; i < length; i++) {
            const code = scratch[i];
            if (code < 48 || code > 57) {
                break;
            }
            value = value * 10 + (code - 48);
        }
        return value;
    }
    catch {
        return -1;
    }
}
/** The OS thread id of the calling thread on Linux, or 0 where `/proc/thread-self` does not exist. */
export function currentTid() {
    try {
        return Number(readlinkSync("/proc/thread-self").split("/").pop()) || 0;
    }
    catch {
        return 0;
    }
}
/** Opens the calling thread's `schedstat`, or returns -1 where there is none. */
export function openOwnSchedstat() {
    try {
        return openSync("/proc/thread-self/schedstat", "r");
    }
    catch {
        return -1;
    }
}
