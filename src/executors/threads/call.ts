import type { Usage } from "../../future.ts";
import { killAll, threadDescendants } from "../../procfs.ts";
import { Escalation } from "../../limits/off-heap.ts";
import type { StopReason } from "../../limits/stopper.ts";
import type { Limits } from "../../limits/types.ts";
import { ENDED, STARTED } from "../../protocol/call-slots.ts";
import type { AbortMessage } from "../../protocol/messages.ts";
import { deserializeError, type SerializedError, serializeError } from "../../serialize.ts";
import type { CallAdapter, Ending } from "../call.ts";
import type { Call } from "../executor.ts";
import { isOutOfMemory, threadFailure } from "./crash.ts";
import { LOAD_WAIT_MS, type Pool, type ThreadPools } from "./pools.ts";
import type { MainSlots } from "./slots.ts";
import { ThreadCpu } from "./thread-cpu.ts";

/** Where a thread call runs: its pool, its slot, and how stop notices reach threads. */
export interface ThreadPlace {
	readonly pool: Pool;
	/** The executor's pools, which send the call to `pool` once the budget of threads has room. */
	readonly pools: ThreadPools;
	readonly slots: MainSlots;
	readonly slot: number;
	readonly generation: number;
	/** The heap cap of the pool, in bytes (0: none). */
	readonly capBytes: number;
	/** Whether memory outside the heap is watched (`memoryKind: "auto"`), to move the call to a process. */
	readonly watchOffHeap: boolean;
	/** Posts a stop notice to every thread of the executor; the one running the call acts on it. */
	post(message: AbortMessage): void;
	/** Starts threads in `pool` again, after the call's thread ended; `module` is the call's. */
	rewarm(pool: Pool, module: string): void;
}

/**
 * One call on a worker thread. Stopping it aborts its piscina run, which terminates the thread
 * even in a synchronous loop; piscina starts a new thread for the next call.
 */
export class ThreadCall implements CallAdapter {
	readonly where = "thread" as const;
	readonly offHeapBytes: (() => number) | undefined;
	readonly #call: Call;
	readonly #place: ThreadPlace;
	readonly #signal = new CallSignal();
	readonly #cpu: ThreadCpu;

	constructor(call: Call, place: ThreadPlace) {
		this.#call = call;
		this.#place = place;
		this.#cpu = new ThreadCpu(place.slots, place.slot, place.generation);
		this.offHeapBytes = place.watchOffHeap ? () => place.slots.externalMemory(place.slot) : undefined;
	}

	startedAt(): number | undefined {
		return this.#place.slots.startedAt(this.#place.slot, this.#place.generation);
	}

	cpuMs(): number {
		return this.#cpu.read();
	}

	startedUnmeasured(): boolean {
		return this.#place.slots.spawned(this.#place.slot, STARTED.worker | STARTED.process);
	}

	async run(): Promise<Ending> {
		const { pool, pools, slots, slot, generation } = this.#place;
		const { id, ref, args } = this.#call;
		// The call counts as running from here: it holds one of the pool's places (its thread may
		// still have to start); limits count from the start its worker records.
		const sent = await pools.run(pool, { id, ref, args, slot, generation }, this.#signal).then(answeredWith, failedWith);
		const ended = sent.answered ? slots.ended(slot) : ENDED.none;
		if (ended !== ENDED.none && slots.leftWork(slot)) {
			// The call left work running in its thread: the thread ends with the call (it is idle
			// now, and no other call is sent to it before this one has ended), with what it started.
			// Waited for, so that piscina has dropped the thread before the next call is sent.
			const threadId = slots.threadId(slot);
			const tree = threadDescendants(slots.tid(slot));
			await pool.threads.find((thread) => thread.threadId === threadId)?.terminate();
			killAll(tree);
			this.#place.rewarm(this.#place.pool, this.#call.ref.module);
		}
		pools.settled(pool);
		if (ended === ENDED.ok) {
			return { kind: "result", value: sent.answer, usage: slots.usage(slot) };
		}
		if (ended === ENDED.refused) {
			const escalation = new Escalation("The thread's heap cap was lifted by a heap-size flag set while the program runs", "heap-cap-lifted");
			return { kind: "exception", error: escalation, usage: this.#lostUsage(undefined) };
		}
		if (ended === ENDED.thrown) {
			return { kind: "exception", error: deserializeError(sent.answer as SerializedError), usage: slots.usage(slot) };
		}
		// No answer (it was stopped, or it crashed), or none with a result (it was stopped before it started).
		const failure = sent.answered ? new Error("The worker answered without a result") : sent.failure;
		if (!sent.answered) {
			// Its thread ended: the next call finds a thread started.
			this.#place.rewarm(this.#place.pool, this.#call.ref.module);
		}
		return { kind: "exception", error: threadFailure(failure, this.#call.limits as Limits | undefined, this.#place.capBytes), usage: this.#lostUsage(failure) };
	}

	/** What is known of a call whose thread gave no answer: its wall time since its thread recorded its start, and what was last read. */
	#lostUsage(failure: unknown): Usage {
		const { slots, slot, capBytes } = this.#place;
		const started = this.startedAt();
		const peak = Math.max(slots.peakMemory(slot), capBytes > 0 && isOutOfMemory(failure) ? capBytes : 0);
		return { wallMs: started === undefined ? 0 : performance.now() - started, cpuMs: this.#cpu.read(), peakMemoryBytes: peak, where: "thread" };
	}

	notify(reason: StopReason): void {
		this.#place.post({ abort: this.#call.id, reason: serializeError(reason) });
	}

	/**
	 * Ends the call through piscina, which drops it from its queue or terminates the thread
	 * running it. A thread that is loading modules for the call is first let finish the load (up
	 * to `LOAD_WAIT_MS`), after which it returns without running the call: a thread terminated
	 * while Node's module loader reads a file would leave that file open for good.
	 */
	kill(): void {
		const { slots, slot, generation } = this.#place;
		const loaded = slots.stopAfterLoad(slot, generation, LOAD_WAIT_MS);
		if (loaded === undefined) {
			this.#terminate();
		} else {
			void loaded.then((stoppedItself) => {
				if (!stoppedItself) {
					this.#terminate();
				}
			});
		}
	}

	/** Terminates the thread, and the processes the call started from it (listed first: once the thread is gone they are no longer its children). */
	#terminate(): void {
		const tid = this.#place.slots.tid(this.#place.slot);
		const tree = tid > 0 ? threadDescendants(tid) : [];
		this.#signal.abort();
		killAll(tree);
	}

	release(): void {
		this.#cpu.close();
		// What a limited call started from its thread and left running ends with the call (an
		// unlimited call's, when it is stopped): its limits hold for all of it.
		const { slots, slot } = this.#place;
		if (this.#call.limits !== undefined && slots.spawned(slot, STARTED.process)) {
			killAll(threadDescendants(slots.tid(slot)));
		}
	}
}

/** What a thread answered for a call, or why it gave no answer. */
interface Sent {
	readonly answered: boolean;
	readonly answer?: unknown;
	readonly failure?: unknown;
}

const answeredWith = (answer: unknown): Sent => ({ answered: true, answer });
const failedWith = (failure: unknown): Sent => ({ answered: false, failure });

/**
 * The abort signal of one call, in the smallest form piscina accepts (an emitter of one `abort`
 * event): an `AbortController` per call would cost every call an `EventTarget`. Aborting it makes
 * piscina drop the call, or terminate the thread that runs it, even in a synchronous loop.
 */
class CallSignal {
	aborted = false;
	#listener: (() => void) | undefined;

	once(_event: "abort", listener: () => void): void {
		this.#listener = listener;
	}

	off(_event: "abort", _listener: () => void): void {
		this.#listener = undefined;
	}

	removeListener(_event: "abort", _listener: () => void): void {
		this.#listener = undefined;
	}

	abort(): void {
		if (!this.aborted) {
			this.aborted = true;
			const listener = this.#listener;
			this.#listener = undefined;
			listener?.();
		}
	}
}
