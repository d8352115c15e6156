import { ENDED, FLOAT, INT, SlotView } from "../protocol/call-slots.ts";
import { atomics, monotonicMs } from "./builtins.ts";

const { load, store, compareExchange, notify } = atomics;

/** The worker thread's half of the call slots (see `protocol/call-slots.ts`). */
export class SlotWriter extends SlotView {
	/**
	 * Marks `slot` as running call `generation` on the OS thread `tid`, with the thread's CPU
	 * counter at start. Returns `false` when the slot has moved on to another call (this call was
	 * stopped before it started): the call must not run.
	 */
	markStarted(slot: number, generation: number, tid: number, cpuNs: number, threadId = 0): boolean {
		const state = this.int(slot, INT.state);
		if (compareExchange(this.ints, state, generation, 0) !== generation) {
			return false;
		}
		this.ints[this.int(slot, INT.tid)] = tid;
		this.setFloat(slot, FLOAT.cpuBase, cpuNs);
		this.setFloat(slot, FLOAT.threadId, threadId);
		this.setFloat(slot, FLOAT.startedAt, monotonicMs());
		return compareExchange(this.ints, state, 0, -generation) === 0;
	}

	/** Call `generation` started a thread or process beside itself: `flag` is one of `STARTED`. */
	markSpawned(slot: number, generation: number, flag: number): void {
		if (this.running(slot, generation)) {
			this.setFloat(slot, FLOAT.started, this.float(slot, FLOAT.started) | flag);
		}
	}

	/** Call `generation` does not run in this thread: its heap cap was lifted. */
	refuse(slot: number, generation: number): void {
		if (load(this.ints, this.int(slot, INT.state)) === generation) {
			store(this.ints, this.int(slot, INT.ended), ENDED.refused);
		}
	}

	/** Call `generation` is about to load modules. Returns `false` when the slot has moved on: the call must not run. */
	beginLoad(slot: number, generation: number): boolean {
		const state = load(this.ints, this.int(slot, INT.state));
		if (state !== generation && state !== -generation) {
			return false;
		}
		// Minus the generation here means the main thread has already asked for the call to stop.
		return compareExchange(this.ints, this.int(slot, INT.load), 0, generation) === 0;
	}

	/**
	 * Call `generation` has loaded its modules. Returns `false` when the main thread asked for it
	 * to stop meanwhile (it is told so here): the call must not run.
	 */
	endLoad(slot: number, generation: number): boolean {
		const word = this.int(slot, INT.load);
		if (compareExchange(this.ints, word, generation, 0) === generation) {
			return true;
		}
		if (compareExchange(this.ints, word, -generation, 0) === -generation) {
			notify(this.ints, word);
		}
		return false;
	}

	/** Call `generation`'s peak memory so far, and the most its memory outside the heap grew since its start, in bytes. */
	setMemory(slot: number, generation: number, peak: number, external: number): void {
		if (this.running(slot, generation)) {
			this.setFloat(slot, FLOAT.peak, peak);
			this.setFloat(slot, FLOAT.external, external);
		}
	}

	/**
	 * Records how call `generation` ended and what it used, before its answer (the value or the
	 * error) is posted; `leftWork` when it left work running in the thread. Returns the ended word
	 * it recorded (0 when the slot has moved on), for `posted`.
	 */
	finish(slot: number, generation: number, ok: boolean, wallMs: number, cpuMs: number, peak: number, leftWork = false): number {
		if (!this.running(slot, generation)) {
			return 0;
		}
		this.setFloat(slot, FLOAT.peak, peak);
		this.setFloat(slot, FLOAT.wallMs, wallMs);
		this.setFloat(slot, FLOAT.cpuMs, cpuMs);
		const ended = (ok ? ENDED.ok : ENDED.thrown) | (leftWork ? ENDED.leftWork : 0);
		store(this.ints, this.int(slot, INT.ended), ended);
		return ended;
	}

	/**
	 * The answer of the call that `finish` recorded as `ended` has been posted to the main thread:
	 * from here on it is there to be read, and a main thread that has not received it could not
	 * read it. A slot that has moved on to another call since is left as it is.
	 */
	posted(slot: number, ended: number): void {
		if (ended !== 0) {
			compareExchange(this.ints, this.int(slot, INT.ended), ended, ended | ENDED.posted);
		}
	}
}
