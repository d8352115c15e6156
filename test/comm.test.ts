import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { COMM_WINDOW } from "../src/protocol/comm.ts";
import { describe, it } from "node:test";
import { CommPlugin, type CommMessage, type Future, Task } from "../src/index.ts";
import { PynisherPlugin } from "../src/pynisher/index.ts";
import { comm } from "../src/worker.ts";
import { EXECUTORS, make, runAll } from "./helpers.ts";
import type { FunctionRef } from "../src/ref.ts";

/** A reference to an export of test/fixtures/comm.ts. */
function commJob(name: string): FunctionRef {
	return { module: new URL("./fixtures/comm.ts", import.meta.url), name };
}

/** Records a task's comm and outcome events in order. */
function recordComm(task: Task): string[] {
	const log: string[] = [];
	task.on(CommPlugin.OPEN, () => log.push("open"));
	task.on(CommPlugin.MESSAGE, ({ data }: CommMessage) => log.push(`message ${JSON.stringify(data)}`));
	task.on(CommPlugin.CLOSE, () => log.push("close"));
	task.on(Task.RESULT, () => log.push("result"));
	task.on(Task.EXCEPTION, () => log.push("exception"));
	task.on(Task.CANCELLED, () => log.push("cancelled"));
	return log;
}

for (const kind of EXECUTORS) {
	describe(`CommPlugin on ${kind}`, () => {
		it("a sending task delivers [1, 2, 3]: OPEN once, MESSAGE three times, CLOSE once, then RESULT", async () => {
			const scheduler = make(kind);
			const task = scheduler.task(commJob("sendAll"), { plugins: [new CommPlugin()] });
			const log = recordComm(task);
			const { futures } = await runAll(scheduler, () => [task.submit([1, 2, 3])]);
			assert.equal(await futures[0], 3);
			assert.deepEqual(log, ["open", "message 1", "message 2", "message 3", "close", "result"]);
		});

		it("messages sent just before the task returns arrive before its RESULT", async () => {
			const scheduler = make(kind);
			const task = scheduler.task(commJob("sendAndReturn"), { plugins: [new CommPlugin()] });
			const log = recordComm(task);
			const values = Array.from({ length: 2000 }, (_, i) => i);
			await runAll(scheduler, () => [task.submit(values)]);
			assert.equal(log.length, 2000 + 3);
			assert.deepEqual(log.slice(-3), ["message 1999", "close", "result"]);
			assert.deepEqual(
				log.slice(1, -2),
				values.map((value) => `message ${value}`),
			);
		});

		it("a requesting task whose handler doubles gets [2, 4, 6]", async () => {
			const scheduler = make(kind);
			const task = scheduler.task(commJob("askAll"), { plugins: [new CommPlugin()] });
			task.on(CommPlugin.REQUEST, (request) => request.respond(2 * (request.data as number)));
			const { futures } = await runAll(scheduler, () => [task.submit([1, 2, 3])]);
			assert.deepEqual(await futures[0], [2, 4, 6]);
		});

		it("an asynchronous handler's answer comes back", async () => {
			const scheduler = make(kind);
			const task = scheduler.task(commJob("askAll"), { plugins: [new CommPlugin()] });
			task.on(CommPlugin.REQUEST, async (request) => {
				await new Promise((resolve) => setTimeout(resolve, 10));
				request.respond(`answer ${String(request.data)}`);
			});
			const { futures } = await runAll(scheduler, () => [task.submit([1])]);
			assert.deepEqual(await futures[0], ["answer 1"]);
		});

		it("a request with no answer within its timeout rejects with CommError (timeout)", async () => {
			const scheduler = make(kind);
			const task = scheduler.task(commJob("askOnce"), { plugins: [new CommPlugin()] });
			task.on(CommPlugin.REQUEST, () => new Promise((resolve) => setTimeout(resolve, 2000)));
			const { futures } = await runAll(scheduler, () => [task.submit(100)]);
			assert.deepEqual(await futures[0], { name: "CommError", code: "ERR_COMM", failure: "timeout" });
		});

		it("a request whose handler throws rejects with CommError (handler-failed)", async () => {
			const scheduler = make(kind);
			const task = scheduler.task(commJob("askOnce"), { plugins: [new CommPlugin()] });
			task.on(CommPlugin.REQUEST, () => {
				throw new Error("no answer for you");
			});
			const { futures } = await runAll(scheduler, () => [task.submit()]);
			assert.deepEqual(await futures[0], { name: "CommError", code: "ERR_COMM", failure: "handler-failed" });
		});

		it("a request with no handler rejects with CommError (no-handler)", async () => {
			const scheduler = make(kind);
			const task = scheduler.task(commJob("askOnce"), { plugins: [new CommPlugin()] });
			const { futures } = await runAll(scheduler, () => [task.submit()]);
			assert.deepEqual(await futures[0], { name: "CommError", code: "ERR_COMM", failure: "no-handler" });
		});

		it("data that cannot be copied fails at send() with DataCloneError", async () => {
			const scheduler = make(kind);
			const task = scheduler.task(commJob("sendUncloneable"), { plugins: [new CommPlugin()] });
			const { futures } = await runAll(scheduler, () => [task.submit()]);
			assert.equal(await futures[0], "ERR_DATA_CLONE");
		});

		it("comm in a task without the plugin throws CommError (unavailable)", async () => {
			const scheduler = make(kind);
			const task = scheduler.task(commJob("commWithout"));
			const { futures } = await runAll(scheduler, () => [task.submit()]);
			assert.deepEqual(await futures[0], { code: "ERR_COMM", failure: "unavailable" });
		});

		it("messages of concurrent calls never mix", async () => {
			const scheduler = make(kind);
			const task = scheduler.task(commJob("sendAll"), { plugins: [new CommPlugin()] });
			const byFuture = new Map<Future, unknown[]>();
			task.on(CommPlugin.MESSAGE, ({ data, future }: CommMessage) => {
				byFuture.set(future, [...(byFuture.get(future) ?? []), data]);
			});
			const a = Array.from({ length: 300 }, (_, i) => i);
			const b = Array.from({ length: 300 }, (_, i) => -i);
			const { futures } = await runAll(scheduler, () => [task.submit(a), task.submit(b)]);
			assert.deepEqual(byFuture.get(futures[0]!), a);
			assert.deepEqual(byFuture.get(futures[1]!), b);
		});

		it("a task cancelled mid-conversation: CLOSE still comes", async () => {
			const scheduler = make(kind);
			const task = scheduler.task(commJob("askThenHang"), { plugins: [new CommPlugin()] });
			const log = recordComm(task);
			task.on(CommPlugin.MESSAGE, ({ future }: CommMessage) => future.cancel());
			task.on(CommPlugin.REQUEST, () => new Promise(() => {}));
			await runAll(scheduler, () => [task.submit()]);
			assert.deepEqual(log, ["open", 'message "started"', "close", "cancelled"]);
		});
	});
}

for (const kind of ["threads", "processes"] as const) {
	describe(`CommPlugin and limits on ${kind}`, () => {
		it("a task stopped by its wall-time limit mid-conversation: CLOSE comes, and its pending request rejects in its grace period", async () => {
			const scheduler = make(kind);
			const task = scheduler.task(commJob("askThenHang"), { plugins: [new CommPlugin(), new PynisherPlugin({ wallTimeLimit: 0.5, gracePeriod: 5 })] });
			const log = recordComm(task);
			task.on(CommPlugin.REQUEST, () => new Promise(() => {}));
			const path = join(mkdtempSync(join(tmpdir(), "byop-comm-")), "failure");
			const { futures } = await runAll(scheduler, () => [task.submit(path)]);
			await assert.rejects(Promise.resolve(futures[0]!), { code: "ERR_WALL_TIME_LIMIT" });
			assert.equal(readFileSync(path, "utf8"), "closed");
			assert.deepEqual(log, ["open", 'message "started"', "close", "exception"]);
		});

		it("a task stopped by its wall-time limit with no grace period: CLOSE comes, then the limit's exception", async () => {
			const scheduler = make(kind);
			const task = scheduler.task(commJob("askThenHang"), { plugins: [new CommPlugin(), new PynisherPlugin({ wallTimeLimit: 0.5 })] });
			const log = recordComm(task);
			task.on(CommPlugin.REQUEST, () => new Promise(() => {}));
			const { futures } = await runAll(scheduler, () => [task.submit()]);
			await assert.rejects(Promise.resolve(futures[0]!), { code: "ERR_WALL_TIME_LIMIT" });
			assert.deepEqual(log, ["open", 'message "started"', "close", "exception"]);
		});
	});
}

for (const kind of ["threads", "processes"] as const) {
	it(`on ${kind}, a task whose worker dies mid-conversation: CLOSE comes, then its exception`, async () => {
		const scheduler = make(kind);
		const task = scheduler.task(commJob("sendThenCrash"), { plugins: [new CommPlugin()] });
		const log = recordComm(task);
		const { futures } = await runAll(scheduler, () => [task.submit()]);
		await assert.rejects(Promise.resolve(futures[0]!));
		assert.deepEqual(log, ["open", 'message "last words"', "close", "exception"]);
	});
}

describe("comm messages a process's task forges", () => {
	for (const well of [true, false]) {
		it(`a ${well ? "well-formed comm message with a made-up token" : "comm message of an unknown kind"} ends its call with WorkerProtocolError`, async () => {
			const scheduler = make("processes");
			const task = scheduler.task(commJob("forgeComm"), { plugins: [new CommPlugin()] });
			const { futures } = await runAll(scheduler, () => [task.submit(well)]);
			await assert.rejects(Promise.resolve(futures[0]!), { code: "ERR_WORKER_PROTOCOL" });
		});
	}
});

for (const kind of EXECUTORS) {
	it(`on ${kind}, a flood of 100,000 small messages loses nothing, keeps order, and never blocks the main thread for long`, async () => {
		const scheduler = make(kind);
		const task = scheduler.task(commJob("flood"), { plugins: [new CommPlugin()] });
		let received = 0;
		let inOrder = true;
		task.on(CommPlugin.MESSAGE, ({ data }: CommMessage) => {
			inOrder &&= data === received;
			received++;
		});
		const delay = monitorEventLoopDelay({ resolution: 10 });
		delay.enable();
		const { futures } = await runAll(scheduler, () => [task.submit(100_000)]);
		delay.disable();
		assert.equal(await futures[0], 100_000);
		assert.equal(received, 100_000);
		assert.ok(inOrder);
		// The main thread takes the messages in batches; a wide bound for a loaded 2-core machine
		// (the sequential executor runs the whole flood in the main thread, as its task).
		if (kind !== "sequential") {
			assert.ok(delay.max / 1e6 < 1000, `the longest pause was ${(delay.max / 1e6).toFixed(0)} ms`);
		}
	});
}

for (const kind of ["threads", "processes"] as const) {
	it(`on ${kind}, back-pressure: past ${COMM_WINDOW} unacknowledged messages, send() waits for room, and nothing is lost`, async () => {
		const scheduler = make(kind);
		const task = scheduler.task(commJob("sendPastWindow"), { plugins: [new CommPlugin()] });
		let received = 0;
		task.on(CommPlugin.MESSAGE, () => received++);
		const { futures } = await runAll(scheduler, () => [task.submit(3000)]);
		assert.equal(await futures[0], COMM_WINDOW);
		assert.equal(received, 3000);
	});
}

describe("comm outside a task", () => {
	it("throws CommError (unavailable)", () => {
		assert.throws(() => comm.send(1), { code: "ERR_COMM", failure: "unavailable" });
		assert.throws(() => comm.request(1), { code: "ERR_COMM", failure: "unavailable" });
	});
});
