import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Limiter, Scheduler, Task } from "../src/index.ts";
import { job, plain, runAll } from "./helpers.ts";

describe("Limiter", () => {
	it("maxCalls: lets that many calls through, then vetoes with CALL_LIMIT_REACHED", async () => {
		const scheduler = Scheduler.withSequential();
		const limiter = new Limiter({ maxCalls: 2 });
		const task = scheduler.task(job("add"), { plugins: [limiter] });
		const refused: unknown[][] = [];
		task.on(Limiter.CALL_LIMIT_REACHED, (_task, ...args) => refused.push(args));
		let submitted: unknown[] = [];
		await runAll(scheduler, () => {
			submitted = [task.submit(1, 1), task.submit(2, 2), task.submit(3, 3), task.submit(4, 4)];
			return [];
		});
		assert.equal(submitted.filter((future) => future !== undefined).length, 2);
		assert.deepEqual(refused, [
			[3, 3],
			[4, 4],
		]);
		assert.equal(limiter.calls, 2);
	});

	it("maxConcurrent: vetoes while that many are in flight, and lets calls through again after", async () => {
		const scheduler = Scheduler.withThreads({ maxWorkers: 2 });
		const limiter = new Limiter({ maxConcurrent: 2 });
		const task = scheduler.task(plain("sleep"), { plugins: [limiter] });
		let refused = 0;
		task.on(limiter.CONCURRENT_LIMIT_REACHED, () => refused++);
		let late: unknown;
		const { futures } = await runAll(scheduler, () => {
			const first = [task.submit(100), task.submit(100), task.submit(100)];
			task.on(Task.DONE, () => {
				if (late === undefined) {
					late = task.submit(10);
				}
			});
			return first;
		});
		assert.equal(futures.length, 2);
		assert.equal(refused, 1);
		assert.notEqual(late, undefined, "a call goes through once one has finished");
		assert.equal(limiter.concurrent, 0);
	});

	it("notWhileRunning: vetoes while another task runs, with DISABLED_DUE_TO_RUNNING_TASK", async () => {
		const scheduler = Scheduler.withThreads({ maxWorkers: 2 });
		const blocker = scheduler.task(plain("sleep"));
		const limiter = new Limiter({ notWhileRunning: blocker });
		const task = scheduler.task(plain("add"), { plugins: [limiter] });
		let disabled = 0;
		task.on(Limiter.DISABLED_DUE_TO_RUNNING_TASK, (who) => {
			assert.equal(who, task);
			disabled++;
		});
		let after: unknown;
		blocker.on(Task.DONE, () => {
			after = task.submit(1, 2);
		});
		const { futures } = await runAll(scheduler, () => [blocker.submit(200), task.submit(1, 1)]);
		assert.equal(futures.length, 1);
		assert.equal(disabled, 1);
		assert.equal(await (after as PromiseLike<number>), 3);
	});

	it("validates its options", () => {
		assert.throws(() => new Limiter({ maxCalls: 0 }), (error: Error) => error instanceof RangeError && /`maxCalls`/.test(error.message));
		assert.throws(() => new Limiter({ maxConcurrent: -1 }), /`maxConcurrent`/);
		assert.throws(() => new Limiter({ maxCalls: "3" as unknown as number }), TypeError);
		assert.throws(() => new Limiter({ notWhileRunning: [{} as Task] }), /`notWhileRunning\[0\]`/);
		assert.throws(() => new Limiter(null as unknown as object), /`options`/);
	});
});
