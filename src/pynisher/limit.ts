import type { FunctionRef } from "../ref.ts";
import { Scheduler } from "../scheduler.ts";
import { describeExpected } from "../units.ts";
import { PynisherPlugin, type PynisherOptions } from "./plugin.ts";

/** Options of `limit()`: the plugin's limits, and where the call runs. */
export interface LimitOptions extends PynisherOptions {
	/** Where the call runs: a worker thread, or a forked process. @default "threads" */
	readonly executor?: "threads" | "processes";
}

/**
 * Wraps a function reference so that each call runs under limits, without a scheduler: the
 * returned function resolves to the result, or rejects with the task's error or the limit's
 * `WallTimeLimitError`, `CpuTimeLimitError` or `MemoryLimitError`.
 *
 * @example
 * const train = limit({ module: new URL("./jobs.js", import.meta.url), name: "train" }, { wallTimeLimit: "5s" });
 * const model = await train(data);
 */
export function limit<Args extends unknown[] = unknown[], R = unknown>(ref: FunctionRef, options: LimitOptions = {}): (...args: Args) => Promise<R> {
	const { executor = "threads", ...limits } = options;
	if (executor !== "threads" && executor !== "processes") {
		throw new TypeError(describeExpected("executor", '"threads" or "processes"', executor));
	}
	const plugin = new PynisherPlugin(limits);
	// Checks the reference now, so that a bad one fails here and not at the first call.
	new Scheduler("sequential").task(ref);
	return async (...args: Args): Promise<R> => {
		const scheduler = executor === "threads" ? Scheduler.withThreads({ maxWorkers: 1 }) : Scheduler.withProcesses({ maxWorkers: 1 });
		const task = scheduler.task<Args, R>(ref, { plugins: [plugin] });
		let future: PromiseLike<R> | undefined;
		scheduler.on(Scheduler.STARTED, () => {
			future = task.submit(...args);
		});
		await scheduler.run({ onException: "continue", onCancelled: "continue" });
		return (await future) as R;
	};
}
