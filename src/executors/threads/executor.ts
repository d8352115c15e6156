import { randomBytes } from "node:crypto";
import { BroadcastChannel } from "node:worker_threads";
import { formatBytes, MemoryLimitError } from "../../limits/errors.ts";
import { capsHeap, THREAD_MIN_HEAP_BYTES } from "../../limits/placement.ts";
import type { Watchers } from "../../limits/monitor.ts";
import type { Isolation } from "../../pool-options.ts";
import { createSlots } from "../../protocol/call-slots.ts";
import type { AbortMessage } from "../../protocol/messages.ts";
import { exposeForTests } from "../../test-hooks.ts";
import { runCall } from "../call.ts";
import type { Execution, Executor, Settled } from "../executor.ts";
import { threadLoaders } from "../loader-flags.ts";
import { ThreadCall } from "./call.ts";
import { type Pool, ThreadPools } from "./pools.ts";
import { MainSlots } from "./slots.ts";

/** How often the calls in flight are checked for an answer that was posted and never arrived (see `ThreadCall.checkAnswer`). */
const ANSWER_CHECK_MS = 250;

/** A module that needs the TypeScript loader hooks. */
const TYPESCRIPT_MODULE = /\.[cm]?tsx?$/;

/**
 * Runs calls on piscina worker-thread pools (see `ThreadPools`), with at most `maxWorkers`
 * threads alive across them. Wall and CPU limits abort the call, which terminates its thread;
 * piscina starts a new one for the next call. With `isolate: "call"`, every call's thread ends
 * after it, and a spare is kept started.
 */
export class ThreadExecutor implements Executor {
	readonly where = "thread" as const;
	readonly #watchers: Watchers;
	readonly #pools: ThreadPools;
	readonly #slots: MainSlots;
	readonly #freeSlots: number[];
	/** Random: a task cannot guess it to post stop notices to other calls. */
	readonly #channelName = `byop-threads-${randomBytes(16).toString("hex")}`;
	/** Sent with every call: a task that calls its thread's entry itself has not got it. */
	readonly #key = randomBytes(16).toString("hex");
	/** The calls given a slot and not yet settled, by slot. */
	readonly #inFlight: (ThreadCall | undefined)[];
	/** How many of them there are. */
	#inFlightCount = 0;
	/** Checks the calls in flight; it stops itself once none is left. */
	#answerCheck: NodeJS.Timeout | undefined;
	#channel: BroadcastChannel | undefined;
	/** Counts the calls given a slot: each call's records carry its number. */
	#generation = 0;
	readonly #rewarm = (pool: Pool, module: string): void => this.#pools.warm(pool, this.#maxWorkers, TYPESCRIPT_MODULE.test(module));
	readonly #post = (message: AbortMessage): void => {
		this.#channel ??= this.#openChannel();
		this.#channel.postMessage(message);
	};

	readonly #maxWorkers: number;
	/** The pools whose threads' failures to start are heard (see `#hearStartFailures`). */
	readonly #heard = new WeakSet<Pool>();
	/** The smallest heap cap a call is sent to a thread with (tests lower it to have threads fail to start). */
	readonly #startable = { minHeapBytes: THREAD_MIN_HEAP_BYTES };
	readonly #isolate: boolean;

	constructor(maxWorkers: number, watchers: Watchers, isolate: Isolation = "none") {
		this.#maxWorkers = maxWorkers;
		this.#isolate = isolate === "call";
		this.#watchers = watchers;
		const buffer = createSlots(maxWorkers);
		this.#slots = new MainSlots(buffer);
		this.#pools = new ThreadPools(maxWorkers, { slots: buffer, channel: this.#channelName, key: this.#key, loaders: threadLoaders() }, this.#isolate);
		this.#freeSlots = Array.from({ length: maxWorkers }, (_, i) => maxWorkers - 1 - i);
		this.#inFlight = Array.from({ length: maxWorkers }, () => undefined);
		exposeForTests(this, { threads: () => this.#pools.counts(), startable: () => this.#startable });
	}

	/**
	 * Makes the default pool and starts `count` of its threads now, so the first calls do not
	 * wait for them; with `isolate: "call"`, at least one, the first call's spare.
	 */
	warm(count = 0): void {
		const pool = this.#pools.get(0);
		const threads = this.#isolate ? Math.max(1, count) : count;
		if (threads > 0) {
			this.#pools.warm(pool, threads);
		}
	}

	async execute(execution: Execution): Promise<Settled> {
		const limits = execution.call.limits;
		const capBytes = capsHeap(limits) ? limits.memoryBytes : 0;
		if (capBytes > 0 && capBytes < this.#startable.minHeapBytes) {
			return tooSmall(capBytes);
		}
		const slot = this.#freeSlots.pop();
		if (slot === undefined) {
			throw new Error("byop: more calls dispatched to the thread pool than it has room for");
		}
		// A positive 32-bit integer, as the slot stores it.
		this.#generation = this.#generation >= 0x7fff_ffff ? 1 : this.#generation + 1;
		const generation = this.#generation;
		this.#slots.reset(slot, generation);
		const watchOffHeap = capBytes > 0 && limits?.memoryKind === "auto" && limits.escalate;
		const pool = this.#pools.get(capBytes);
		if (!this.#heard.has(pool)) {
			this.#hearStartFailures(pool);
		}
		if (this.#isolate && TYPESCRIPT_MODULE.test(execution.call.ref.module)) {
			// Its spare is ready for the next such call.
			this.#pools.typescript(pool);
		}
		const call = new ThreadCall(execution.call, { pool, pools: this.#pools, slots: this.#slots, slot, generation, key: this.#key, capBytes, watchOffHeap, post: this.#post, rewarm: this.#rewarm });
		this.#inFlight[slot] = call;
		this.#inFlightCount++;
		this.#answerCheck ??= setInterval(this.#checkAnswers, ANSWER_CHECK_MS).unref();
		try {
			return await runCall(execution, call, this.#watchers);
		} finally {
			this.#inFlight[slot] = undefined;
			this.#inFlightCount--;
			this.#freeSlots.push(slot);
		}
	}

	/**
	 * A thread that fails to start (out of heap as it loads, a loader that throws) is dropped by
	 * piscina, which reports it as an `error` of the pool and starts no other thread for the calls
	 * it queued: once the pool has no thread left, they would wait forever, so the calls of the
	 * pool still waiting for a thread end with the failure.
	 */
	#hearStartFailures(pool: Pool): void {
		this.#heard.add(pool);
		pool.on("error", (failure: unknown) => {
			if (pool.threads.length === 0) {
				for (const call of this.#inFlight.slice()) {
					if (call?.pool === pool) {
						call.strand(failure);
					}
				}
			}
		});
	}

	readonly #checkAnswers = (): void => {
		if (this.#inFlightCount === 0) {
			clearInterval(this.#answerCheck);
			this.#answerCheck = undefined;
			return;
		}
		for (const call of this.#inFlight) {
			call?.checkAnswer();
		}
	};

	#openChannel(): BroadcastChannel {
		const channel = new BroadcastChannel(this.#channelName);
		channel.unref();
		return channel;
	}

	async close(): Promise<void> {
		clearInterval(this.#answerCheck);
		this.#answerCheck = undefined;
		this.#channel?.close();
		this.#channel = undefined;
		await this.#pools.close();
	}
}

/**
 * A heap limit too small for a worker thread to start under ends the call at once: its thread
 * would run out of heap as it starts, every time. A process cannot hold it either (a process
 * needs more than a thread), so it does not move to one.
 */
function tooSmall(capBytes: number): Settled {
	const needed = Math.round(THREAD_MIN_HEAP_BYTES / (1024 * 1024));
	const message = `Memory limit of ${formatBytes(capBytes)} (heap) is below the ${needed} MB a worker thread needs to start: the call was not run. Give it a memoryLimit of at least ${needed} MB`;
	return { kind: "exception", error: new MemoryLimitError(capBytes, THREAD_MIN_HEAP_BYTES, "heap", { message }), usage: undefined };
}
