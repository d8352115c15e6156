// One contract, run against every executor, so that they cannot drift apart.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CancelledError, DataCloneError, type Plugin, Scheduler, TaskLoadError, WorkerCrashedError } from "../src/index.ts";
import { EXECUTORS, job, make, record, runAll } from "./helpers.ts";

for (const kind of EXECUTORS) {
	const where = kind === "sequential" ? "main" : kind === "threads" ? "thread" : "process";

	describe(`executor contract: ${kind}`, () => {
		it("returns results, keeps argument and result values, and reports usage", async () => {
			const scheduler = make(kind);
			const add = scheduler.task(job("add"));
			const identity = scheduler.task(job("default"));
			const value = { nested: [1, "two", { three: 3n }], when: new Date(0), map: new Map([["k", 1]]) };
			const { exit, futures } = await runAll(scheduler, () => [add.submit(2, 3), identity.submit(value)]);
			assert.equal(exit.code, "exhausted");
			assert.equal(await futures[0], 5);
			assert.deepEqual(await futures[1], value);
			for (const future of futures) {
				assert.equal(future.usage?.where, where);
				assert.ok((future.usage?.wallMs ?? -1) >= 0);
				assert.ok((future.usage?.peakMemoryBytes ?? 0) > 0);
			}
		});

		it("keeps an error's class name, message, stack, cause and own properties", async () => {
			const scheduler = make(kind);
			const task = scheduler.task(job("fail"));
			const { futures } = await runAll(scheduler, () => [task.submit("broken")]);
			const error = futures[0]?.exception as Error & { code?: string; detail?: unknown; cause?: Error };
			assert.ok(error instanceof Error);
			assert.equal(error.constructor.name === "CustomError" ? "CustomError" : error.name, "CustomError");
			assert.equal(error.message, "broken");
			assert.match(error.stack ?? "", /jobs\.ts/);
			assert.equal(error.code, "E_CUSTOM");
			assert.deepEqual(error.detail, { answer: 42 });
			assert.ok(error.cause instanceof TypeError);
			assert.equal(error.cause.message, "inner cause");
			await assert.rejects(Promise.resolve(futures[0]), { message: "broken" });
		});

		it("reports non-Error throws and async rejections as exceptions", async () => {
			const scheduler = make(kind);
			const throwValue = scheduler.task(job("throwValue"));
			const failLater = scheduler.task(job("failLater"));
			const { futures } = await runAll(scheduler, () => [throwValue.submit(42), throwValue.submit(null), failLater.submit("later")]);
			assert.deepEqual(
				futures.map((future) => future.state),
				["exception", "exception", "exception"],
			);
			if (kind !== "sequential") {
				assert.match((futures[0]?.exception as Error).message, /non-Error value: 42/);
				assert.equal((futures[0]?.exception as { value?: unknown }).value, 42);
				assert.match((futures[1]?.exception as Error).message, /null/);
			} else {
				assert.equal(futures[0]?.exception, 42);
			}
			assert.ok(futures[2]?.exception instanceof RangeError);
		});

		it("fails a call whose module or export is missing with an error naming both", async () => {
			const scheduler = make(kind);
			const missingModule = scheduler.task({ module: new URL("./fixtures/nope.ts", import.meta.url), name: "x" });
			const missingExport = scheduler.task(job("doesNotExist"));
			const notFunction = scheduler.task(job("aNumber"));
			const fine = scheduler.task(job("add"));
			const { futures } = await runAll(scheduler, () => [missingModule.submit(), missingExport.submit(), notFunction.submit(), fine.submit(1, 1)]);
			const [module, exported, number] = futures.map((future) => future.exception as TaskLoadError);
			for (const error of [module, exported, number]) {
				assert.ok(error instanceof TaskLoadError, `${error}`);
				assert.equal(error.code, "ERR_TASK_LOAD");
			}
			assert.match(module!.message, /nope\.ts/);
			assert.match(exported!.message, /doesNotExist/);
			assert.match(number!.message, /exports a number as "aNumber"/);
			assert.equal(await futures[3], 2);
		});

		it("fails a call whose result cannot be copied, and goes on (the main thread copies nothing)", async () => {
			const scheduler = make(kind);
			const fn = scheduler.task(job("returnFunction"));
			const symbol = scheduler.task(job("returnSymbol"));
			const nested = scheduler.task(job("returnNested"));
			const add = scheduler.task(job("add"));
			const { futures } = await runAll(scheduler, () => [fn.submit(), symbol.submit(), nested.submit(), add.submit(1, 2)]);
			for (const future of futures.slice(0, 3)) {
				if (kind === "sequential") {
					assert.equal(future.state, "result");
				} else {
					assert.ok(future.exception instanceof DataCloneError, `${future.exception}`);
				}
			}
			assert.equal(await futures[3], 3);
		});

		it("fails a call whose arguments cannot be copied, and goes on", async () => {
			if (kind === "sequential") {
				return;
			}
			const scheduler = make(kind);
			const identity = scheduler.task(job("default"));
			const { futures } = await runAll(scheduler, () => [identity.submit(() => 1), identity.submit("fine")]);
			assert.ok(futures[0]?.exception instanceof DataCloneError, `${futures[0]?.exception}`);
			assert.equal(await futures[1], "fine");
		});

		it("cancels queued calls without running them and every future ends exactly once", async () => {
			const scheduler = make(kind, 1);
			const task = scheduler.task(job("sleep"));
			const log = record(task);
			let done = 0;
			scheduler.on(Scheduler.FUTURE_DONE, () => done++);
			const { futures } = await runAll(scheduler, () => {
				const all = [task.submit(100, "a"), task.submit(100, "b"), task.submit(100, "c")];
				all[1]?.cancel();
				return all;
			});
			assert.deepEqual(
				futures.map((future) => future.state),
				["result", "cancelled", "result"],
			);
			assert.equal(done, 3);
			assert.equal(log.filter((entry) => entry === "done").length, 3);
			assert.ok(futures[1]?.exception instanceof CancelledError);
		});

		it("ends a call that exits its worker with a clear error, and the next call runs", async () => {
			if (kind === "sequential") {
				return;
			}
			const scheduler = make(kind, 1);
			const exit = scheduler.task(job("exit"));
			const add = scheduler.task(job("add"));
			const { futures } = await runAll(scheduler, () => [exit.submit(3), add.submit(4, 5)]);
			const error = futures[0]?.exception as WorkerCrashedError;
			assert.ok(error instanceof WorkerCrashedError, `${error}`);
			assert.equal(error.code, "ERR_WORKER_CRASHED");
			if (kind === "processes") {
				assert.equal(error.exitCode, 3);
			}
			assert.equal(await futures[1], 9);
		});

		it("cancel() of a running call ends it as cancelled with its usage, and the next call runs", async () => {
			const scheduler = make(kind, 1);
			const sleep = scheduler.task(job("sleep"));
			const add = scheduler.task(job("add"));
			const started = performance.now();
			let cancelledAt = 0;
			const { futures } = await runAll(scheduler, () => {
				// A first call has the worker started and its modules loaded: the long call then starts
				// at once, and is cancelled about 1 s into its run.
				const warm = add.submit(1, 0);
				const long = sleep.submit(20_000);
				warm?.then(() =>
					scheduler.callLater("1s", () => {
						cancelledAt = performance.now();
						long?.cancel();
					}),
				);
				return [warm, long, add.submit(1, 1)];
			});
			const elapsed = performance.now() - started;
			assert.equal(await futures[0], 1);
			assert.equal(futures[1]?.cancelled, true);
			assert.equal(await futures[2], 2);
			assert.ok(elapsed < 15_000, "the long call did not run to its end");
			const wall = futures[1]?.usage?.wallMs ?? 0;
			assert.ok(wall >= 500 && wall < elapsed, `reported ${wall} ms of wall time; cancelled ${cancelledAt - started} ms after the start`);
			assert.equal(futures[1]?.usage?.where, where);
			// What it used up to the cancel was read before its thread or process was ended.
			const cpu = futures[1]?.usage?.cpuMs ?? -1;
			assert.ok(cpu >= 0 && cpu <= wall + 1, `reported ${cpu} ms of CPU time in ${wall} ms`);
		});

		it("runs at most maxWorkers calls at once", async () => {
			const scheduler = make(kind, 2);
			let running = 0;
			let peak = 0;
			const gauge: Plugin = {
				name: "gauge",
				started: () => {
					running++;
					peak = Math.max(peak, running);
				},
				settled: () => {
					running--;
				},
			};
			const task = scheduler.task(job("sleep"), { plugins: [gauge] });
			const { futures } = await runAll(scheduler, () => Array.from({ length: 6 }, () => task.submit(60)));
			assert.deepEqual(new Set(futures.map((future) => future.state)), new Set(["result"]));
			assert.equal(peak, kind === "sequential" ? 1 : 2);
			assert.equal(running, 0);
		});
	});
}
