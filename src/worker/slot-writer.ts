import { ENDED, FLOAT, INT, SlotView } from "../protocol/call-slots.ts";

/** The worker thread's half of the call slots (see `protocol/call-slots.ts`). */
export class SlotWriter extends SlotView {
	/**
	 * Marks `slot` as running call `generation` on the OS thread `tid`, with the thread's CPU
	 * counter at start. Returns `false` when the slot has moved on to another call (this call was
	 * stopped before it started): the call must not run.
	 */
	markStarted(slot: number, generation: number, tid: number, cpuNs: number, threadId = 0): boolean {
		const state = this.int(slot, INT.state);
		if (Atomics.compareExchange(this.ints, state, generation, 0) !== generation) {
			return false;
		}
		this.ints[this.int(slot, INT.tid)] = tid;
		this.setFloat(slot, FLOAT.cpuBase, cpuNs);
		this.setFloat(slot, FLOAT.threadId, threadId);
		this.setFloat(slot, FLOAT.startedAt, performance.timeOrigin + performance.now());
		return Atomics.compareExchange(this.ints, state, 0, -generation) === 0;
	}

	/** Call `generation` started a thread or process beside itself: `flag` is one of `STARTED`. */
	markSpawned(slot: number, generation: number, flag: number): void {
		if (this.running(slot, generation)) {
			this.setFloat(slot, FLOAT.started, this.float(slot, FLOAT.started) | flag);
		}
	}

	/** Call `generation` does not run in this thread: its heap cap was lifted. */
	refuse(slot: number, generation: number): void {
		if (Atomics.load(this.ints, this.int(slot, INT.state)) === generation) {
			Atomics.store(this.ints, this.int(slot, INT.ended), ENDED.refused);
		}
	}

	/** Call `generation` is about to load modules. Returns `false` when the slot has moved on: the call must not run. */
	beginLoad(slot: number, generation: number): boolean {
		const state = Atomics.load(this.ints, this.int(slot, INT.state));
		if (state !== generation && state !== -generation) {
			return false;
		}
		// Minus the generation here means the main thread has already asked for the call to stop.
		return Atomics.compareExchange(this.ints, this.int(slot, INT.load), 0, generation) === 0;
	}

	/**
	 * Call `generation` has loaded its modules. Returns `false` when the main thread asked for it
	 * to stop meanwhile (it is told so here): the call must not run.
	 */
	endLoad(slot: number, generation: number): boolean {
		const word = this.int(slot, INT.load);
		if (Atomics.compareExchange(this.ints, word, generation, 0) === generation) {
			return true;
		}
		if (Atomics.compareExchange(this.ints, word, -generation, 0) === -generation) {
			Atomics.notify(this.ints, word);
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
	 * error) is posted; `leftWork` when it left work running in the thread.
	 */
	finish(slot: number, generation: number, ok: boolean, wallMs: number, cpuMs: number, peak: number, leftWork = false): void {
		if (!this.running(slot, generation)) {
			return;
		}
		this.setFloat(slot, FLOAT.peak, peak);
		this.setFloat(slot, FLOAT.wallMs, wallMs);
		this.setFloat(slot, FLOAT.cpuMs, cpuMs);
		Atomics.store(this.ints, this.int(slot, INT.ended), (ok ? ENDED.ok : ENDED.thrown) | (leftWork ? ENDED.leftWork : 0));
	}
}
