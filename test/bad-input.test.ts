// Bad input: every public option with wrong types, ranges and units; references to missing
// files, non-functions and modules that do not parse; submit after the run; handlers that throw;
// one plugin on two schedulers. Errors name the option and the value, and nothing is half-done.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Limiter, Scheduler, SchedulerStateError, Task, TaskLoadError } from "../src/index.ts";
import { limit, PynisherPlugin, WallTimeLimitError } from "../src/pynisher/index.ts";
import { EXECUTORS, job, make, runAll, threadCounts } from "./helpers.ts";

type Thrower = () => unknown;
type Expectation = readonly [string, Thrower, typeof TypeError | typeof RangeError, RegExp];

/** Checks that each call throws the class given, with a message naming the option and the value. */
function expectAll(cases: readonly Expectation[]): void {
	for (const [what, fn, ErrorClass, message] of cases) {
		assert.throws(fn, (error: unknown) => {
			assert.ok(error instanceof ErrorClass, `${what}: expected ${ErrorClass.name}, got ${String(error)}`);
			assert.match((error as Error).message, message, what);
			return true;
		});
	}
}

const bad = <T,>(value: unknown): T => value as T;

describe("bad input: options are checked where they are given", () => {
	it("Scheduler constructors name maxWorkers, options and executor", () => {
		expectAll([
			["maxWorkers as a string", () => Scheduler.withThreads({ maxWorkers: bad("2") }), TypeError, /`maxWorkers`.*`"2"` \(string\)/],
			["maxWorkers 0", () => Scheduler.withProcesses({ maxWorkers: 0 }), RangeError, /`maxWorkers`.*`0`/],
			["maxWorkers 1.5", () => Scheduler.withThreads({ maxWorkers: 1.5 }), RangeError, /`maxWorkers`.*`1\.5`/],
			["maxWorkers NaN", () => Scheduler.withThreads({ maxWorkers: Number.NaN }), RangeError, /`maxWorkers`.*NaN/],
			["minWorkers as a string", () => Scheduler.withThreads({ minWorkers: bad("1") }), TypeError, /`minWorkers`.*`"1"` \(string\)/],
			["minWorkers above maxWorkers", () => Scheduler.withThreads({ maxWorkers: 2, minWorkers: 3 }), RangeError, /`minWorkers`.*maxWorkers \(2\).*`3`/],
			["minWorkers -1", () => Scheduler.withProcesses({ minWorkers: -1 }), RangeError, /`minWorkers`.*`-1`/],
			["maxWorkers -1", () => Scheduler.withProcesses({ maxWorkers: -1 }), RangeError, /`maxWorkers`.*`-1`/],
			["options null", () => Scheduler.withThreads(bad(null)), TypeError, /`options`.*null/],
			["an unknown executor", () => new Scheduler(bad("gpu")), TypeError, /`executor`.*"gpu"/],
		]);
	});

	it("run() rejects a bad option before it starts anything, and the scheduler stays idle and runnable", async () => {
		const scheduler = Scheduler.withThreads({ maxWorkers: 1 });
		const add = scheduler.task(job("add"));
		let started = 0;
		scheduler.on(Scheduler.STARTED, () => started++);
		const cases: [string, unknown, typeof TypeError | typeof RangeError, RegExp][] = [
			["timeout -1", { timeout: -1 }, RangeError, /`timeout`.*`-1`/],
			["timeout 0", { timeout: 0 }, RangeError, /`timeout`/],
			["timeout in gigabytes", { timeout: [1, "gb"] }, RangeError, /`timeout`.*unknown time unit "gb"/],
			["timeout as an object", { timeout: {} }, TypeError, /`timeout`/],
			["timeout NaN", { timeout: Number.NaN }, RangeError, /`timeout`/],
			["endOnEmpty as a string", { endOnEmpty: "yes" }, TypeError, /`endOnEmpty`.*"yes"/],
			["wait as a number", { wait: 1 }, TypeError, /`wait`.*`1`/],
			["an unknown onException", { onException: "ignore" }, TypeError, /`onException`.*"ignore"/],
			["an onException pair without an action", { onException: [[Error]] }, TypeError, /`onException\[0\]`/],
			["an onException pair with a bad action", { onException: [[Error, "shrug"]] }, TypeError, /`onException\[0\]\[1\]`.*"shrug"/],
			["an onException pair whose class is not one", { onException: [["Error", "end"]] }, TypeError, /`onException\[0\]`/],
			["an unknown onCancelled", { onCancelled: "later" }, TypeError, /`onCancelled`.*"later"/],
			["options null", null, TypeError, /`options`/],
		];
		for (const [what, options, ErrorClass, message] of cases) {
			await assert.rejects(scheduler.run(bad(options)), (error: unknown) => {
				assert.ok(error instanceof ErrorClass, `${what}: ${String(error)}`);
				assert.match((error as Error).message, message, what);
				return true;
			});
			assert.equal(scheduler.running, false, `${what}: the scheduler is idle`);
		}
		assert.equal(started, 0, "no run started");
		assert.equal(threadCounts(scheduler), undefined, "no pool was started");
		const { exit, futures } = await runAll(scheduler, () => [add.submit(1, 2)]);
		assert.equal(exit.code, "exhausted");
		assert.equal(await futures[0], 3);
		assert.equal(started, 1);
	});

	it("callLater names delay and fn, and refuses when no run is under way", async () => {
		const scheduler = Scheduler.withSequential();
		assert.throws(() => scheduler.callLater(1, () => {}), SchedulerStateError);
		const errors: unknown[] = [];
		scheduler.on(Scheduler.STARTED, () => {
			for (const call of [() => scheduler.callLater(-1, () => {}), () => scheduler.callLater("soon", () => {}), () => scheduler.callLater(0, () => {}), () => scheduler.callLater(1, bad("fn"))]) {
				try {
					call();
				} catch (error) {
					errors.push(error);
				}
			}
		});
		const exit = await scheduler.run();
		assert.equal(exit.code, "exhausted", "the bad calls scheduled nothing");
		assert.equal(errors.length, 4);
		assert.ok(errors[0] instanceof RangeError && /`delay`.*`-1`/.test(errors[0].message));
		assert.ok(errors[1] instanceof RangeError && /`delay`.*"soon"/.test(errors[1].message));
		assert.ok(errors[2] instanceof RangeError && /`delay`/.test(errors[2].message));
		assert.ok(errors[3] instanceof TypeError && /`fn`.*"fn"/.test(errors[3].message));
	});

	it("Task names ref, ref.module, ref.name, scheduler, plugins and name", () => {
		const scheduler = Scheduler.withSequential();
		expectAll([
			["ref null", () => new Task(bad(null), scheduler), TypeError, /`ref`.*null/],
			["ref a string", () => new Task(bad("./jobs.ts"), scheduler), TypeError, /`ref`.*"\.\/jobs\.ts"/],
			["module empty", () => new Task({ module: "" }, scheduler), TypeError, /`ref\.module`/],
			["module a number", () => new Task({ module: bad(5) }, scheduler), TypeError, /`ref\.module`.*`5`/],
			["name a number", () => new Task({ module: "./x.js", name: bad(5) }, scheduler), TypeError, /`ref\.name`.*`5`/],
			["name empty", () => new Task({ module: "./x.js", name: "" }, scheduler), TypeError, /`ref\.name`/],
			["no scheduler", () => new Task(job("add"), bad({})), TypeError, /`scheduler`/],
			["options null", () => new Task(job("add"), scheduler, bad(null)), TypeError, /`options`/],
			["plugins not an array", () => new Task(job("add"), scheduler, { plugins: bad("pynisher") }), TypeError, /`plugins`.*"pynisher"/],
			["a plugin without a name", () => new Task(job("add"), scheduler, { plugins: [bad({})] }), TypeError, /`plugins\[0\]`/],
			["an empty task name", () => new Task(job("add"), scheduler, { name: "" }), TypeError, /`name`/],
			["a handler that is not a function", () => scheduler.task(job("add")).on(Task.RESULT, bad("log")), TypeError, /handler.*"log"/],
		]);
	});

	it("PynisherPlugin names each option and refuses units of the other kind", () => {
		expectAll([
			["options null", () => new PynisherPlugin(bad(null)), TypeError, /`options`/],
			["a wall limit in gigabytes", () => new PynisherPlugin({ wallTimeLimit: bad([5, "gb"]) }), RangeError, /`wallTimeLimit`.*unknown time unit "gb"/],
			["a wall limit string in megabytes", () => new PynisherPlugin({ wallTimeLimit: "2mb" }), RangeError, /`wallTimeLimit`.*"2mb"/],
			["a memory limit in minutes", () => new PynisherPlugin({ memoryLimit: bad([2, "m"]) }), RangeError, /`memoryLimit`.*unknown memory unit "m"/],
			["a memory limit string in seconds", () => new PynisherPlugin({ memoryLimit: "5s" }), RangeError, /`memoryLimit`.*"5s"/],
			["a memory limit of Infinity", () => new PynisherPlugin({ memoryLimit: Number.POSITIVE_INFINITY }), RangeError, /`memoryLimit`.*Infinity/],
			["a CPU limit as an object", () => new PynisherPlugin({ cpuTimeLimit: bad({ s: 1 }) }), TypeError, /`cpuTimeLimit`/],
			["a CPU limit as a [unit, value] pair", () => new PynisherPlugin({ cpuTimeLimit: bad(["s", 1]) }), TypeError, /`cpuTimeLimit`/],
			["a negative grace period", () => new PynisherPlugin({ gracePeriod: "-1s" }), RangeError, /`gracePeriod`/],
			["a sample interval of NaN", () => new PynisherPlugin({ sampleInterval: Number.NaN }), RangeError, /`sampleInterval`/],
			["memoryKind in capitals", () => new PynisherPlugin({ memoryKind: bad("RSS") }), TypeError, /`memoryKind`.*"RSS"/],
			["escalate as a string", () => new PynisherPlugin({ escalate: bad("false") }), TypeError, /`escalate`.*"false"/],
		]);
	});

	it("Limiter and limit() name their options", () => {
		expectAll([
			["maxCalls 0", () => new Limiter({ maxCalls: 0 }), RangeError, /`maxCalls`.*`0`/],
			["maxConcurrent as a string", () => new Limiter({ maxConcurrent: bad("1") }), TypeError, /`maxConcurrent`.*"1"/],
			["maxCalls 2.5", () => new Limiter({ maxCalls: 2.5 }), RangeError, /`maxCalls`/],
			["notWhileRunning not a task", () => new Limiter({ notWhileRunning: [bad({})] }), TypeError, /`notWhileRunning\[0\]`/],
			["Limiter options null", () => new Limiter(bad(null)), TypeError, /`options`/],
			["limit() on an unknown executor", () => limit(job("add"), { executor: bad("gpu") }), TypeError, /`executor`.*"gpu"/],
			["limit() with a bad ref", () => limit(bad({ module: 5 })), TypeError, /`ref\.module`/],
			["limit() with a bad limit", () => limit(job("add"), { wallTimeLimit: -5 }), RangeError, /`wallTimeLimit`.*`-5`/],
		]);
	});
});

describe("bad input: references, state, handlers and shared plugins", () => {
	for (const kind of EXECUTORS) {
		it(`${kind}: a missing file, a non-function and a module that does not parse fail their calls with TaskLoadError, and the next call runs`, async () => {
			const scheduler = make(kind, 1);
			const missing = scheduler.task({ module: new URL("./fixtures/no-such-file.mjs", import.meta.url), name: "x" });
			const notFunction = scheduler.task(job("aNumber"));
			const broken = scheduler.task({ module: new URL("./fixtures/broken-syntax.mjs", import.meta.url), name: "broken" });
			const pkg = scheduler.task({ module: "no-such-package-byop", name: "x" });
			const add = scheduler.task(job("add"));
			const { futures } = await runAll(scheduler, () => [missing.submit(), notFunction.submit(), broken.submit(), pkg.submit(), add.submit(2, 2)]);
			for (const future of futures.slice(0, 4)) {
				const error = future.exception as TaskLoadError;
				assert.ok(error instanceof TaskLoadError, `${String(error)}`);
				assert.equal(error.code, "ERR_TASK_LOAD");
			}
			assert.match((futures[0]?.exception as TaskLoadError).module, /no-such-file\.mjs$/);
			assert.equal((futures[1]?.exception as TaskLoadError).export, "aNumber");
			assert.ok(((futures[2]?.exception as Error).cause as Error | undefined)?.name === "SyntaxError", `${String((futures[2]?.exception as Error).cause)}`);
			assert.equal((futures[3]?.exception as TaskLoadError).module, "no-such-package-byop");
			assert.equal(await futures[4], 4);
		});
	}

	it("submit() after the run ended throws SchedulerStateError, and a new run accepts calls", async () => {
		const scheduler = Scheduler.withThreads({ maxWorkers: 1 });
		const add = scheduler.task(job("add"));
		await runAll(scheduler, () => [add.submit(1, 1)]);
		assert.throws(() => add.submit(1, 2), (error: unknown) => error instanceof SchedulerStateError && error.code === "ERR_SCHEDULER_STATE");
		assert.throws(() => scheduler.callLater(1, () => {}), SchedulerStateError);
		const { futures } = await runAll(scheduler, () => [add.submit(2, 3)]);
		assert.equal(await futures[0], 5);
	});

	it("a second run() while one is under way is refused and leaves the first alone", async () => {
		const scheduler = Scheduler.withThreads({ maxWorkers: 1 });
		const sleep = scheduler.task(job("sleep"));
		let second: unknown;
		const { exit, futures } = await runAll(scheduler, () => {
			scheduler.run().catch((error: unknown) => (second = error));
			return [sleep.submit(50, "slept")];
		});
		assert.ok(second instanceof SchedulerStateError);
		assert.equal(exit.code, "exhausted");
		assert.equal(await futures[0], "slept");
	});

	it("a handler that throws does not stop the other handlers; its error follows onException", async () => {
		const scheduler = Scheduler.withThreads({ maxWorkers: 1 });
		const add = scheduler.task(job("add"));
		const seen: string[] = [];
		const boom = new Error("handler broke");
		add.on(Task.RESULT, () => {
			throw boom;
		});
		add.on(Task.RESULT, () => void seen.push("second handler"));
		scheduler.on(Scheduler.FUTURE_RESULT, async () => {
			throw new Error("async handler broke");
		});
		const kept = await runAll(scheduler, () => [add.submit(1, 2)], { onException: "continue" });
		assert.equal(kept.exit.code, "exhausted");
		assert.deepEqual(seen, ["second handler"]);
		// Under "raise", run() shuts down and then rejects with the handler's error.
		await assert.rejects(runAll(scheduler, () => [add.submit(1, 2)], { onException: "raise" }), (error: unknown) => error === boom);
		assert.equal(scheduler.running, false);
		assert.equal(scheduler.pending, 0);
		// A handler that throws on STARTED ends the run the same way, and the scheduler can run again.
		const off = scheduler.on(Scheduler.STARTED, () => {
			throw new Error("STARTED handler broke");
		});
		const ended = await scheduler.run({ onException: "end" });
		assert.equal(ended.code, "exception");
		off();
		assert.equal((await runAll(scheduler, () => [add.submit(3, 4)], { onException: "continue" })).futures[0]?.result, 7);
	});

	it("one PynisherPlugin on two schedulers running at once limits the calls of both, with one event each", async () => {
		const plugin = new PynisherPlugin({ wallTimeLimit: "300ms" });
		const threads = Scheduler.withThreads({ maxWorkers: 1 });
		const processes = Scheduler.withProcesses({ maxWorkers: 1 });
		const onThreads = threads.task(job("sleep"), { plugins: [plugin] });
		const onProcesses = processes.task(job("sleep"), { plugins: [plugin] });
		let events = 0;
		onThreads.on(plugin.WALL_TIME_LIMIT_REACHED, () => events++);
		onProcesses.on(plugin.WALL_TIME_LIMIT_REACHED, () => events++);
		const [a, b] = await Promise.all([runAll(threads, () => [onThreads.submit(10_000)]), runAll(processes, () => [onProcesses.submit(10_000)])]);
		assert.ok(a.futures[0]?.exception instanceof WallTimeLimitError);
		assert.ok(b.futures[0]?.exception instanceof WallTimeLimitError);
		assert.equal(events, 2);
	});

	it("one Limiter on two schedulers counts the calls of both", async () => {
		const limiter = new Limiter({ maxCalls: 3 });
		const first = Scheduler.withSequential();
		const second = Scheduler.withSequential();
		const a = first.task(job("add"), { plugins: [limiter] });
		const b = second.task(job("add"), { plugins: [limiter] });
		const one = await runAll(first, () => [a.submit(1, 1), a.submit(1, 2)]);
		const two = await runAll(second, () => [b.submit(1, 3), b.submit(1, 4)]);
		assert.equal(one.futures.length, 2);
		assert.equal(two.futures.length, 1, "the third call was let through, the fourth vetoed");
		assert.equal(limiter.calls, 3);
	});
});
