// Every executor passes the one executor contract; the dispatcher keeps the same promises over each.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CancelledError, type Plugin, Scheduler } from "../src/index.ts";
import { ProcessExecutor } from "../src/executors/processes/executor.ts";
import { SequentialExecutor } from "../src/executors/sequential.ts";
import { ThreadExecutor } from "../src/executors/threads/executor.ts";
import { executorContract } from "./executor-contract.ts";
import { EXECUTORS, job, make, record, runAll } from "./helpers.ts";

executorContract("sequential", "main", (watchers) => new SequentialExecutor(watchers), {
	"ends a call that exits its worker with a clear error, and the next call runs":
		"the main thread is the worker: process.exit() in a call ends the program (docs/executors.md)",
});
executorContract("threads", "thread", (watchers) => new ThreadExecutor(2, watchers));
executorContract("processes", "process", (watchers) => new ProcessExecutor(2, watchers));

for (const kind of EXECUTORS) {
	describe(`dispatch over ${kind}`, () => {
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
			// The main thread runs one call at a time, whatever maxWorkers says.
			assert.equal(peak, kind === "sequential" ? 1 : 2);
			assert.equal(running, 0);
		});

		it("a call's own signal cancels it, queued or running, like future.cancel()", async () => {
			const scheduler = make(kind, 1);
			const sleep = scheduler.task(job("sleep"));
			const controller = new AbortController();
			const aborted = AbortSignal.abort("no longer needed");
			const started = performance.now();
			const { futures } = await runAll(scheduler, () => {
				const running = sleep.submitWith({ signal: controller.signal }, 20_000);
				const never = sleep.submitWith({ signal: aborted }, 20_000);
				setTimeout(() => controller.abort(new Error("user gave up")), 500);
				return [running, never, sleep.submit(10, "after")];
			});
			assert.ok(performance.now() - started < 15_000, "the running call did not sleep to its end");
			assert.deepEqual(
				futures.map((future) => future.state),
				["cancelled", "cancelled", "result"],
			);
			const cause = (futures[0]?.exception as CancelledError).cause as Error;
			assert.ok(futures[0]?.exception instanceof CancelledError);
			assert.equal(cause.message, "user gave up");
			assert.equal((futures[1]?.exception as CancelledError).cause, "no longer needed");
			assert.equal(futures[1]?.usage, undefined, "an already aborted signal cancels the call before it runs");
		});
	});
}

describe("submitWith", () => {
	it("refuses options that are not an object or a signal that is not an AbortSignal, naming the option", async () => {
		const scheduler = make("threads", 1);
		const add = scheduler.task(job("add"));
		await runAll(scheduler, () => {
			assert.throws(() => add.submitWith(null as never, 1, 2), { name: "TypeError", message: /`options`/ });
			assert.throws(() => add.submitWith({ signal: "soon" as never }, 1, 2), { name: "TypeError", message: /`signal`/ });
			return [add.submitWith({}, 1, 2)];
		});
	});
});
