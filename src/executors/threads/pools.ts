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
 * heap cap, each made when a call first needs it.
 */
export class ThreadPools {
	readonly #maxWorkers: number;
	readonly #data: Omit<ThreadWorkerData, "cap">;
	readonly #pools = new Map<number, Pool>();
	/** The ids of the threads of each pool that have started (loaded their modules). */
	readonly #ready = new WeakMap<Pool, Set<number>>();
	/** Warm-ups on their way: a pool is ended only once they are done (they may be loading modules). */
	readonly #warming = new Set<Promise<unknown>>();
	/** Whether a call of a pool has loaded a TypeScript module: its new threads register the loader hooks as they start. */
	readonly #typescript = new WeakSet<Pool>();
	#closed = false;

	constructor(maxWorkers: number, data: Omit<ThreadWorkerData, "cap">) {
		this.#maxWorkers = maxWorkers;
		this.#data = data;
	}

	/** The worker threads alive now, and those known to have started, across every pool. */
	counts(): { alive: number; started: number } {
		let alive = 0;
		let started = 0;
		for (const pool of this.#pools.values()) {
			alive += pool.threads.length;
			started += this.#ready.get(pool)?.size ?? 0;
		}
		return { alive, started };
	}

	/** The pool for calls with heap cap `capBytes` (0: none). */
	get(capBytes: number): Pool {
		return this.#pools.get(capBytes) ?? this.#create(capBytes);
	}

	/**
	 * Starts threads in `pool` until it has `count` (at most its size), without waiting for them.
	 * Threads start only where no idle one is there to take a warm-up, so a pool that lost threads
	 * (stopped calls end theirs) gets them back before its next calls need them.
	 */
	warm(pool: Pool, count = this.#maxWorkers, typescript = false): void {
		if (typescript) {
			this.#typescript.add(pool);
		}
		if (this.#closed) {
			return;
		}
		const payload = warmUp(this.#typescript.has(pool), this.#data.key);
		for (let i = 0; i < Math.min(count, this.#maxWorkers); i++) {
			const warming = pool.run(payload).catch(() => {});
			this.#warming.add(warming);
			void warming.then(() => this.#warming.delete(warming));
		}
	}

	#create(capBytes: number): Pool {
		const cap = capBytes > 0 ? heapCapMb(capBytes) : undefined;
		const workerData: ThreadWorkerData = { ...this.#data, cap };
		const pool: Pool = new Piscina<ThreadCallPayload, unknown>({
			filename: THREAD_ENTRY,
			// With minThreads above 0, piscina replaces a terminated thread when its exit event
			// arrives, even after destroy() has returned: threads would outlive the run.
			minThreads: 0,
			maxThreads: this.#maxWorkers,
			idleTimeout: cap === undefined ? 60_000 : 5_000,
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
		// By thread id: piscina hands a new object for the same thread to each event, and a
		// thread that has exited reports an id of -1, so ids of threads gone are also dropped
		// when a new thread starts.
		const ready = new Set<number>();
		pool.on("workerCreate", (worker: { readonly id: number }) => {
			ready.add(worker.id);
			if (ready.size > this.#maxWorkers) {
				const alive = new Set(pool.threads.map((thread) => thread.threadId));
				for (const id of ready) {
					if (!alive.has(id)) {
						ready.delete(id);
					}
				}
			}
		});
		pool.on("workerDestroy", (worker: { readonly id: number }) => ready.delete(worker.id));
		this.#ready.set(pool, ready);
		this.#pools.set(capBytes, pool);
		return pool;
	}

	/** Ends every pool, once its threads have started. */
	async close(): Promise<void> {
		this.#closed = true;
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
