import type { Usage } from "../../future.ts";
import { formatBytes, MemoryLimitError } from "../../limits/errors.ts";
import { killAll, threadDescendants } from "../../procfs.ts";
import { Escalation } from "../../limits/off-heap.ts";
import type { StopReason } from "../../limits/stopper.ts";
import type { Limits } from "../../limits/types.ts";
import { DataCloneError, WorkerCrashedError } from "../../errors.ts";
import { ENDED, STARTED } from "../../protocol/call-slots.ts";
import type { AbortMessage } from "../../protocol/messages.ts";
import { deserializeError, type SerializedError, serializeError } from "../../serialize.ts";
import { MessageChannel, type MessagePort } from "node:worker_threads";
import { commUpProblem, type CommUp } from "../../protocol/comm.ts";
import type { CallAdapter, Ending } from "../call.ts";
import { MainComm } from "../comm.ts";
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
	/** The key of the executor's threads (see `ThreadWorkerData`). */
	readonly key: string;
	/** The heap cap of the pool, in bytes (0: none). */
	readonly capBytes: number;
	/** Whether memory outside the heap is watched (`memoryKind: "auto"`), to move the call to a process. */
	readonly watchOffHeap: boolean;
	/** Posts a stop notice to every thread of the executor; the one running the call acts on it. */
	post(message: AbortMessage): void;
	/** Starts threads in `pool` again, after the call's thread ended; `module` is the call's. */
	rewarm(pool: Pool, module: string): void;
}

/** How long a kill waits for a last reading of the thread's CPU time from `worker.cpuUsage()`, at most, in ms. */
const KILL_READ_MS = 20;

/** How far a time read from a slot may stray past the times it must lie between, in ms: float rounding, no more. */
const ROUNDING_MS = 1;

/** The ended words a worker can record (`ENDED`), without the `posted` flag. */
const ENDINGS: ReadonlySet<number> = new Set([ENDED.none, ENDED.ok, ENDED.thrown, ENDED.ok | ENDED.leftWork, ENDED.thrown | ENDED.leftWork, ENDED.refused]);

/**
 * One call on a worker thread. Stopping it aborts its piscina run, which terminates the thread
 * even in a synchronous loop; piscina starts a new thread for the next call.
 *
 * What the call's slot holds is checked before it is acted on: a start outside the time between
 * the call's sending and now, a CPU time that goes backwards, sizes that are no sizes. Workers
 * keep the slots out of their tasks' reach, so such a slot means the thread is not sound: the
 * call ends at once with a `WorkerCrashedError` that says what was found, rather than run on
 * with limits that read nonsense.
 */
export class ThreadCall implements CallAdapter {
	readonly where = "thread" as const;
	readonly offHeapBytes: (() => number) | undefined;
	readonly #call: Call;
	readonly #place: ThreadPlace;
	readonly #signal = new CallSignal();
	readonly #cpu: ThreadCpu;
	/** Why no thread could take the call: its pool's threads failed to start. */
	#startFailure: { readonly failure: unknown } | undefined;
	/** Whether the call has been sent to its pool and has not settled: it may wait there for a thread. */
	#waiting = false;
	/** When the call was sent to its pool, in `performance.now()` time. */
	#sentAt = Number.POSITIVE_INFINITY;
	/** Whether piscina has settled the call (with an answer or a failure). */
	#settled = false;
	/** Whether a check has seen the answer posted and not received (see `checkAnswer`). */
	#postedSeen = false;
	/** Why the call was ended from here: its slot made no sense, or its answer was lost. */
	#fault: Error | undefined;
	/** The main side's end of the call's comm channel, for a task with a `CommPlugin`. */
	#comm: { readonly main: MainComm; readonly port: MessagePort } | undefined;

	constructor(call: Call, place: ThreadPlace) {
		this.#call = call;
		this.#place = place;
		this.#cpu = new ThreadCpu(place.slots, place.slot, place.generation, (what) => this.#nonsense(what), (threadId) => place.pool.threads.find((thread) => thread.threadId === threadId));
		this.offHeapBytes = place.watchOffHeap ? () => this.#size(place.slots.externalMemory(place.slot), "memory outside the heap") : undefined;
	}

	/** The pool the call is sent to. */
	get pool(): Pool {
		return this.#place.pool;
	}

	/**
	 * Its pool has no thread left that could take the call: they failed to start with `failure`.
	 * A call still waiting for one ends with it (see `ThreadExecutor`).
	 */
	strand(failure: unknown): void {
		if (this.#waiting && this.startedAt() === undefined && this.#startFailure === undefined) {
			this.#startFailure = { failure };
			// Drops the call from piscina's queue.
			this.#signal.abort();
		}
	}

	/**
	 * When the call started in its thread. Once its answer has been posted, the start its wall
	 * time gives: the call has ended, and the time its answer takes to arrive is not the call's.
	 */
	startedAt(): number | undefined {
		const { slots, slot, generation } = this.#place;
		const started = slots.startedAt(slot, generation);
		if (started === undefined) {
			return undefined;
		}
		const now = performance.now();
		if (!(started >= this.#sentAt - ROUNDING_MS && started <= now + ROUNDING_MS)) {
			this.#nonsense(`a start ${(now - started).toFixed(1)} ms ago, while it was sent ${(now - this.#sentAt).toFixed(1)} ms ago`);
			return this.#sentAt;
		}
		if (slots.posted(slot, generation)) {
			const { wallMs } = slots.usage(slot);
			if (wallMs >= 0 && wallMs <= now - started + ROUNDING_MS) {
				return now - wallMs;
			}
		}
		return started;
	}

	cpuMs(): number {
		return this.#cpu.read();
	}

	startedUnmeasured(): boolean {
		return this.#place.slots.spawned(this.#place.slot, STARTED.worker | STARTED.process);
	}

	async run(): Promise<Ending> {
		const { pool, pools, slots, slot, generation, key } = this.#place;
		const { id, ref, args } = this.#call;
		// The call counts as running from here: it holds one of the pool's places (its thread may
		// still have to start); limits count from the start its worker records.
		this.#waiting = true;
		this.#sentAt = performance.now();
		const port = this.#openComm();
		// Without a port, the payload has no field for one: every field is copied to the thread.
		const payload = port === undefined ? { id, ref, args, slot, generation, key } : { id, ref, args, slot, generation, key, port };
		const sent = await pools.run(pool, payload, this.#signal).then(answeredWith, failedWith);
		if (sent.answered && this.#comm !== undefined) {
			// The answer came on piscina's port; what the task sent before it may still be on the
			// call's own: the call settles once that port has brought its end (or closed).
			await this.#comm.main.whenEnded();
		}
		this.#waiting = false;
		this.#settled = true;
		if (sent.answered) {
			this.#checkEnd();
		}
		if (this.#fault !== undefined && (sent.answered || isAbort(sent.failure))) {
			// Ended from here: its thread was terminated (or answered with a slot that makes no sense).
			if (!sent.answered) {
				this.#place.rewarm(this.#place.pool, this.#call.ref.module);
			}
			return { kind: "exception", error: this.#fault, usage: this.#faultUsage() };
		}
		const ended = sent.answered ? slots.ended(slot) : ENDED.none;
		if (ended !== ENDED.none && slots.leftWork(slot)) {
			// The call left work running in its thread: the thread ends with the call (it is idle
			// now, and no other call is sent to it before this one has ended), with what it started.
			// Waited for, so that piscina has dropped the thread before the next call is sent.
			const threadId = slots.threadId(slot);
			const tree = threadDescendants(this.#tid());
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
		if (!sent.answered && this.#startFailure !== undefined) {
			return { kind: "exception", error: startFailed(this.#startFailure.failure, this.#call.limits, this.#place.capBytes), usage: this.#lostUsage(undefined) };
		}
		// No answer (it was stopped, or it crashed), or none with a result (it was stopped before it started).
		const failure = sent.answered ? new Error("The worker answered without a result") : sent.failure;
		if (!sent.answered) {
			// Its thread ended: the next call finds a thread started.
			this.#place.rewarm(this.#place.pool, this.#call.ref.module);
		}
		return { kind: "exception", error: threadFailure(failure, this.#call.limits as Limits | undefined, this.#place.capBytes), usage: this.#lostUsage(failure) };
	}

	/** Opens the call's comm channel when its task has a `CommPlugin`; returns the port that goes to the thread. */
	#openComm(): MessagePort | undefined {
		const comm = this.#call.comm;
		if (comm === undefined) {
			return undefined;
		}
		const { port1, port2 } = new MessageChannel();
		const main = new MainComm(comm, (message) => port1.postMessage(message));
		port1.on("message", (message: unknown) => {
			// Only the thread's entry holds the port, and it sends nothing else: a message of another shape ends the channel.
			if (commUpProblem(message) !== undefined) {
				main.close();
				return;
			}
			main.receive(message as CommUp);
		});
		port1.on("close", () => main.end());
		this.#comm = { main, port: port1 };
		return port2;
	}

	/**
	 * Called every so often while the call runs. A call whose answer its worker posted, and which
	 * was seen so at an earlier check (the main thread has read its messages in between), will get
	 * none: the main thread could not read it (a value nested too deeply for its stack). It ends
	 * with a `DataCloneError`, its thread with it.
	 */
	checkAnswer(): void {
		const { slots, slot, generation } = this.#place;
		if (this.#settled || this.#fault !== undefined || !slots.posted(slot, generation)) {
			return;
		}
		if (!this.#postedSeen) {
			this.#postedSeen = true;
			return;
		}
		this.#fault = new DataCloneError("The result of the call could not be copied to the main thread (a value nested too deeply for the main thread's stack, for one)");
		this.#terminate();
	}

	/** Ends the call: its slot holds `what`, which cannot be. */
	#nonsense(what: string): void {
		if (this.#fault !== undefined) {
			return;
		}
		const message = `The worker thread running the task recorded ${what} in its call slot, which cannot be: the call was ended, as its limits could not be enforced`;
		this.#fault = new WorkerCrashedError(message, {});
		if (!this.#settled) {
			this.#terminate();
		}
	}

	/** `bytes` when it is a size; else 0, and the call ends. */
	#size(bytes: number, what: string): number {
		if (Number.isFinite(bytes) && bytes >= 0) {
			return bytes;
		}
		this.#nonsense(`${what} of ${bytes} bytes`);
		return 0;
	}

	/** Checks what the slot says of the call's end, once its thread has answered. */
	#checkEnd(): void {
		const { slots, slot, generation } = this.#place;
		const word = slots.endedWord(slot);
		const ended = word & ~ENDED.posted;
		if (!ENDINGS.has(ended)) {
			this.#nonsense(`the ending ${word}`);
			return;
		}
		const state = slots.state(slot);
		if (ended !== ENDED.none && state !== (ended === ENDED.refused ? generation : -generation)) {
			this.#nonsense(`the state ${state} for call ${generation}`);
			return;
		}
		if (ended !== ENDED.ok && ended !== ENDED.thrown && (ended & ENDED.leftWork) === 0) {
			return;
		}
		const { wallMs, cpuMs, peakMemoryBytes } = slots.usage(slot);
		const since = performance.now() - this.#sentAt;
		if (!(wallMs >= 0 && wallMs <= since + ROUNDING_MS)) {
			this.#nonsense(`a wall time of ${wallMs} ms, for a call sent ${since.toFixed(1)} ms ago`);
		} else if (!(cpuMs === -1 || (cpuMs >= 0 && cpuMs <= wallMs + ROUNDING_MS))) {
			this.#nonsense(`a CPU time of ${cpuMs} ms, for a wall time of ${wallMs} ms`);
		} else if ((ended & ENDED.leftWork) !== 0 && !(Number.isInteger(slots.threadId(slot)) && slots.threadId(slot) > 0)) {
			this.#nonsense(`the thread number ${slots.threadId(slot)}`);
		} else {
			this.#size(peakMemoryBytes, "a peak memory");
		}
	}

	/** What is known of a call ended from here: what its slot says, where it makes sense. */
	#faultUsage(): Usage {
		const { slots, slot } = this.#place;
		const { wallMs, cpuMs, peakMemoryBytes } = slots.usage(slot);
		const sound = (value: number): number => (Number.isFinite(value) && value >= 0 ? value : 0);
		const started = this.startedAt();
		const sinceStart = started === undefined ? 0 : performance.now() - started;
		return { wallMs: slots.posted(slot, this.#place.generation) ? sound(wallMs) : sinceStart, cpuMs: Number.isFinite(cpuMs) && cpuMs >= 0 ? cpuMs : this.#cpu.read(), peakMemoryBytes: sound(peakMemoryBytes), where: "thread" };
	}

	/** What is known of a call whose thread gave no answer: its wall time since its thread recorded its start, and what was last read. */
	#lostUsage(failure: unknown): Usage {
		const { slots, slot, capBytes } = this.#place;
		const started = this.startedAt();
		const peak = Math.max(this.#size(slots.peakMemory(slot), "a peak memory"), capBytes > 0 && isOutOfMemory(failure) ? capBytes : 0);
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

	/**
	 * Terminates the thread, and the processes the call started from it (listed first: once the
	 * thread is gone they are no longer its children). Where the thread's CPU time is read with
	 * `worker.cpuUsage()`, which answers asynchronously (in well under a millisecond, even while
	 * the thread spins), a last reading is taken first, so that the call reports what it used.
	 */
	#terminate(): void {
		const reading = this.#cpu.refresh(KILL_READ_MS);
		if (reading === undefined) {
			this.#terminateNow();
		} else {
			void reading.then(() => this.#terminateNow());
		}
	}

	#terminateNow(): void {
		const tid = this.#tid();
		const tree = tid > 0 ? threadDescendants(tid) : [];
		this.#signal.abort();
		killAll(tree);
	}

	release(): void {
		this.#cpu.close();
		this.#comm?.main.close();
		this.#comm?.port.close();
		// What a limited call started from its thread and left running ends with the call (an
		// unlimited call's, when it is stopped): its limits hold for all of it.
		const { slots, slot } = this.#place;
		if (this.#call.limits !== undefined && slots.spawned(slot, STARTED.process) && this.#tid() > 0) {
			killAll(threadDescendants(this.#tid()));
		}
	}

	/** The OS thread id the slot gives, when it can be a thread of this process other than this one; else 0. */
	#tid(): number {
		const tid = this.#place.slots.tid(this.#place.slot);
		return Number.isInteger(tid) && tid > 0 && tid !== process.pid ? tid : 0;
	}
}

/** The error of a call that no thread could take, its pool's threads having failed to start with `failure`. */
function startFailed(failure: unknown, limits: Limits | undefined, capBytes: number): Error {
	const message = failure instanceof Error ? failure.message : String(failure);
	if (isOutOfMemory(failure) && capBytes > 0 && limits?.memoryBytes !== undefined) {
		return new MemoryLimitError(limits.memoryBytes, capBytes, "heap", {
			cause: failure,
			message: `Memory limit of ${formatBytes(limits.memoryBytes)} (heap) is too small for a worker thread to start under: its thread ran out of heap as it started, and the call was not run`,
		});
	}
	return new WorkerCrashedError(`The worker thread for the call failed to start, and the call was not run: ${message}`, {}, { cause: failure });
}

/** What a thread answered for a call, or why it gave no answer. */
interface Sent {
	readonly answered: boolean;
	readonly answer?: unknown;
	readonly failure?: unknown;
}

const answeredWith = (answer: unknown): Sent => ({ answered: true, answer });
/** Whether piscina failed a call because its signal aborted it (the thread was terminated from here). */
const isAbort = (failure: unknown): boolean => failure instanceof Error && failure.name === "AbortError";
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
