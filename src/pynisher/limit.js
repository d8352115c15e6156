import { Scheduler } from "../scheduler.js";
import { describeExpected } from "../units.js";
import { PynisherPlugin } from "./plugin.js";
/**
 * Wraps a function reference so that each call runs under limits, without a scheduler: the
 * returned function resolves to the result, or rejects with the task's error or the limit's
 * `WallTimeLimitError`, `CpuTimeLimitError` or `MemoryLimitError`.
 *
 * @example
 * const train = limit({ module: new URL("./jobs.js", import.meta.url), name: "train" }, { wallTimeLimit: "5s" });
 * const model = await train(data);
 */
export function limit(ref, options = {}) {
    const { executor = "threads", ...limits } = options;
    if (executor !== "threads" && executor !== "processes") {
        throw new TypeError(describeExpected("executor", '"threads" or "processes"', executor));
    }
    const plugin = new PynisherPlugin(limits);
    // Checks the reference now, so that a bad one fails here and not at the first call.
    new Scheduler("sequential").task(ref);
    return async (...args) => {
        const scheduler = executor === "threads" ? Scheduler.withThreads({ maxWorkers: 1 }) : Scheduler.withProcesses({ maxWorkers: 1 });
        const task = scheduler.task(ref, { plugins: [plugin] });
        let future;
        scheduler.on(Scheduler.STARTED, () => {
            future = task.submit(...args);
        });
        await scheduler.run({ onException: "continue", onCancelled: "continue" });
        return (await future);
    };
}
