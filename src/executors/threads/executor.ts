import { randomBytes } from "node:crypto";
import { BroadcastChannel } from "node:worker_threads";
import { capsHeap } from "../../limits/placement.ts";
import type { Watchers } from "../../limits/monitor.ts";
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
 * Runs calls on piscina worker-thread pools (see `ThreadPools`). Wall and CPU limits abort the
 * call, which terminates its thread; piscina starts a new one for the next call.
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
	/** The calls sent to threads and not yet answered. */
	readonly #inFlight = new Set<ThreadCall>();
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

	constructor(maxWorkers: number, watchers: Watchers) {
		this.#maxWorkers = maxWorkers;
		this.#watchers = watchers;
		const buffer = createSlots(maxWorkers);
		this.#slots = new MainSlots(buffer);
		this.#pools = new ThreadPools(maxWorkers, { slots: buffer, channel: this.#channelName, key: this.#key, loaders: threadLoaders() });
		this.#freeSlots = Array.from({ length: maxWorkers }, (_, i) => maxWorkers - 1 - i);
		exposeForTests(this, { threads: () => this.#pools.counts() });
	}

	/** Makes the default pool and starts `count` of its threads now, so the first calls do not wait for them. */
	warm(count = 0): void {
		const pool = this.#pools.get(0);
		if (count > 0) {
			this.#pools.warm(pool, count);
		}
	}

	async execute(execution: Execution): Promise<Settled> {
		const slot = this.#freeSlots.pop();
		if (slot === undefined) {
			throw new Error("byop: more calls dispatched to the thread pool than it has room for");
		}
		// A positive 32-bit integer, as the slot stores it.
		this.#generation = this.#generation >= 0x7fff_ffff ? 1 : this.#generation + 1;
		const generation = this.#generation;
		this.#slots.reset(slot, generation);
		const limits = execution.call.limits;
		const capBytes = capsHeap(limits) ? limits.memoryBytes : 0;
		const watchOffHeap = capBytes > 0 && limits?.memoryKind === "auto" && limits.escalate;
		const call = new ThreadCall(execution.call, { pool: this.#pools.get(capBytes), slots: this.#slots, slot, generation, key: this.#key, capBytes, watchOffHeap, post: this.#post, rewarm: this.#rewarm });
		this.#inFlight.add(call);
		this.#answerCheck ??= setInterval(this.#checkAnswers, ANSWER_CHECK_MS).unref();
		try {
			return await runCall(execution, call, this.#watchers);
		} finally {
			this.#inFlight.delete(call);
			this.#freeSlots.push(slot);
		}
	}

	readonly #checkAnswers = (): void => {
		if (this.#inFlight.size === 0) {
			clearInterval(this.#answerCheck);
			this.#answerCheck = undefined;
			return;
		}
		for (const call of this.#inFlight) {
			call.checkAnswer();
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
