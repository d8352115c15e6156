import { availableParallelism } from "node:os";
import type { ExecutorKind } from "./executors/dispatcher.ts";
import { describeExpected, parseCount } from "./units.ts";

/** Options of the thread and process executors. */
export interface PoolOptions {
	/** How many calls run at once. @default os.availableParallelism() */
	readonly maxWorkers?: number;
}

/** Checks a scheduler's executor and pool options at the edge; returns how many calls run at once. */
export function parsePoolOptions(executor: unknown, options: unknown): { readonly executor: ExecutorKind; readonly maxWorkers: number } {
	if (executor !== "sequential" && executor !== "threads" && executor !== "processes") {
		throw new TypeError(describeExpected("executor", '"sequential", "threads" or "processes"', executor));
	}
	if (typeof options !== "object" || options === null) {
		throw new TypeError(describeExpected("options", "an object", options));
	}
	const { maxWorkers } = options as PoolOptions;
	return { executor, maxWorkers: maxWorkers === undefined ? availableParallelism() : parseCount("maxWorkers", maxWorkers) };
}
