import { readFileSync } from "node:fs";
import { Scheduler, type Future, Task } from "../src/index.ts";
import type { FunctionRef } from "../src/ref.ts";
import { viewOf } from "../src/test-hooks.ts";
import { threadCpuReadable } from "../src/limits/placement.ts";
import { procAvailable } from "../src/procfs.ts";

/** Whether byop takes the portable path here: no `/proc` to read, or `BYOP_PORTABLE=1` (see docs/limits.md). */
export const PORTABLE = !procAvailable();

/**
 * Whether a worker thread's CPU time can be read from outside it (`/proc`, or `worker.cpuUsage()` on
 * Node >= 24.6): CPU-limited calls stay on threads, and a thread call stopped from outside reports its CPU time.
 */
export const THREAD_CPU = threadCpuReadable();

/** The reason a test of what only `/proc` shows is skipped on the portable path (`what`: what it needs), or `false`. */
export function procOnly(what: string): string | false {
	return PORTABLE ? `without /proc (the portable path), ${what}` : false;
}

/** The reason a test that needs a thread's CPU time read from outside is skipped here (`what` follows from that), or `false`. */
export function threadCpuOnly(what = "CPU-limited thread calls run in processes"): string | false {
	return THREAD_CPU ? false : `a worker thread's CPU time cannot be read from outside it here (no /proc, Node < 24.6): ${what}`;
}

/** A reference to an export of test/fixtures/jobs.ts. */
export function job(name: string): FunctionRef {
	return { module: new URL("./fixtures/jobs.ts", import.meta.url), name };
}

/** A reference to an export of test/fixtures/plain.mjs, which needs no loader hooks. */
export function plain(name: string): FunctionRef {
	return { module: new URL("./fixtures/plain.mjs", import.meta.url), name };
}

export type ExecutorKind = "sequential" | "threads" | "processes";
export const EXECUTORS: readonly ExecutorKind[] = ["sequential", "threads", "processes"];

export function make(kind: ExecutorKind, maxWorkers = 2): Scheduler {
	if (kind === "sequential") {
		return Scheduler.withSequential();
	}
	return kind === "threads" ? Scheduler.withThreads({ maxWorkers }) : Scheduler.withProcesses({ maxWorkers });
}

/** Records the events of a task in order, as `[event, ...details]`. */
export function record(task: Task): string[] {
	const log: string[] = [];
	task.on(Task.SUBMITTED, () => log.push("submitted"));
	task.on(Task.DONE, () => log.push("done"));
	task.on(Task.RESULT, () => log.push("result"));
	task.on(Task.EXCEPTION, () => log.push("exception"));
	task.on(Task.CANCELLED, () => log.push("cancelled"));
	return log;
}

/** Runs `scheduler` after submitting with `submit`, collecting every future. */
export async function runAll(scheduler: Scheduler, submit: () => (Future | undefined)[], options: Parameters<Scheduler["run"]>[0] = { onException: "continue", onCancelled: "continue" }) {
	let futures: (Future | undefined)[] = [];
	const off = scheduler.on(Scheduler.STARTED, () => {
		futures = submit();
	});
	try {
		const exit = await scheduler.run(options);
		return { exit, futures: futures.filter((future): future is Future => future !== undefined) };
	} finally {
		off();
	}
}


/** Waits for `ms` milliseconds. */
export function delay(ms: number): Promise<void> {
	return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Whether a process with this pid is alive (a zombie waiting to be reaped counts as dead). */
export function alive(pid: number): boolean {
	try {
		process.kill(pid, 0);
	} catch {
		return false;
	}
	try {
		const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
		return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
	} catch {
		return false;
	}
}

/** The dispatcher of a scheduler, as the test hooks expose it. */
function dispatcherOf(scheduler: Scheduler): object {
	const dispatcher = viewOf<object>(scheduler, "dispatcher");
	if (dispatcher === undefined) {
		throw new Error("the scheduler exposes no dispatcher");
	}
	return dispatcher;
}

/** The pids of a scheduler's pool processes alive now (none before its process pool starts). */
export function poolPids(scheduler: Scheduler): number[] {
	const processes = viewOf<object>(dispatcherOf(scheduler), "processes");
	return processes === undefined ? [] : (viewOf<number[]>(processes, "pids") ?? []);
}

/** The process executor of a scheduler, once started. */
export function processExecutorOf(scheduler: Scheduler): { warm(): void } | undefined {
	return viewOf<{ warm(): void }>(dispatcherOf(scheduler), "processes");
}

/** The worker threads of a scheduler's thread pools, alive and known to have started; `undefined` before a pool starts. */
export function threadCounts(scheduler: Scheduler): { alive: number; started: number } | undefined {
	const threads = viewOf<object>(dispatcherOf(scheduler), "threads");
	return threads === undefined ? undefined : viewOf(threads, "threads");
}

/** How often a scheduler's watchdog has fired, and whether its timer runs now. */
export function watchdogState(scheduler: Scheduler): { ticks: number; active: boolean } {
	const watchdog = viewOf<object>(dispatcherOf(scheduler), "watchdog");
	return (watchdog === undefined ? undefined : viewOf<{ ticks: number; active: boolean }>(watchdog, "state")) ?? { ticks: 0, active: false };
}
