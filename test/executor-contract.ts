// The executor contract, written once against the `Executor` interface and run against every
// executor through a factory, so that they cannot drift apart.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CancelledError, DataCloneError, TaskLoadError, WorkerCrashedError } from "../src/errors.ts";
import { Cancellation, type Call, type Executor, type Settled } from "../src/executors/executor.ts";
import { Future, type Where } from "../src/future.ts";
import type { Watchers } from "../src/limits/monitor.ts";
import { OffHeapWatch } from "../src/limits/off-heap.ts";
import { Watchdog } from "../src/limits/watchdog.ts";
import { resolveRef } from "../src/ref.ts";
import { job } from "./helpers.ts";

/** Makes the executor under test; it is closed after each case. */
export type ExecutorFactory = (watchers: Watchers) => Executor;

/** What an executor cannot do, by case name, with the reason (also given in docs/executors.md). */
export type Skips = Readonly<Record<string, string>>;

let nextId = 1;

/** Runs one call of `name` with `args` on `executor`; `control` may cancel it once it has started. */
async function execute(executor: Executor, name: string, args: unknown[], control?: (cancellation: Cancellation) => void): Promise<{ settled: Settled; started: number }> {
	const ref = resolveRef(job(name));
	const call: Call = { id: nextId++, ref, args, limits: undefined, taskName: name, future: new Future(name, args) };
	const cancellation = new Cancellation();
	let started = 0;
	const settled = await executor.execute({
		call,
		cancellation,
		started: () => {
			started++;
			control?.(cancellation);
		},
	});
	return { settled, started };
}

function error(settled: Settled): Error & { code?: string; value?: unknown; exitCode?: number | null } {
	assert.equal(settled.kind, "exception", `expected an exception, got ${settled.kind}`);
	return (settled as { error: Error & { code?: string } }).error;
}

/** Defines the contract suite for one executor. */
export function executorContract(name: string, where: Where, factory: ExecutorFactory, skips: Skips = {}): void {
	describe(`executor contract: ${name}`, () => {
		const watchdog = new Watchdog();
		const watchers: Watchers = { watchdog, offHeap: new OffHeapWatch(watchdog) };
		const with_ = (title: string, body: (executor: Executor) => Promise<void>): void => {
			const skip = skips[title];
			it(title, skip === undefined ? {} : { skip }, async () => {
				const executor = factory(watchers);
				try {
					await body(executor);
				} finally {
					await executor.close();
				}
			});
		};

		with_("returns results, keeps argument and result values, and reports usage", async (executor) => {
			const value = { nested: [1, "two", { three: 3n }], when: new Date(0), map: new Map([["k", 1]]) };
			for (const [fn, args, expected] of [["add", [2, 3], 5], ["default", [value], value]] as const) {
				const { settled, started } = await execute(executor, fn, [...args]);
				assert.equal(started, 1, "its start is reported once");
				assert.equal(settled.kind, "result");
				assert.deepEqual((settled as { value: unknown }).value, expected);
				assert.equal(settled.usage?.where, where);
				assert.ok((settled.usage?.wallMs ?? -1) >= 0);
				assert.ok((settled.usage?.peakMemoryBytes ?? 0) > 0);
			}
		});

		with_("keeps an error's class name, message, stack, cause and own properties", async (executor) => {
			const failure = error((await execute(executor, "fail", ["broken"])).settled) as Error & { code?: string; detail?: unknown; cause?: Error };
			assert.ok(failure instanceof Error);
			// In the main thread the error is the task's own instance; elsewhere a copy named after its class.
			assert.equal(failure.constructor.name === "CustomError" ? "CustomError" : failure.name, "CustomError");
			assert.equal(failure.message, "broken");
			assert.match(failure.stack ?? "", /jobs\.ts/);
			assert.equal(failure.code, "E_CUSTOM");
			assert.deepEqual(failure.detail, { answer: 42 });
			assert.ok(failure.cause instanceof TypeError);
			assert.equal(failure.cause.message, "inner cause");
		});

		with_("reports non-Error throws as Errors holding the value, and async rejections as exceptions", async (executor) => {
			const number = error((await execute(executor, "throwValue", [42])).settled);
			assert.ok(number instanceof Error);
			assert.match(number.message, /non-Error value: 42/);
			assert.equal(number.value, 42);
			assert.match(error((await execute(executor, "throwValue", [null])).settled).message, /null/);
			assert.ok(error((await execute(executor, "failLater", ["later"])).settled) instanceof RangeError);
		});

		with_("fails a call whose module or export is missing with an error naming both", async (executor) => {
			const ref = resolveRef({ module: new URL("./fixtures/nope.ts", import.meta.url), name: "x" });
			const call: Call = { id: nextId++, ref, args: [], limits: undefined, taskName: "nope", future: new Future("nope", []) };
			const missingModule = error(await executor.execute({ call, cancellation: new Cancellation(), started: () => {} }));
			const missingExport = error((await execute(executor, "doesNotExist", [])).settled);
			const notFunction = error((await execute(executor, "aNumber", [])).settled);
			for (const failure of [missingModule, missingExport, notFunction]) {
				assert.ok(failure instanceof TaskLoadError, `${failure}`);
				assert.equal(failure.code, "ERR_TASK_LOAD");
			}
			assert.match(missingModule.message, /nope\.ts/);
			assert.match(missingExport.message, /doesNotExist/);
			assert.match(notFunction.message, /exports a number as "aNumber"/);
			assert.equal((await execute(executor, "add", [1, 1])).settled.kind, "result");
		});

		with_("fails a call whose result cannot be copied, and goes on", async (executor) => {
			for (const fn of ["returnFunction", "returnSymbol", "returnNested"]) {
				const failure = error((await execute(executor, fn, [])).settled);
				assert.ok(failure instanceof DataCloneError, `${fn}: ${failure}`);
			}
			assert.deepEqual((await execute(executor, "add", [1, 2])).settled.kind, "result");
		});

		with_("fails a call whose arguments cannot be copied, and goes on", async (executor) => {
			const failure = error((await execute(executor, "default", [() => 1])).settled);
			assert.ok(failure instanceof DataCloneError, `${failure}`);
			assert.equal((await execute(executor, "default", ["fine"])).settled.kind, "result");
		});

		with_("ends a call cancelled before it starts without running it", async (executor) => {
			const ref = resolveRef(job("add"));
			const call: Call = { id: nextId++, ref, args: [1, 1], limits: undefined, taskName: "add", future: new Future("add", []) };
			const cancellation = new Cancellation();
			cancellation.cancel(new CancelledError());
			let started = 0;
			const settled = await executor.execute({ call, cancellation, started: () => started++ });
			assert.equal(settled.kind, "cancelled");
			assert.equal(started, 0);
			assert.equal(settled.usage, undefined);
		});

		with_("ends a call that exits its worker with a clear error, and the next call runs", async (executor) => {
			const failure = error((await execute(executor, "exit", [3])).settled);
			assert.ok(failure instanceof WorkerCrashedError, `${failure}`);
			assert.equal(failure.code, "ERR_WORKER_CRASHED");
			assert.equal(failure.exitCode, 3);
			assert.equal((await execute(executor, "add", [4, 5])).settled.kind, "result");
		});

		with_("cancel() of a running call ends it as cancelled with its usage, and the next call runs", async (executor) => {
			// A first call has the worker started and its modules loaded: the long call then starts at once.
			await execute(executor, "add", [1, 0]);
			const begun = performance.now();
			const { settled } = await execute(executor, "sleep", [20_000], (cancellation) => {
				setTimeout(() => cancellation.cancel(new CancelledError()), 1000);
			});
			const elapsed = performance.now() - begun;
			assert.equal(settled.kind, "cancelled");
			assert.ok(elapsed < 15_000, "the long call did not run to its end");
			const wall = settled.usage?.wallMs ?? 0;
			assert.ok(wall >= 500 && wall <= elapsed + 1, `reported ${wall} ms of wall time in ${elapsed} ms`);
			assert.equal(settled.usage?.where, where);
			// What it used up to the cancel was read before its thread or process was ended.
			const cpu = settled.usage?.cpuMs ?? -1;
			assert.ok(cpu >= 0 && cpu <= wall + 1, `reported ${cpu} ms of CPU time in ${wall} ms`);
			assert.equal((await execute(executor, "add", [1, 1])).settled.kind, "result");
		});
	});
}
