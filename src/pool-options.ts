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
}

/** Checks a scheduler's executor and pool options at the edge; returns how many calls run at once. */
export function parsePoolOptions(executor: unknown, options: unknown): { readonly executor: ExecutorKind; readonly maxWorkers: number; readonly minWorkers: number } {
	if (executor !== "sequential" && executor !== "threads" && executor !== "processes") {
		throw new TypeError(describeExpected("executor", '"sequential", "threads" or "processes"', executor));
	}
	if (typeof options !== "object" || options === null) {
		throw new TypeError(describeExpected("options", "an object", options));
	}
	const { maxWorkers = availableParallelism(), minWorkers = 0 } = options as PoolOptions;
	const max = parseCount("maxWorkers", maxWorkers);
	if (typeof minWorkers !== "number") {
		throw new TypeError(describeExpected("minWorkers", `an integer from 0 to maxWorkers (${max})`, minWorkers));
	}
	if (!Number.isInteger(minWorkers) || minWorkers < 0 || minWorkers > max) {
		throw new RangeError(describeExpected("minWorkers", `an integer from 0 to maxWorkers (${max})`, minWorkers));
	}
	return { executor, maxWorkers: max, minWorkers };
}
