import { availableParallelism } from "node:os";
import { CancelledError } from "../errors.ts";
import { Dispatcher } from "../executors/dispatcher.ts";
import type { Call } from "../executors/executor.ts";
import { Future, type Outcome } from "../future.ts";
import { parseLimits, type PynisherOptions } from "../limits/options.ts";
import { type Isolation, parseIsolate } from "../pool-options.ts";
import { describeRef, type FunctionRef, resolveRef } from "../ref.ts";
import { describeExpected, parseCount } from "../units.ts";

/** Options of `limit()`: the plugin's limits, and where the calls run. */
export interface LimitOptions extends PynisherOptions {
	/** Where the calls run: worker threads, or forked processes. @default "threads" */
	readonly executor?: "threads" | "processes";
	/** How many calls of the wrapped function run at once; more wait their turn. @default os.availableParallelism() */
	readonly maxWorkers?: number;
	/** Whether each call runs on a fresh thread or process (`"call"`), or reuses one (see `PoolOptions.isolate`). @default "none" */
	readonly isolate?: Isolation;
}

/** A function wrapped by `limit()`: each call runs under the limits, on the wrapper's own warm threads or processes. */
export interface LimitedFunction<Args extends unknown[], R> {
	(...args: Args): Promise<R>;
	/** Ends the wrapper's threads or processes; calls still running are cancelled. A later call starts them again. */
	close(): Promise<void>;
	[Symbol.asyncDispose](): Promise<void>;
}

/**
 * Wraps a function reference so that each call runs under limits, without a scheduler: the
 * returned function resolves to the result, or rejects with the task's error or the limit's
 * `WallTimeLimitError`, `CpuTimeLimitError` or `MemoryLimitError`.
 *
 * The wrapper starts its threads (or processes) at its first call and keeps them warm for the
 * next ones until `close()` (or the end of an `await using` block). Idle threads end by
 * themselves after 60 s and start again when needed; idle threads and processes never keep the
 * program from exiting.
 *
 * @example
 * await using train = limit({ module: new URL("./jobs.js", import.meta.url), name: "train" }, { wallTimeLimit: "5s" });
 * const model = await train(data);
 */
export function limit<Args extends unknown[] = unknown[], R = unknown>(ref: FunctionRef, options: LimitOptions = {}): LimitedFunction<Args, R> {
	if (typeof options !== "object" || options === null) {
		throw new TypeError(describeExpected("options", "an object", options));
	}
	const { executor = "threads", maxWorkers, isolate, ...limitOptions } = options;
	if (executor !== "threads" && executor !== "processes") {
		throw new TypeError(describeExpected("executor", '"threads" or "processes"', executor));
	}
	const workers = maxWorkers === undefined ? availableParallelism() : parseCount("maxWorkers", maxWorkers);
	const isolation = parseIsolate(isolate);
	const limits = parseLimits(limitOptions);
	// Checked now, so that a bad reference fails here and not at the first call.
	const resolved = resolveRef(ref);
	const taskName = describeRef(resolved);
	let dispatcher: Dispatcher<(outcome: Outcome) => void> | undefined;
	let nextId = 1;

	const limited = (...args: Args): Promise<R> =>
		new Promise<R>((resolve, reject) => {
			if (dispatcher === undefined) {
				dispatcher = new Dispatcher(
					executor,
					workers,
					{
						started: () => {},
						settled: (settle, _call, outcome) => settle(outcome),
					},
					0,
					isolation,
				);
				dispatcher.open();
			}
			const call: Call = { id: nextId++, ref: resolved, args, limits, taskName, future: new Future(taskName, args) };
			dispatcher.submit(call, (outcome) => (outcome.kind === "result" ? resolve(outcome.value as R) : reject(outcome.error)));
		});
	const close = async (): Promise<void> => {
		const open = dispatcher;
		dispatcher = undefined;
		if (open !== undefined) {
			open.cancelAll(() => new CancelledError("The limited function was closed"));
			await open.close();
		}
	};
	return Object.assign(limited, { close, [Symbol.asyncDispose]: close });
}
