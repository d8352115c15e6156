import { fileURLToPath } from "node:url";
import { Piscina } from "piscina";
import type { ThreadCallPayload, ThreadWorkerData } from "../../protocol/messages.ts";

const extension = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
/** The file each worker thread runs. */
export const THREAD_ENTRY = fileURLToPath(new URL(`../../../workers/thread${extension}`, import.meta.url));

const MiB = 1024 * 1024;
/** How long a stop waits for a thread to finish loading a module before it terminates the thread. */
export const LOAD_WAIT_MS = 1000;

export type Pool = Piscina<ThreadCallPayload, unknown>;

type Balancer = NonNullable<NonNullable<ConstructorParameters<typeof Piscina>[0]>["loadBalancer"]>;
/** What piscina tells of one of its threads (live: its fields follow the thread). */
type PoolThread = NonNullable<ReturnType<Balancer>>;

/** What a thread is sent to have it start (and register the loader hooks its pool's calls need) without a call. */
export function warmUp(typescript: boolean, key: string): ThreadCallPayload {
	return { id: 0, ref: { module: typescript ? "warm.ts" : "warm.js", name: "default" }, args: [], slot: -1, generation: 0, key };
}

/** The V8 heap cap, in whole megabytes, that a pool uses for a heap limit in bytes. */
export function heapCapMb(bytes: number): { old: number; young: number } {
	const total = Math.max(2, Math.ceil(bytes / MiB));
	const young = Math.max(1, Math.min(16, Math.floor(total / 8)));
	return { old: Math.max(1, total - young), young };
}

/**
 * The piscina pools of a thread executor: one for calls without a heap cap, and one per distinct
 * heap cap, each made when a call first needs it. At most `maxWorkers` threads are alive at once
 * across all pools (the dispatcher sends at most `maxWorkers` calls): a call whose pool has no
 * idle thread while the budget is spent waits until an idle thread of another pool has been
 * ended for it, and warm-ups start threads only within the budget. With `isolate`, a thread
 * runs one call and is ended after it, and a spare is kept started for the pool of the latest
 * call.
 */
export class ThreadPools {
	readonly #maxWorkers: number;
	/**
	 * How many threads may be alive at once across the pools: `maxWorkers`, and with `isolate` as
	 * many again for the spares, so that each running call's successor is started while it runs.
	 */
	readonly #budget: number;
	readonly #isolate: boolean;
	readonly #data: Omit<ThreadWorkerData, "cap">;
	readonly #pools = new Map<number, Pool>();
	/** The threads of each pool that have started (loaded their modules), by the id they started with. */
	readonly #ready = new WeakMap<Pool, Map<number, PoolThread>>();
	/** Threads that take no more calls: they ran an isolated call, or give way to another pool's; they are ending. */
	readonly #retired = new Set<number>();
	/** Warm-ups on their way: a pool is ended only once they are done (they may be loading modules). */
	readonly #warming = new Set<Promise<unknown>>();
	/** How many warm-ups each pool has on their way. */
	readonly #warmingIn = new Map<Pool, number>();
	/** Whether a call of a pool has loaded a TypeScript module: its new threads register the loader hooks as they start. */
	readonly #typescript = new WeakSet<Pool>();
	/** Calls waiting for room in the budget. */
	readonly #waiting: (() => void)[] = [];
	/** The pool of the latest call: with `isolate`, a spare is kept started there. */
	#latest: Pool | undefined;
	#closed = false;
	/** Gives a call or a warm-up an idle thread that is not retired; with `isolate`, a call's thread is retired as it takes it. */
	readonly #balancer: Balancer = (task, threads) => {
		for (const thread of threads) {
			if (thread.currentUsage === 0 && !thread.terminating && !thread.destroyed && !this.#retired.has(thread.id)) {
				// Calls carry an abort signal, warm-ups none.
				if (this.#isolate && task.isAbortable) {
					this.#retired.add(thread.id);
				}
				return thread;
			}
		}
		return null;
	};

	constructor(maxWorkers: number, data: Omit<ThreadWorkerData, "cap">, isolate = false) {
		this.#maxWorkers = maxWorkers;
		this.#budget = isolate ? 2 * maxWorkers : maxWorkers;
		this.#isolate = isolate;
		this.#data = data;
	}

	/** The worker threads alive now, and those known to have started, across every pool. */
	counts(): { alive: number; started: number } {
		let started = 0;
		for (const pool of this.#pools.values()) {
			started += this.#ready.get(pool)?.size ?? 0;
		}
		return { alive: this.#alive(), started };
	}

	/** The pool for calls with heap cap `capBytes` (0: none). */
	get(capBytes: number): Pool {
		return this.#pools.get(capBytes) ?? this.#create(capBytes);
	}

	/**
	 * Sends a call to `pool` once it has room: an idle thread, or fewer than `maxWorkers` threads
	 * alive in all pools. Until then it waits, and an idle thread of another pool is ended for it.
	 */
	run(pool: Pool, payload: ThreadCallPayload, signal: CallAbortSignal): Promise<unknown> {
		this.#latest = pool;
		if (this.#hasRoom(pool)) {
			return this.#send(pool, payload, signal);
		}
		return this.#sendWithRoom(pool, payload, signal);
	}

	/** Marks `pool` as running TypeScript job modules: its new threads (a spare too) register the loader hooks as they start. */
	typescript(pool: Pool): void {
		this.#typescript.add(pool);
	}

	/** Tells that a call sent by `run` is over: with `isolate`, its thread ends; a call waiting for room may find it. */
	settled(pool: Pool): void {
		if (this.#isolate) {
			this.#endRetired(pool);
		}
		this.#changed();
	}

	#send(pool: Pool, payload: ThreadCallPayload, signal: CallAbortSignal): Promise<unknown> {
		// The call's comm port, if it has one, goes to the thread with it.
		const sent = pool.run(payload, payload.port === undefined ? { signal } : { signal, transferList: [payload.port] });
		if (this.#isolate) {
			this.#spare();
		}
		return sent;
	}

	/** Whether a call sent to `pool` now starts on an idle thread, or on a new one within the budget. */
	#hasRoom(pool: Pool): boolean {
		return this.#idleThread(pool) !== undefined || this.#alive() < this.#budget;
	}

	/** Waits for room, and sends the call in the same step as the look that found it (calls woken together would take the same room). */
	async #sendWithRoom(pool: Pool, payload: ThreadCallPayload, signal: CallAbortSignal): Promise<unknown> {
		while (this.#closed || !this.#hasRoom(pool)) {
			if (this.#closed) {
				throw new Error("The thread pool closed before the call got a thread");
			}
			const giveWay = this.#giveWay(pool);
			await (giveWay ?? new Promise<void>((resolve) => this.#waiting.push(resolve)));
		}
		return this.#send(pool, payload, signal);
	}

	/** Ends an idle thread of a pool other than `pool`; resolves once it has exited. */
	#giveWay(pool: Pool): Promise<void> | undefined {
		for (const other of this.#pools.values()) {
			const idle = other === pool ? undefined : this.#idleThread(other);
			if (idle !== undefined) {
				this.#retired.add(idle.id);
				return this.#end(other, idle.id);
			}
		}
		return undefined;
	}

	/** An idle thread of `pool` that a call or a warm-up sent now would go to. */
	#idleThread(pool: Pool): PoolThread | undefined {
		const ready = this.#ready.get(pool);
		if (ready !== undefined) {
			for (const thread of ready.values()) {
				if (thread.currentUsage === 0 && !thread.terminating && !thread.destroyed && !this.#retired.has(thread.id)) {
					return thread;
				}
			}
		}
		return undefined;
	}

	/** Threads alive across every pool: starting, idle, busy, or ending but not yet exited. */
	#alive(): number {
		let alive = 0;
		for (const pool of this.#pools.values()) {
			alive += pool.threads.length;
		}
		return alive;
	}

	/** Ends the retired threads of `pool` that are done with their call. */
	#endRetired(pool: Pool): void {
		const ready = this.#ready.get(pool);
		for (const [id, thread] of ready ?? []) {
			if (this.#retired.has(id) && thread.currentUsage === 0 && !thread.terminating && !thread.destroyed) {
				void this.#end(pool, id);
			}
		}
	}

	/** Terminates thread `id` of `pool` (retired first, so that nothing is sent to it); resolves once it has exited. */
	#end(pool: Pool, id: number): Promise<void> {
		const worker = pool.threads.find((thread) => thread.threadId === id);
		if (worker === undefined) {
			return Promise.resolve();
		}
		// piscina hears of the exit first, and drops the thread: the budget counts it until then.
		return worker.terminate().then(
			() => this.#changed(),
			() => this.#changed(),
		);
	}

	/** The budget or a pool's idle threads changed: a waiting call looks again, or else a spare may start. */
	#changed(): void {
		if (this.#waiting.length > 0) {
			for (const resume of this.#waiting.splice(0)) {
				resume();
			}
		} else if (this.#isolate) {
			this.#spare();
		}
	}

	/** With `isolate`: starts a spare thread for the latest call's pool if it has none idle or starting, within the budget. */
	#spare(): void {
		const pool = this.#latest;
		if (pool !== undefined && !this.#closed && (this.#warmingIn.get(pool) ?? 0) === 0 && this.#idleThread(pool) === undefined && this.#alive() < this.#budget) {
			this.#warmOne(pool);
		}
	}

	/**
	 * Sends warm-ups to `pool` until `count` are on their way (at most `maxWorkers`), without
	 * waiting for them: each goes to an idle thread, or starts a thread while fewer than
	 * `maxWorkers` are alive in all pools. So a pool that lost threads (stopped calls end
	 * theirs) gets them back before its next calls need them, but never at another pool's cost.
	 */
	warm(pool: Pool, count = this.#maxWorkers, typescript = false): void {
		if (typescript) {
			this.#typescript.add(pool);
		}
		if (this.#closed) {
			return;
		}
		for (let i = 0; i < Math.min(count, this.#maxWorkers) && this.#hasRoom(pool); i++) {
			this.#warmOne(pool);
		}
	}

	#warmOne(pool: Pool): void {
		this.#warmingIn.set(pool, (this.#warmingIn.get(pool) ?? 0) + 1);
		const warming = pool.run(warmUp(this.#typescript.has(pool), this.#data.key)).catch(() => {});
		this.#warming.add(warming);
		void warming.then(() => {
			this.#warming.delete(warming);
			this.#warmingIn.set(pool, (this.#warmingIn.get(pool) ?? 1) - 1);
			this.#changed();
		});
	}

	#create(capBytes: number): Pool {
		const cap = capBytes > 0 ? heapCapMb(capBytes) : undefined;
		const workerData: ThreadWorkerData = { ...this.#data, cap };
		const pool: Pool = new Piscina<ThreadCallPayload, unknown>({
			filename: THREAD_ENTRY,
			// With minThreads above 0, piscina replaces a terminated thread when its exit event
			// arrives, even after destroy() has returned: threads would outlive the run.
			minThreads: 0,
			// The budget across pools is kept by `run` and `warm`: piscina starts a thread only
			// for a call or a warm-up that finds no idle one.
			maxThreads: this.#budget,
			idleTimeout: cap === undefined ? 60_000 : 5_000,
			loadBalancer: this.#balancer,
			// Run and wait time histograms cost every call; byop measures its calls itself.
			recordTiming: false,
			// An idle thread waits with Atomics.waitAsync and so runs its event loop: what a
			// finished call left behind (a timer, a rejected promise) runs, or fails, between
			// calls instead of inside the next call. It is also faster here than "sync".
			atomics: "async",
			workerData,
			...(cap === undefined ? {} : { resourceLimits: { maxOldGenerationSizeMb: cap.old, maxYoungGenerationSizeMb: cap.young } }),
		});
		// A worker that dies between calls is gone (piscina starts a new one for the next call); nothing is lost.
		pool.on("error", () => {});
		// By the id a thread started with: piscina hands a new object for the same thread to
		// each event (its fields follow the thread), and a thread that has exited reports an id
		// of -1.
		const ready = new Map<number, PoolThread>();
		pool.on("workerCreate", (thread: PoolThread) => {
			ready.set(thread.id, thread);
			// A thread started for a call that was cancelled before it got there is idle now. Once
			// piscina has given the thread what waits for it: it tells before it does.
			queueMicrotask(() => this.#changed());
		});
		pool.on("workerDestroy", () => {
			for (const [id, thread] of ready) {
				if (thread.destroyed) {
					ready.delete(id);
					this.#retired.delete(id);
				}
			}
			// Once piscina has dropped the thread: it tells before it does.
			queueMicrotask(() => this.#changed());
		});
		this.#ready.set(pool, ready);
		this.#pools.set(capBytes, pool);
		return pool;
	}

	/** Ends every pool, once its threads have started. */
	async close(): Promise<void> {
		this.#closed = true;
		this.#changed();
		const pools = [...this.#pools.values()];
		this.#pools.clear();
		await Promise.race([Promise.all(this.#warming), new Promise((resolve) => setTimeout(resolve, LOAD_WAIT_MS).unref())]);
		await Promise.all(
			pools.map(async (pool) => {
				await this.#started(pool);
				await pool.destroy();
			}),
		);
	}

	/**
	 * Waits, up to `LOAD_WAIT_MS`, until every thread of `pool` has started: a thread terminated
	 * while it loads its modules would leave the files it was reading open.
	 */
	async #started(pool: Pool): Promise<void> {
		const ready = this.#ready.get(pool);
		const deadline = performance.now() + LOAD_WAIT_MS;
		while (ready !== undefined && pool.threads.some((thread) => !ready.has(thread.threadId))) {
			const left = deadline - performance.now();
			if (left <= 0) {
				return;
			}
			// A thread either reports that it started, or fails to start and is dropped.
			await new Promise<void>((resolve) => {
				const done = (): void => {
					clearTimeout(timer);
					pool.off("workerCreate", done);
					pool.off("workerDestroy", done);
					resolve();
				};
				const timer = setTimeout(done, left);
				pool.on("workerCreate", done);
				pool.on("workerDestroy", done);
			});
		}
	}
}

/** The abort signal piscina takes: an emitter of one `abort` event. */
export interface CallAbortSignal {
	readonly aborted: boolean;
	once(event: "abort", listener: () => void): void;
	off(event: "abort", listener: () => void): void;
	removeListener(event: "abort", listener: () => void): void;
}
