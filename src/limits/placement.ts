import { Worker } from "node:worker_threads";
import { procAvailable } from "../procfs.ts";
import type { Escalation } from "./off-heap.ts";
import type { Limits } from "./types.ts";

/** Where a call runs: on the scheduler's own executor, or in a forked process. */
export type Placement = "primary" | "process";

/** Whether the call's memory limit is a heap cap in the thread that runs it. */
export function capsHeap(limits: Limits | undefined): limits is Limits & { memoryBytes: number } {
	return limits?.memoryBytes !== undefined && limits.memoryKind !== "rss";
}

/**
 * The smallest heap cap a worker thread starts under, in bytes. Before any call, a thread's heap
 * holds Node's own modules, piscina's and byop's worker, and the loader hooks: about 8 MB on
 * Node 20 (a thread capped at 8 MB runs out of heap as it starts; one at 9 MB starts and runs a
 * small call). A heap limit below this is refused at once (see `ThreadExecutor`).
 */
export const THREAD_MIN_HEAP_BYTES = 10 * 1024 * 1024;

/** V8 flags that size the heap of every isolate of the process, and so override each worker's heap cap. */
export const HEAP_FLAG = /^--max[-_](old[-_]space|heap)[-_]size/;

/** The heap-size flag set for the whole process (command line or `NODE_OPTIONS`), if any. */
export function processHeapFlag(): string | undefined {
	const flags = [...process.execArgv, ...(process.env["NODE_OPTIONS"] ?? "").split(/\s+/)];
	return flags.find((flag) => HEAP_FLAG.test(flag));
}

/**
 * Whether this Node has `worker.cpuUsage()` (Node >= 24.6): the CPU time of a worker thread, read
 * from the main thread while the worker runs, even in a synchronous loop.
 */
export const WORKER_CPU_USAGE = typeof (Worker.prototype as { cpuUsage?: unknown }).cpuUsage === "function";

/**
 * Whether the CPU time of a worker thread can be read from outside it, as a CPU limit on a thread
 * needs: from `/proc` (`procAvailable()`), else with `worker.cpuUsage()`. `process.threadCpuUsage()`
 * does not serve: it reads only the calling thread, and a thread in a synchronous loop answers nothing.
 */
export function threadCpuReadable(): boolean {
	return procAvailable() || WORKER_CPU_USAGE;
}

/**
 * Decides where each limited call must run for its limits to hold. Threads cannot enforce a
 * true RSS limit, a heap cap that a process-wide flag overrides, or a CPU limit where a thread's
 * CPU time cannot be read; the main thread enforces nothing. Such calls run in a process, with
 * limits that say so (`memoryKind: "rss"`).
 */
export class Placer {
	readonly #executor: "sequential" | "threads" | "processes" | "bullmq";
	/** Functions whose `"auto"` calls moved to a process once and go there from now on. */
	readonly #escalated = new Set<string>();
	/** Functions whose calls started threads or processes of their own: their CPU- or memory-limited calls run in processes. */
	readonly #unmeasured = new Set<string>();
	/** Read once: the process's flags do not change while it runs. */
	readonly #heapFlag = processHeapFlag();
	#warnedHeapFlag = false;
	#warnedThreadCpu = false;
	/** Set once a thread found its heap cap lifted by a flag set while the program runs. */
	#capsLifted = false;

	/** On `"processes"` and `"bullmq"` (whose hosts place each call themselves) every call runs on the primary executor. */
	constructor(executor: "sequential" | "threads" | "processes" | "bullmq") {
		this.#executor = executor;
	}

	/** Where a call of `key` (its function) with `limits` runs, and the limits it runs with there. */
	place(key: string, limits: Limits | undefined): { readonly placement: Placement; readonly limits: Limits | undefined } {
		if (limits === undefined || this.#executor === "processes" || this.#executor === "bullmq") {
			return { placement: "primary", limits };
		}
		if (this.#executor === "sequential" || (limits.memoryBytes !== undefined && limits.memoryKind === "rss")) {
			// A limited call never runs in the main thread.
			return { placement: "process", limits };
		}
		if ((this.#unmeasured.has(key) && (limits.cpuMs !== undefined || limits.memoryBytes !== undefined)) || (limits.memoryKind === "auto" && limits.escalate && this.#escalated.has(key))) {
			return { placement: "process", limits: { ...limits, memoryKind: "rss" } };
		}
		if (capsHeap(limits) && (this.#heapFlag !== undefined || this.#capsLifted)) {
			this.#warnHeapFlag(this.#heapFlag ?? "A heap-size flag");
			return { placement: "process", limits: { ...limits, memoryKind: "rss" } };
		}
		if (limits.cpuMs !== undefined && !threadCpuReadable()) {
			this.#warnThreadCpu();
			return { placement: "process", limits };
		}
		return { placement: "primary", limits };
	}

	/**
	 * A call of `key` must move from its thread to a process: its memory outside the heap passed
	 * its limit, or it started threads or processes of its own (it and later calls of `key` with
	 * such limits run in a process), or its thread's heap cap was lifted by a heap-size flag set while the program runs
	 * (every heap-capped call runs in a process from then on). Returns the limits it runs with there.
	 */
	escalate(key: string, limits: Limits, escalation: Escalation): Limits {
		if (escalation.cause === "heap-cap-lifted") {
			this.#capsLifted = true;
			this.#warnHeapFlag("A heap-size flag set while the program runs (v8.setFlagsFromString)");
		} else if (escalation.cause === "started-unmeasured") {
			this.#unmeasured.add(key);
		} else {
			this.#escalated.add(key);
		}
		return { ...limits, memoryKind: "rss" };
	}

	#warnThreadCpu(): void {
		if (!this.#warnedThreadCpu) {
			this.#warnedThreadCpu = true;
			process.emitWarning(
				"A worker thread's CPU time cannot be read from outside it here (no /proc, and this Node has no worker.cpuUsage(), which came in Node 24.6): CPU-limited tasks run in processes instead",
				{ code: "BYOP_THREAD_CPU" },
			);
		}
	}

	#warnHeapFlag(flag: string): void {
		if (!this.#warnedHeapFlag) {
			this.#warnedHeapFlag = true;
			process.emitWarning(`${flag} is set for the whole process and overrides the heap cap of worker threads; memory-limited tasks run in processes instead`, {
				code: "BYOP_HEAP_FLAG",
			});
		}
	}
}
