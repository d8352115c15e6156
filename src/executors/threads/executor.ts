import { BroadcastChannel } from "node:worker_threads";
import { capsHeap } from "../../limits/placement.ts";
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

let channels = 0;

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
	readonly #channelName = `byop-threads-${process.pid}-${++channels}`;
	#channel: BroadcastChannel | undefined;
	/** Counts the calls given a slot: each call's records carry its number. */
	#generation = 0;
	readonly #rewarm = (pool: Pool, module: string): void => this.#pools.warm(pool, this.#maxWorkers, TYPESCRIPT_MODULE.test(module));
	readonly #post = (message: AbortMessage): void => {
		this.#channel ??= this.#openChannel();
		this.#channel.postMessage(message);
	};

	readonly #maxWorkers: number;
	readonly #isolate: boolean;

	constructor(maxWorkers: number, watchers: Watchers, isolate: Isolation = "none") {
		this.#maxWorkers = maxWorkers;
		this.#isolate = isolate === "call";
		this.#watchers = watchers;
		const buffer = createSlots(maxWorkers);
		this.#slots = new MainSlots(buffer);
		this.#pools = new ThreadPools(maxWorkers, { slots: buffer, channel: this.#channelName, loaders: threadLoaders() }, this.#isolate);
		this.#freeSlots = Array.from({ length: maxWorkers }, (_, i) => maxWorkers - 1 - i);
		exposeForTests(this, { threads: () => this.#pools.counts() });
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
		const pool = this.#pools.get(capBytes);
		if (this.#isolate && TYPESCRIPT_MODULE.test(execution.call.ref.module)) {
			// Its spare is ready for the next such call.
			this.#pools.typescript(pool);
		}
		const call = new ThreadCall(execution.call, { pool, pools: this.#pools, slots: this.#slots, slot, generation, capBytes, watchOffHeap, post: this.#post, rewarm: this.#rewarm });
		try {
			return await runCall(execution, call, this.#watchers);
		} finally {
			this.#freeSlots.push(slot);
		}
	}

	#openChannel(): BroadcastChannel {
		const channel = new BroadcastChannel(this.#channelName);
		channel.unref();
		return channel;
	}

	async close(): Promise<void> {
		this.#channel?.close();
		this.#channel = undefined;
		await this.#pools.close();
	}
}
