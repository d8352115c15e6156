import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CancelledError, type ExitState, Future, Scheduler, SchedulerStateError, Task } from "../src/index.ts";
import { job, record, runAll } from "./helpers.ts";

function counter(scheduler: Scheduler): Record<string, number> {
	const counts: Record<string, number> = {};
	const events = {
		STARTED: Scheduler.STARTED,
		FINISHING: Scheduler.FINISHING,
		FINISHED: Scheduler.FINISHED,
		STOP: Scheduler.STOP,
		TIMEOUT: Scheduler.TIMEOUT,
		EMPTY: Scheduler.EMPTY,
		FUTURE_SUBMITTED: Scheduler.FUTURE_SUBMITTED,
		FUTURE_DONE: Scheduler.FUTURE_DONE,
		FUTURE_CANCELLED: Scheduler.FUTURE_CANCELLED,
		FUTURE_RESULT: Scheduler.FUTURE_RESULT,
		FUTURE_EXCEPTION: Scheduler.FUTURE_EXCEPTION,
	};
	for (const [name, event] of Object.entries(events)) {
		counts[name] = 0;
		scheduler.on(event as typeof Scheduler.EMPTY, () => {
			counts[name] = (counts[name] ?? 0) + 1;
		});
	}
	return counts;
}

describe("Scheduler run loop", () => {
	it("emits STARTED first and FINISHING, FINISHED last, and ends exhausted when the queue empties", async () => {
		const scheduler = Scheduler.withThreads({ maxWorkers: 2 });
		const order: string[] = [];
		scheduler.on(Scheduler.STARTED, () => order.push("started"));
		scheduler.on(Scheduler.FUTURE_RESULT, () => order.push("result"));
		scheduler.on(Scheduler.EMPTY, () => order.push("empty"));
		scheduler.on(Scheduler.FINISHING, () => order.push("finishing"));
		scheduler.on(Scheduler.FINISHED, (exit) => order.push(`finished:${exit.code}`));
		const task = scheduler.task(job("add"));
		const results: unknown[] = [];
		task.on(Task.RESULT, (_future, result) => results.push(result));
		const { exit } = await runAll(scheduler, () => [task.submit(1, 2), task.submit(3, 4)]);
		assert.deepEqual(exit, { code: "exhausted" });
		assert.deepEqual(results.sort(), [3, 7]);
		assert.deepEqual(order, ["started", "result", "result", "empty", "finishing", "finished:exhausted"]);
		assert.equal(scheduler.running, false);
	});

	it("ends exhausted at once when STARTED submits nothing", async () => {
		const scheduler = Scheduler.withSequential();
		const counts = counter(scheduler);
		const exit = await scheduler.run();
		assert.equal(exit.code, "exhausted");
		assert.equal(counts["EMPTY"], 1);
		assert.equal(counts["FINISHED"], 1);
	});

	it("with a timeout and wait, lets the running call finish and reports its result", async () => {
		const scheduler = Scheduler.withThreads({ maxWorkers: 1 });
		const counts = counter(scheduler);
		const task = scheduler.task(job("sleep"));
		const { exit, futures } = await runAll(scheduler, () => [task.submit(1500, "slept")], { timeout: [0.3, "s"], wait: true });
		assert.equal(exit.code, "timeout");
		assert.equal(futures[0]?.result, "slept");
		assert.equal(counts["TIMEOUT"], 1);
		assert.equal(counts["FUTURE_RESULT"], 1);
		assert.equal(counts["FUTURE_CANCELLED"], 0);
	});

	it("with a timeout and no wait, cancels what is still running", async () => {
		const scheduler = Scheduler.withThreads({ maxWorkers: 1 });
		const counts = counter(scheduler);
		const task = scheduler.task(job("sleep"));
		const log = record(task);
		const started = performance.now();
		const { exit, futures } = await runAll(scheduler, () => [task.submit(10_000), task.submit(10_000)], { timeout: "300ms", wait: false });
		assert.ok(performance.now() - started < 8000, "did not wait for the sleeping calls");
		assert.equal(exit.code, "timeout");
		assert.equal(counts["FUTURE_CANCELLED"], 2);
		assert.equal(counts["TIMEOUT"], 1);
		assert.deepEqual(log, ["submitted", "submitted", "done", "cancelled", "done", "cancelled"]);
		assert.equal(log.filter((entry) => entry === "cancelled").length, 2);
		for (const future of futures) {
			assert.equal(future.cancelled, true);
			await assert.rejects(Promise.resolve(future), CancelledError);
		}
	});

	it("counts EMPTY each time the queue drains when endOnEmpty is false", async () => {
		const scheduler = Scheduler.withThreads({ maxWorkers: 2 });
		const counts = counter(scheduler);
		const task = scheduler.task(job("add"));
		let rounds = 0;
		scheduler.on(Scheduler.STARTED, () => task.submit(1, 1));
		scheduler.on(Scheduler.EMPTY, () => {
			rounds++;
			if (rounds < 3) {
				task.submit(rounds, 1);
			} else {
				scheduler.stop("three rounds");
			}
		});
		const exit = await scheduler.run({ endOnEmpty: false, timeout: "20s" });
		assert.equal(exit.code, "stopped");
		assert.equal(counts["EMPTY"], 3);
		assert.equal(counts["FUTURE_RESULT"], 3);
		assert.equal(counts["STOP"], 1);
	});

	it("ends with a timeout while idle when endOnEmpty is false", async () => {
		const scheduler = Scheduler.withSequential();
		const counts = counter(scheduler);
		const exit = await scheduler.run({ endOnEmpty: false, timeout: "200ms" });
		assert.equal(exit.code, "timeout");
		assert.equal(counts["EMPTY"], 1);
		assert.equal(counts["TIMEOUT"], 1);
	});

	it("chains calls: a result handler submits the next", async () => {
		const scheduler = Scheduler.withThreads({ maxWorkers: 1 });
		const task = scheduler.task(job("add"));
		const seen: unknown[] = [];
		task.on(Task.RESULT, (_future, result) => {
			seen.push(result);
			if ((result as number) < 5) {
				task.submit(result as number, 1);
			}
		});
		const { exit } = await runAll(scheduler, () => [task.submit(0, 1)]);
		assert.equal(exit.code, "exhausted");
		assert.deepEqual(seen, [1, 2, 3, 4, 5]);
	});

	it("stop() ends the run with STOP and code stopped", async () => {
		const scheduler = Scheduler.withThreads({ maxWorkers: 1 });
		const counts = counter(scheduler);
		const task = scheduler.task(job("sleep"));
		let reason = "";
		scheduler.on(Scheduler.STOP, (why) => {
			reason = why;
		});
		scheduler.on(Scheduler.STARTED, () => {
			task.submit(60_000);
			scheduler.callLater("100ms", () => scheduler.stop("enough"));
		});
		const exit = await scheduler.run({ wait: false });
		assert.equal(exit.code, "stopped");
		assert.equal(reason, "enough");
		assert.equal(counts["STOP"], 1);
		assert.equal(counts["FUTURE_CANCELLED"], 1);
		scheduler.stop("not running: ignored");
		assert.equal(counts["STOP"], 1);
	});

	it("callLater runs a function after its delay, keeps an endOnEmpty run going, and can be cancelled", async () => {
		const scheduler = Scheduler.withSequential();
		const task = scheduler.task(job("add"));
		const calls: string[] = [];
		let results = 0;
		task.on(Task.RESULT, () => results++);
		scheduler.on(Scheduler.STARTED, () => {
			scheduler.callLater([0.1, "s"], () => {
				calls.push("later");
				task.submit(1, 1);
			});
			const cancel = scheduler.callLater("50ms", () => calls.push("cancelled one"));
			cancel();
		});
		const exit = await scheduler.run();
		assert.equal(exit.code, "exhausted");
		assert.deepEqual(calls, ["later"]);
		assert.equal(results, 1);
		assert.throws(() => scheduler.callLater("1s", () => {}), SchedulerStateError);
		assert.throws(() => scheduler.callLater(-1, () => {}), RangeError);
	});

	it("can run again after a run ends", async () => {
		const scheduler = Scheduler.withThreads({ maxWorkers: 2 });
		const task = scheduler.task(job("add"));
		for (const round of [1, 2, 3]) {
			const { exit, futures } = await runAll(scheduler, () => [task.submit(round, round)]);
			assert.equal(exit.code, "exhausted");
			assert.equal(await futures[0], round * 2);
		}
	});

	it("refuses submit() while not running and a second concurrent run()", async () => {
		const scheduler = Scheduler.withSequential();
		const task = scheduler.task(job("add"));
		assert.throws(() => task.submit(1, 2), (error: Error) => error instanceof SchedulerStateError && /not running/.test(error.message));
		let second: Promise<ExitState> | undefined;
		scheduler.on(Scheduler.STARTED, () => {
			second = scheduler.run();
		});
		await scheduler.run();
		await assert.rejects(second as Promise<ExitState>, SchedulerStateError);
	});

	it("returns undefined from submit() while the run is finishing", async () => {
		const scheduler = Scheduler.withThreads({ maxWorkers: 1 });
		const task = scheduler.task(job("sleep"));
		let late: unknown = "not called";
		scheduler.on(Scheduler.FINISHING, () => {
			late = task.submit(1);
		});
		await runAll(scheduler, () => [task.submit(10)]);
		assert.equal(late, undefined);
	});

	it("validates run options at the edge", async () => {
		const scheduler = Scheduler.withSequential();
		await assert.rejects(scheduler.run({ timeout: 0 }), (error: Error) => error instanceof RangeError && /`timeout`/.test(error.message));
		await assert.rejects(scheduler.run({ timeout: [1, "fortnight" as "s"] }), /`timeout`/);
		await assert.rejects(scheduler.run({ endOnEmpty: "yes" as unknown as boolean }), (error: Error) => error instanceof TypeError && /`endOnEmpty`/.test(error.message));
		await assert.rejects(scheduler.run({ wait: 1 as unknown as boolean }), /`wait`/);
		await assert.rejects(scheduler.run({ onException: "ignore" as "raise" }), /`onException`/);
		await assert.rejects(scheduler.run({ onException: [[Error, "explode" as "raise"]] }), /`onException\[0\]\[1\]`/);
		await assert.rejects(scheduler.run({ onException: [["Error" as unknown as typeof Error, "end"]] }), /`onException\[0\]`/);
		await assert.rejects(scheduler.run({ onCancelled: "maybe" as "raise" }), /`onCancelled`/);
		await assert.rejects(scheduler.run(null as unknown as object), /`options`/);
		assert.equal(scheduler.running, false);
	});

	it("validates constructor options", () => {
		assert.throws(() => Scheduler.withThreads({ maxWorkers: 0 }), (error: Error) => error instanceof RangeError && /`maxWorkers`/.test(error.message));
		assert.throws(() => Scheduler.withProcesses({ maxWorkers: 1.5 }), RangeError);
		assert.throws(() => Scheduler.withThreads({ maxWorkers: "2" as unknown as number }), TypeError);
		assert.throws(() => new Scheduler("gpu" as "threads"), /`executor`/);
		assert.throws(() => Scheduler.withThreads(null as unknown as object), /`options`/);
		assert.ok(Scheduler.withThreads().maxWorkers >= 1);
		assert.equal(Scheduler.withSequential().maxWorkers, 1);
		assert.equal(Scheduler.withProcesses({ maxWorkers: 3 }).executor, "processes");
	});
});

describe("exception policies", () => {
	it("raise: run() rejects with the task's error after shutting down", async () => {
		const scheduler = Scheduler.withThreads({ maxWorkers: 2 });
		const counts = counter(scheduler);
		const task = scheduler.task(job("fail"));
		scheduler.on(Scheduler.STARTED, () => task.submit("boom"));
		await assert.rejects(scheduler.run(), (error: Error & { code?: string }) => {
			assert.equal(error.name, "CustomError");
			assert.equal(error.code, "E_CUSTOM");
			return true;
		});
		assert.equal(counts["FINISHED"], 1);
		assert.equal(counts["STOP"], 1);
		assert.equal(scheduler.running, false);
	});

	it("end: the run ends with code exception and the error", async () => {
		const scheduler = Scheduler.withThreads({ maxWorkers: 1 });
		const task = scheduler.task(job("fail"));
		const other = scheduler.task(job("sleep"));
		const { exit, futures } = await runAll(scheduler, () => [task.submit("boom"), other.submit(50), other.submit(50)], { onException: "end" });
		assert.equal(exit.code, "exception");
		assert.equal((exit.exception as Error).message, "boom");
		// wait: true lets the queued calls finish.
		assert.deepEqual(futures.map((future) => future.state), ["exception", "result", "result"]);
	});

	it("continue: exceptions are reported and the run goes on", async () => {
		const scheduler = Scheduler.withThreads({ maxWorkers: 2 });
		const counts = counter(scheduler);
		const task = scheduler.task(job("fail"));
		const { exit } = await runAll(scheduler, () => [task.submit("a"), task.submit("b"), task.submit("c")], { onException: "continue" });
		assert.equal(exit.code, "exhausted");
		assert.equal(counts["FUTURE_EXCEPTION"], 3);
	});

	it("a list of [ErrorClass, action] pairs picks by class, first match wins, no match raises", async () => {
		const scheduler = Scheduler.withSequential();
		const failLater = scheduler.task(job("failLater"));
		const throwValue = scheduler.task(job("throwValue"));
		const { exit } = await runAll(scheduler, () => [failLater.submit("range"), failLater.submit("range again")], {
			onException: [
				[RangeError, "continue"],
				[Error, "end"],
			],
		});
		assert.equal(exit.code, "exhausted");
		const second = await runAll(scheduler, () => [throwValue.submit(new TypeError("typed"))], {
			onException: [
				[RangeError, "continue"],
				[TypeError, "end"],
			],
		});
		assert.equal(second.exit.code, "exception");
		await assert.rejects(runAll(scheduler, () => [throwValue.submit(new SyntaxError("nobody maps me"))], { onException: [[RangeError, "continue"]] }), SyntaxError);
	});

	it("an error thrown by an event handler follows the policy and does not stop other handlers", async () => {
		const scheduler = Scheduler.withSequential();
		const task = scheduler.task(job("add"));
		let second = 0;
		task.on(Task.RESULT, () => {
			throw new Error("handler broke");
		});
		task.on(Task.RESULT, () => second++);
		await assert.rejects(runAll(scheduler, () => [task.submit(1, 2)], {}), { message: "handler broke" });
		assert.equal(second, 1);
		const asyncTask = scheduler.task(job("add"));
		asyncTask.on(Task.RESULT, async () => {
			throw new Error("async handler broke");
		});
		const { exit } = await runAll(scheduler, () => [asyncTask.submit(1, 2)], { onException: "end" });
		assert.equal(exit.code, "exception");
		assert.equal((exit.exception as Error).message, "async handler broke");
	});

	it("onCancelled raise, end and continue", async () => {
		for (const [action, expected] of [
			["end", "cancelled"],
			["continue", "exhausted"],
		] as const) {
			const scheduler = Scheduler.withThreads({ maxWorkers: 1 });
			const task = scheduler.task(job("sleep"));
			const { exit } = await runAll(
				scheduler,
				() => {
					const future = task.submit(5000);
					scheduler.callLater("50ms", () => future?.cancel());
					return [future];
				},
				{ onCancelled: action },
			);
			assert.equal(exit.code, expected, action);
		}
		const scheduler = Scheduler.withThreads({ maxWorkers: 1 });
		const task = scheduler.task(job("sleep"));
		scheduler.on(Scheduler.STARTED, () => task.submit(5000)?.cancel("no longer needed"));
		await assert.rejects(scheduler.run(), (error: Error) => error instanceof CancelledError && error.message === "no longer needed");
	});
});

describe("futures", () => {
	it("are awaitable, carry their usage, and cancel() from the queue without running", async () => {
		const scheduler = Scheduler.withThreads({ maxWorkers: 1 });
		const task = scheduler.task(job("sleep"));
		const { futures } = await runAll(scheduler, () => {
			const first = task.submit(100, "first");
			const second = task.submit(100, "second");
			assert.equal(second?.state, "queued");
			assert.equal(second?.cancel(), true);
			assert.equal(second?.cancel(), false);
			return [first, second];
		});
		const [first, second] = futures as [Future, Future];
		assert.equal(await first, "first");
		assert.equal(first.done, true);
		assert.equal(first.cancelled, false);
		assert.equal(first.usage?.where, "thread");
		assert.ok((first.usage?.wallMs ?? 0) >= 90, `wall ${first.usage?.wallMs}`);
		assert.ok((first.usage?.cpuMs ?? -1) >= 0);
		assert.ok((first.usage?.peakMemoryBytes ?? 0) > 0);
		assert.equal(second.cancelled, true);
		assert.equal(second.usage, undefined);
		await assert.rejects(Promise.resolve(second), CancelledError);
		assert.equal(await first.then((value) => `${value}!`), "first!");
		assert.equal(await second.catch(() => "caught"), "caught");
		let finallyRan = false;
		await first.finally(() => {
			finallyRan = true;
		});
		assert.ok(finallyRan);
	});

	it("a running call on threads is stopped by cancel() and the thread replaced", async () => {
		const scheduler = Scheduler.withThreads({ maxWorkers: 1 });
		const spin = scheduler.task(job("spinForever"));
		const add = scheduler.task(job("add"));
		const { futures } = await runAll(scheduler, () => {
			const future = spin.submit();
			scheduler.callLater("200ms", () => future?.cancel());
			return [future, add.submit(20, 22)];
		});
		assert.equal(futures[0]?.cancelled, true);
		assert.equal(await futures[1], 42);
	});
});

describe("tasks", () => {
	it("emit SUBMITTED with the arguments, then DONE and RESULT, and on() returns an unsubscribe function", async () => {
		const scheduler = Scheduler.withSequential();
		const task = new Task(job("add"), scheduler, { name: "adder" });
		assert.equal(task.name, "adder");
		const submitted: unknown[][] = [];
		task.on(Task.SUBMITTED, (_future, ...args) => submitted.push(args));
		let results = 0;
		const off = task.on(task.RESULT, () => results++);
		const log = record(task);
		await runAll(scheduler, () => [task.submit(1, 2)]);
		off();
		await runAll(scheduler, () => [task.submit(3, 4)]);
		assert.deepEqual(submitted, [
			[1, 2],
			[3, 4],
		]);
		assert.equal(results, 1);
		assert.deepEqual(log, ["submitted", "done", "result", "submitted", "done", "result"]);
		assert.equal(scheduler.task(job("add")).name, "jobs.ts#add");
	});

	it("validate their reference, scheduler and options", () => {
		const scheduler = Scheduler.withSequential();
		assert.throws(() => new Task(null as unknown as { module: string }, scheduler), /`ref`/);
		assert.throws(() => new Task({ module: "" }, scheduler), /`ref.module`/);
		assert.throws(() => new Task({ module: "./x.js", name: "" }, scheduler), /`ref.name`/);
		assert.throws(() => new Task(job("add"), {} as Scheduler), /`scheduler`/);
		assert.throws(() => new Task(job("add"), scheduler, { plugins: "no" as unknown as [] }), /`plugins`/);
		assert.throws(() => new Task(job("add"), scheduler, { plugins: [{} as never] }), /`plugins\[0\]`/);
		assert.throws(() => new Task(job("add"), scheduler, { name: 5 as unknown as string }), /`name`/);
		assert.throws(() => new Task(job("add"), scheduler, null as unknown as object), /`options`/);
		assert.throws(() => scheduler.task(job("add")).on(Task.RESULT, "nope" as unknown as () => void), /handler/);
	});
});
