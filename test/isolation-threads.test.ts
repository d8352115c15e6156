// What a task in a worker thread can do to the enforcement of limits: reach the shared control
// block, patch the builtins the worker uses, forge abort notices, return what the main thread
// cannot read. Each attack must leave limits enforced, and other calls unharmed.
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { describe, it } from "node:test";
import type { Call } from "../src/executors/executor.ts";
import { ThreadCall } from "../src/executors/threads/call.ts";
import type { Pool, ThreadPools } from "../src/executors/threads/pools.ts";
import { MainSlots } from "../src/executors/threads/slots.ts";
import { DataCloneError, type Future, Scheduler, WorkerCrashedError } from "../src/index.ts";
import { createSlots, FLOAT, INT } from "../src/protocol/call-slots.ts";
import { SlotWriter } from "../src/worker/slot-writer.ts";
import { CpuTimeLimitError, PynisherPlugin, type PynisherOptions, WallTimeLimitError } from "../src/pynisher/index.ts";
import { runAll } from "./helpers.ts";

function hostile(name: string) {
	return { module: new URL("./fixtures/hostile-threads.mjs", import.meta.url), name };
}

function limited(scheduler: Scheduler, name: string, options: PynisherOptions) {
	return scheduler.task(hostile(name), { plugins: [new PynisherPlugin(options)] });
}

/** How a future ended, for messages. */
function outcome(future: Future | undefined): string {
	if (future === undefined) {
		return "not submitted";
	}
	if (future.state === "exception") {
		const error = future.exception as Error;
		return `exception ${error.name}: ${error.message}`;
	}
	return `${future.state} ${JSON.stringify(future.result)}`;
}

/** The wall time of a future's call, in ms. */
function wall(future: Future | undefined): number {
	return future?.usage?.wallMs ?? Number.NaN;
}

const TIMEOUT = { timeout: 60_000 };

describe("a thread task cannot reach the control block", () => {
	it("finds no shared memory and no channel name in the worker's data (require, import, piscina)", TIMEOUT, async () => {
		const scheduler = Scheduler.withThreads({ maxWorkers: 1 });
		const probe = scheduler.task(hostile("probeWorkerData"));
		const { futures } = await runAll(scheduler, () => [probe.submit()]);
		assert.deepEqual(futures[0]?.result, [], outcome(futures[0]));
	});

	for (const limits of [{ wallTimeLimit: "1s" }, { cpuTimeLimit: "300ms" }] as const) {
		const kind = Object.keys(limits)[0]!;
		it(`a task scribbling on every SharedArrayBuffer it finds is still stopped by its ${kind}, and a concurrent call keeps its result`, TIMEOUT, async () => {
			const scheduler = Scheduler.withThreads({ maxWorkers: 2 });
			const scribble = limited(scheduler, "scribble", limits);
			const sleep = scheduler.task(hostile("sleep"));
			const { futures } = await runAll(scheduler, () => [scribble.submit(4000), sleep.submit(1500, "innocent")]);
			const [scribbler, innocent] = futures;
			const expected = kind === "wallTimeLimit" ? WallTimeLimitError : CpuTimeLimitError;
			assert.ok(scribbler?.exception instanceof expected, outcome(scribbler));
			// Stopped near its limit, far from the 4 s it asked for (wide bounds for a loaded machine).
			assert.ok(wall(scribbler) < 3000, `ran ${wall(scribbler)} ms`);
			assert.equal(innocent?.result, "innocent", outcome(innocent));
		});
	}
});

describe("a thread task that patches builtins", () => {
	it("does not stop later calls on its thread from being limited, nor from returning", TIMEOUT, async () => {
		const scheduler = Scheduler.withThreads({ maxWorkers: 1 });
		const patch = scheduler.task(hostile("patchBuiltins"));
		const add = scheduler.task(hostile("add"));
		const wallSpin = limited(scheduler, "spinForever", { wallTimeLimit: "1s" });
		const cpuSpin = limited(scheduler, "spinForever", { cpuTimeLimit: "300ms" });
		// One thread: each limited call runs on the thread its patch ran on (a stop ends the thread, so it is patched again).
		const { futures } = await runAll(scheduler, () => [
			patch.submit(),
			add.submit(1, 2),
			wallSpin.submit(),
			patch.submit(),
			cpuSpin.submit(),
			patch.submit(),
			add.submit(3, 4),
		]);
		assert.equal(futures[1]?.result, 3, outcome(futures[1]));
		assert.ok(futures[2]?.exception instanceof WallTimeLimitError, outcome(futures[2]));
		assert.ok(wall(futures[2]) < 3000, `ran ${wall(futures[2])} ms`);
		assert.ok(futures[4]?.exception instanceof CpuTimeLimitError, outcome(futures[4]));
		assert.ok(wall(futures[4]) < 3000, `ran ${wall(futures[4])} ms`);
		assert.equal(futures[6]?.result, 7, outcome(futures[6]));
	});
});

describe("a thread task's answer the main thread cannot read", () => {
	it("a deeply nested result ends its call with DataCloneError, with or without a wall limit, and the next call is fine", TIMEOUT, async () => {
		const scheduler = Scheduler.withThreads({ maxWorkers: 1 });
		const deep = scheduler.task(hostile("deep"));
		const limitedDeep = limited(scheduler, "deep", { wallTimeLimit: "1s" });
		const add = scheduler.task(hostile("add"));
		const started = performance.now();
		const { futures } = await runAll(scheduler, () => [deep.submit(10_000), limitedDeep.submit(10_000), add.submit(1, 2)]);
		const elapsed = performance.now() - started;
		assert.ok(futures[0]?.exception instanceof DataCloneError, outcome(futures[0]));
		// A call that ended within its wall limit is not reported past it while its answer is awaited.
		assert.ok(futures[1]?.exception instanceof DataCloneError, outcome(futures[1]));
		assert.equal(futures[2]?.result, 3, outcome(futures[2]));
		assert.ok(elapsed < 15_000, `took ${elapsed} ms`);
	});

	it("an error carrying a deeply nested value ends its call, and the next call is fine", TIMEOUT, async () => {
		const scheduler = Scheduler.withThreads({ maxWorkers: 1 });
		const deepThrow = scheduler.task(hostile("deepThrow"));
		const add = scheduler.task(hostile("add"));
		const { futures } = await runAll(scheduler, () => [deepThrow.submit(10_000), add.submit(1, 2)]);
		// The value the error carries is dropped where it cannot be copied, or the call ends with DataCloneError.
		const error = futures[0]?.exception as Error | undefined;
		assert.ok(error instanceof DataCloneError || error?.message === "deep", outcome(futures[0]));
		assert.equal(futures[1]?.result, 3, outcome(futures[1]));
	});
});

describe("abort notices", () => {
	it("a task posting forged notices on guessed channel names does not abort another call", TIMEOUT, async () => {
		const scheduler = Scheduler.withThreads({ maxWorkers: 2 });
		const forge = scheduler.task(hostile("forgeAborts"));
		const watch = scheduler.task(hostile("watchSignal"));
		const { futures } = await runAll(scheduler, () => [forge.submit(100, 40, 1500), watch.submit(1200)]);
		assert.equal(futures[0]?.result, "forged", outcome(futures[0]));
		assert.equal(futures[1]?.result, "not aborted", outcome(futures[1]));
	});
});

describe("a call slot that makes no sense", () => {
	/** A call on a pool that never answers by itself: aborting it rejects it, as piscina does. */
	function fakeCall(answer?: unknown) {
		const buffer = createSlots(1);
		const slots = new MainSlots(buffer);
		const worker = new SlotWriter(buffer);
		slots.reset(0, 7);
		const pool = {
			threads: [],
			run: (_payload: unknown, options: { signal: { once(event: "abort", listener: () => void): void } }) =>
				answer !== undefined
					? Promise.resolve(answer)
					: new Promise((_resolve, reject) => options.signal.once("abort", () => reject(Object.assign(new Error("The task has been aborted"), { name: "AbortError" })))),
		} as unknown as Pool;
		const call = new ThreadCall({ id: 1, ref: { module: "job.js", name: "f" }, args: [], limits: undefined } as unknown as Call, {
			pool,
			slots,
			pools: { run: (target: Pool, payload: unknown, signal: unknown) => target.run(payload as never, { signal } as never) } as unknown as ThreadPools,
			slot: 0,
			generation: 7,
			key: "key",
			capBytes: 0,
			watchOffHeap: false,
			post: () => {},
			rewarm: () => {},
		});
		const floats = new Float64Array(buffer);
		return { call, worker, floats, ints: new Int32Array(buffer) };
	}

	/** A thread of this process other than the main thread. */
	const otherThread = (): number => readdirSync("/proc/self/task").map(Number).find((tid) => tid !== process.pid)!;

	async function endsWithNonsense(ending: Promise<{ kind: string; error?: unknown }>, pattern: RegExp): Promise<void> {
		const ended = await ending;
		assert.equal(ended.kind, "exception");
		assert.ok(ended.error instanceof WorkerCrashedError, String(ended.error));
		assert.match((ended.error as Error).message, pattern);
	}

	it("a start after now or before the call was sent ends the call; the start it gives stays finite", async () => {
		for (const startedAt of [1e300, Number.NaN, -1e300, 0]) {
			const { call, worker, floats } = fakeCall();
			const ending = call.run();
			worker.markStarted(0, 7, 0, 0, 1);
			floats[FLOAT.startedAt] = startedAt;
			const given = call.startedAt()!;
			assert.ok(Number.isFinite(given) && given <= performance.now(), `gave ${given}`);
			await endsWithNonsense(ending, /recorded a start/);
		}
	});

	it("a CPU start counter that is no count, or a reading that goes backwards, ends the call", async () => {
		for (const base of [1e300, Number.NaN, -5]) {
			const { call, worker } = fakeCall();
			const ending = call.run();
			worker.markStarted(0, 7, otherThread(), base, 1);
			assert.ok(call.cpuMs() >= -1);
			await endsWithNonsense(ending, /CPU/);
		}
	});

	it("a thread id that is no thread of this process ends the call", async () => {
		for (const tid of [-3, process.pid, 4_000_000]) {
			const { call, worker } = fakeCall();
			const ending = call.run();
			worker.markStarted(0, 7, tid, 0, 1);
			call.cpuMs();
			await endsWithNonsense(ending, /thread id/);
		}
	});

	it("an answer whose slot holds a wall time longer than the call, or an ending that is none, ends the call", async () => {
		const { call, worker } = fakeCall("value");
		worker.markStarted(0, 7, 0, 0, 1);
		worker.finish(0, 7, true, 1e9, 1, 1);
		await endsWithNonsense(call.run(), /wall time/);
		const second = fakeCall("value");
		second.worker.markStarted(0, 7, 0, 0, 1);
		second.ints[INT.ended] = 77;
		await endsWithNonsense(second.call.run(), /ending/);
	});
});

describe("a task that breaks the built-ins its worker runs on", () => {
	for (const kind of ["threads", "processes"] as const) {
		it(`has its worker replaced after its call, so later calls find them whole (${kind})`, TIMEOUT, async () => {
			const scheduler = kind === "threads" ? Scheduler.withThreads({ maxWorkers: 1 }) : Scheduler.withProcesses({ maxWorkers: 1 });
			const breaker = scheduler.task(hostile("breakBuiltins"));
			const probe = scheduler.task(hostile("whereAndParse"));
			const { futures } = await runAll(scheduler, () => [probe.submit(), breaker.submit(), probe.submit(), probe.submit()]);
			const [before, broke, after, again] = futures;
			assert.equal(broke?.state, "result", outcome(broke));
			assert.deepEqual((after?.result as { parsed: unknown }).parsed, [1], outcome(after));
			assert.deepEqual((again?.result as { parsed: unknown }).parsed, [1], outcome(again));
			// The call that broke them ran where the probe before it did; the probes after it run elsewhere.
			assert.equal(broke?.result, (before?.result as { where: string }).where);
			assert.notEqual((after?.result as { where: string }).where, broke?.result);
			// A worker whose built-ins are whole is kept.
			assert.equal((again?.result as { where: string }).where, (after?.result as { where: string }).where);
		});
	}
});
