import { availableParallelism } from "node:os";
import type { ExecutorKind } from "./executors/dispatcher.ts";
import { describeExpected, parseCount } from "./units.ts";

/** Options of the thread and process executors. */
export interface PoolOptions {
	/** How many calls run at once. @default os.availableParallelism() */
	readonly maxWorkers?: number;
	/**
	 * How many worker threads start when a run starts, so that the first calls find them ready
	 * (a thread stopped by a limit or a cancel is replaced at once either way). A process pool
	 * starts all `maxWorkers` processes when a run starts. At most `maxWorkers`. @default 0
	 */
	readonly minWorkers?: number;
	/**
	 * What a call shares with the calls before it. `"none"`: a thread or process is reused from
	 * call to call, so what a task leaves behind (globals, patched built-ins, `process.env`, and on
	 * processes the working directory) reaches the next call it runs. `"call"`: every call runs
	 * on a fresh thread or process, which ends with it; a spare is started ahead, so a call does
	 * not wait for it when calls are spaced. @default "none"
	 */
	readonly isolate?: Isolation;
}

/** What a call shares with the calls before it on its thread or process (see `PoolOptions.isolate`). */
export type Isolation = "none" | "call";

/** Checks an `isolate` option; `undefined` is `"none"`. */
export function parseIsolate(isolate: unknown): Isolation {
	if (isolate === undefined) {
		return "none";
	}
	if (isolate !== "none" && isolate !== "call") {
		throw new TypeError(describeExpected("isolate", '"none" or "call"', isolate));
	}
	return isolate;
}

/** Checks a scheduler's executor and pool options at the edge; returns how many calls run at once. */
export function parsePoolOptions(
	executor: unknown,
	options: unknown,
): { readonly executor: ExecutorKind; readonly maxWorkers: number; readonly minWorkers: number; readonly isolate: Isolation } {
	if (executor !== "sequential" && executor !== "threads" && executor !== "processes") {
		throw new TypeError(describeExpected("executor", '"sequential", "threads" or "processes"', executor));
	}
	if (typeof options !== "object" || options === null) {
		throw new TypeError(describeExpected("options", "an object", options));
	}
	const { maxWorkers = availableParallelism(), minWorkers = 0, isolate } = options as PoolOptions;
	const max = parseCount("maxWorkers", maxWorkers);
	if (typeof minWorkers !== "number") {
		throw new TypeError(describeExpected("minWorkers", `an integer from 0 to maxWorkers (${max})`, minWorkers));
	}
	if (!Number.isInteger(minWorkers) || minWorkers < 0 || minWorkers > max) {
		throw new RangeError(describeExpected("minWorkers", `an integer from 0 to maxWorkers (${max})`, minWorkers));
	}
	return { executor, maxWorkers: max, minWorkers, isolate: parseIsolate(isolate) };
}
