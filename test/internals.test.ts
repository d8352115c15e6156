import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import path from "node:path";
import { describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import { CancelledError, currentCall, defineEvent, taskSignal } from "../src/index.ts";
import { Emitter } from "../src/events.ts";
import { MainSlots } from "../src/executors/threads/slots.ts";
import { heapCapMb } from "../src/executors/threads/pools.ts";
import { mergeLimits } from "../src/limits/options.ts";
import { Watchdog } from "../src/limits/watchdog.ts";
import { ProcReader } from "../src/executors/processes/proc-reader.ts";
import { createSlots, ENDED } from "../src/protocol/call-slots.ts";
import { MemoryLimitError } from "../src/pynisher/index.ts";
import { viewOf } from "../src/test-hooks.ts";
import { cpuMs, START_REUSE_MS, ThreadClock } from "../src/worker/clocks.ts";
import { CallControl, RunningCalls } from "../src/worker/context.ts";
import { SlotWriter } from "../src/worker/slot-writer.ts";
import { findUncloneable } from "../src/worker/uncloneable.ts";

/** Whether a watchdog's timer runs, and how often it has fired. */
function state(watchdog: Watchdog): { ticks: number; active: boolean } {
	return viewOf<{ ticks: number; active: boolean }>(watchdog, "state")!;
}
import { describeRef, resolveRef } from "../src/ref.ts";
import { deserializeError, isSerializedError, serializeError } from "../src/serialize.ts";

describe("Emitter", () => {
	it("calls handlers in order, unsubscribes, ignores duplicates, and reports handler errors without stopping the rest", async () => {
		const errors: unknown[] = [];
		const emitter = new Emitter((error) => errors.push(error));
		const event = defineEvent<[number]>("test:number");
		const seen: string[] = [];
		const first = (n: number) => seen.push(`first:${n}`);
		const off = emitter.on(event, first);
		emitter.on(event, first);
		emitter.on(event, () => {
			throw new Error("sync");
		});
		emitter.on(event, async () => {
			throw new Error("async");
		});
		emitter.on(event, (n) => seen.push(`last:${n}`));
		emitter.emit(event, 1);
		off();
		emitter.off(event, first);
		emitter.emit(event, 2);
		await new Promise((resolve) => setImmediate(resolve));
		assert.deepEqual(seen, ["first:1", "last:1", "last:2"]);
		assert.deepEqual(
			errors.map((error) => (error as Error).message),
			["sync", "sync", "async", "async"],
		);
		emitter.emit(defineEvent<[]>("test:nobody"));
		assert.equal(errors.length, 4, "an event without handlers reports nothing");
	});
});

describe("error serialization", () => {
	it("keeps class name, message, stack, nested causes and cloneable own properties", () => {
		class DeepError extends Error {
			code = "E_DEEP";
			callback = () => {};
		}
		const inner = new RangeError("inner");
		const error = new DeepError("outer", { cause: new TypeError("middle", { cause: inner }) });
		const copy = deserializeError(structuredClone(serializeError(error))) as Error & { code?: string; callback?: unknown };
		assert.equal(copy.name, "DeepError");
		assert.equal(copy.message, "outer");
		assert.equal(copy.stack, error.stack);
		assert.equal(copy.code, "E_DEEP");
		assert.equal(copy.callback, undefined, "functions are dropped");
		assert.ok(copy.cause instanceof TypeError);
		assert.ok((copy.cause as Error).cause instanceof RangeError);
		assert.equal(String(copy), "DeepError: outer");
	});

	it("keeps byop's own classes, AggregateErrors, and non-Error causes and throws", () => {
		const limit = deserializeError(serializeError(new MemoryLimitError(100, 200, "heap")));
		assert.ok(limit instanceof MemoryLimitError);
		assert.equal((limit as MemoryLimitError).observed, 200);
		assert.ok(deserializeError(serializeError(new CancelledError())) instanceof CancelledError);
		const aggregate = deserializeError(serializeError(new AggregateError([new Error("a"), "b"], "many"))) as AggregateError;
		assert.ok(aggregate instanceof AggregateError);
		assert.equal((aggregate.errors[0] as Error).message, "a");
		assert.equal(aggregate.errors[1], "b");
		const withValueCause = deserializeError(serializeError(new Error("x", { cause: { reason: 1 } })));
		assert.deepEqual(withValueCause.cause, { reason: 1 });
		const withFunctionCause = deserializeError(serializeError(new Error("x", { cause: () => 1 })));
		assert.equal(typeof withFunctionCause.cause, "string");
		for (const [thrown, type] of [[42, "number"], [null, "null"], ["text", "string"], [Symbol("s"), "symbol"], [undefined, "undefined"]] as const) {
			const serialized = serializeError(thrown);
			assert.equal(serialized.thrown?.type, type);
			assert.ok(isSerializedError(serialized));
			assert.match(deserializeError(serialized).message, /non-Error value/);
		}
		assert.equal(isSerializedError({}), false);
		assert.equal(isSerializedError(null), false);
	});
});

describe("function references", () => {
	it("resolve URLs, paths and package names", () => {
		const absolute = path.resolve("test/fixtures/jobs.ts");
		assert.deepEqual(resolveRef({ module: new URL(pathToFileURL(absolute).href) }), { module: pathToFileURL(absolute).href, name: "default" });
		assert.equal(resolveRef({ module: absolute, name: "add" }).module, pathToFileURL(absolute).href);
		assert.equal(resolveRef({ module: "./test/fixtures/jobs.ts" }).module, pathToFileURL(absolute).href);
		assert.equal(resolveRef({ module: "node:path", name: "join" }).module, "node:path");
		assert.equal(resolveRef({ module: "some-package", name: "run" }).module, "some-package");
		assert.equal(describeRef(resolveRef({ module: absolute, name: "add" })), "jobs.ts#add");
		assert.throws(() => resolveRef("jobs.ts"), /`ref`/);
		assert.throws(() => resolveRef({ module: 5 }), /`ref.module`/);
		assert.throws(() => resolveRef({ module: "x", name: 1 }), /`ref.name`/);
	});
});

describe("uncloneable results", () => {
	it("are found with their path", () => {
		assert.equal(findUncloneable({ a: [1, { b: () => 1 }] }), "a function at .a[1].b");
		assert.equal(findUncloneable(Symbol("s")), "a symbol");
		assert.equal(findUncloneable(new Map([["k", new WeakMap()]])), "a WeakMap at .get(k)");
		assert.equal(findUncloneable(new Set([Promise.resolve()])), "a Promise at <item>");
		const cyclic: Record<string, unknown> = { date: new Date(), re: /x/, buffer: Buffer.alloc(4), error: new Error("e") };
		cyclic["self"] = cyclic;
		assert.equal(findUncloneable(cyclic), undefined);
	});
});

describe("watchdog", () => {
	it("checks each at its own interval, and stops when nothing is watched", async () => {
		const watchdog = new Watchdog();
		let slow = 0;
		let fast = 0;
		const a = { intervalMs: 50, check: () => void slow++ };
		const b = { intervalMs: 5, check: () => void fast++ };
		watchdog.add(a);
		watchdog.add(b);
		// At least 120 ms, and until the fast check has run 5 times: a loaded machine runs timers late.
		const started = performance.now();
		while ((fast < 5 || performance.now() - started < 120) && performance.now() - started < 10_000) {
			await new Promise((resolve) => setTimeout(resolve, 10));
		}
		const elapsed = performance.now() - started;
		watchdog.delete(b);
		watchdog.delete(b);
		assert.ok(fast >= 5, `fast ${fast}`);
		// The slow check keeps its own interval: at most once per 50 ms, however often the fast one runs.
		assert.ok(slow >= 1 && slow <= Math.floor(elapsed / 50) + 1, `slow ${slow} in ${Math.round(elapsed)} ms`);
		assert.equal(state(watchdog).active, true);
		watchdog.delete(a);
		assert.equal(state(watchdog).active, false);
	});

	it("waits as long as a check says it can, never less than its interval nor more than a second", async () => {
		const watchdog = new Watchdog();
		let far = 0;
		let eager = 0;
		const distant = { intervalMs: 5, check: () => (far++, 300) };
		const close = { intervalMs: 20, check: () => (eager++, 0) };
		const forever = { intervalMs: 5, check: () => Number.POSITIVE_INFINITY };
		watchdog.add(distant, 300);
		watchdog.add(distant, 5_000); // adding again never puts a check off
		watchdog.add(close);
		watchdog.add(forever, Number.POSITIVE_INFINITY);
		await new Promise((resolve) => setTimeout(resolve, 700));
		const ticks = state(watchdog).ticks;
		watchdog.delete(distant);
		watchdog.delete(close);
		assert.ok(far >= 1 && far <= 2, `checked ${far} times in 700 ms at a 300 ms wait`);
		assert.ok(eager >= 15 && eager <= 40, `checked ${eager} times in 700 ms at its 20 ms interval`);
		// Timers fire late on a busy machine and a check may come a tick apart from the others:
		// a few wake-ups beyond the checks, never one per millisecond.
		assert.ok(ticks <= eager + far + 10, `${ticks} ticks for ${eager + far} checks`);
		assert.equal(state(watchdog).active, true, "what waits forever is still checked, once a second");
		watchdog.delete(forever);
		assert.equal(state(watchdog).active, false);
	});
});

describe("limits", () => {
	it("merge to the tighter of each and the stricter memory kind", () => {
		const base = { wallMs: 100, cpuMs: undefined, memoryBytes: 1000, memoryKind: "auto", graceMs: 0, sampleMs: 10, escalate: true } as const;
		const merged = mergeLimits(base, { wallMs: 50, cpuMs: 20, memoryBytes: undefined, memoryKind: "heap", graceMs: 5, sampleMs: 20, escalate: false });
		assert.deepEqual(merged, { wallMs: 50, cpuMs: 20, memoryBytes: 1000, memoryKind: "heap", graceMs: 5, sampleMs: 10, escalate: false });
		assert.equal(mergeLimits(merged, { ...base, memoryKind: "rss" }).memoryKind, "rss");
		assert.equal(mergeLimits(undefined, base), base);
	});

	it("heap caps split into old and young generations", () => {
		assert.deepEqual(heapCapMb(64 * 1024 * 1024), { old: 56, young: 8 });
		assert.deepEqual(heapCapMb(1024 ** 3), { old: 1008, young: 16 });
		assert.deepEqual(heapCapMb(1), { old: 1, young: 1 });
	});
});

describe("call context", () => {
	it("is empty outside a task", () => {
		assert.equal(currentCall(), undefined);
		assert.equal(taskSignal().aborted, false);
	});

	it("a stop notice that comes before its call is registered aborts the call when it is", () => {
		const calls = new RunningCalls();
		const reason = new Error("stopped while loading");
		calls.abort(7, reason);
		const early = calls.add(7);
		assert.equal(early.signal.aborted, true);
		assert.equal(early.signal.reason, reason);
		assert.equal(calls.add(8).signal.aborted, false, "another call is not touched");
		for (let id = 100; id < 140; id++) {
			calls.abort(id, reason);
		}
		assert.equal(calls.add(100).signal.aborted, false, "only the latest notices are kept");
		assert.equal(calls.add(139).signal.aborted, true);
	});
});

describe("shared call slots and thread clocks", () => {
	it("a slot carries a call's start, its end and what it used, from worker to main side", () => {
		const buffer = createSlots(2);
		const main = new MainSlots(buffer);
		const worker = new SlotWriter(buffer);
		main.reset(1, 41);
		assert.equal(main.running(1, 41), false);
		assert.equal(main.startedAt(1, 41), undefined, "not started yet");
		const before = performance.now();
		assert.equal(worker.markStarted(1, 40, 999, 1), false, "a call whose slot moved on does not start");
		assert.equal(main.running(1, 40), false);
		assert.equal(worker.markStarted(1, 41, 4242, 123_456_789), true);
		assert.equal(worker.markStarted(1, 41, 4242, 1), false, "a slot is claimed once");
		assert.equal(main.running(1, 41), true);
		assert.equal(main.tid(1), 4242);
		assert.equal(main.cpuBase(1), 123_456_789);
		const startedAt = main.startedAt(1, 41)!;
		assert.ok(startedAt >= before - 1 && startedAt <= performance.now() + 1, `started at ${startedAt}`);
		assert.equal(main.startedAt(1, 40), undefined, "another call's start is not this one's");
		assert.equal(main.ended(1), 0);
		worker.setMemory(1, 41, 5_000_000, 1_000_000);
		worker.setMemory(1, 40, 9e9, 9e9);
		assert.equal(main.externalMemory(1), 1_000_000, "an old call's memory is not recorded");
		worker.finish(1, 40, true, 1, 1, 1);
		assert.equal(main.ended(1), 0, "an old call's end is not recorded");
		worker.finish(1, 41, false, 12.5, 3.25, 6_000_000);
		assert.equal(main.ended(1), ENDED.thrown);
		assert.deepEqual(main.usage(1), { wallMs: 12.5, cpuMs: 3.25, peakMemoryBytes: 6_000_000, where: "thread" });
		assert.equal(main.running(0, 41), false, "the other slot is untouched");
		main.reset(1, 42);
		assert.equal(main.running(1, 41), false);
		assert.equal(main.ended(1), 0);
		assert.equal(main.peakMemory(1), 0);
		worker.markStarted(1, 42, 1, 0);
		worker.finish(1, 42, true, 1, 1, 1);
		assert.equal(main.ended(1), ENDED.ok);
	});

	it("reads a thread's CPU time, reusing a recent reading as a start and never reporting more than the wall time allows", () => {
		const clock = new ThreadClock();
		const start = clock.start();
		assert.ok(start > 0, "schedstat is readable here");
		assert.equal(clock.start(), start, "a start right after a reading takes that reading");
		const wallStart = performance.now();
		while (performance.now() - wallStart < 20) {
			// Spins for 20 ms of wall time, nearly all of it on the CPU.
		}
		const wall = performance.now() - wallStart;
		const spent = clock.spent(start, wall);
		assert.ok(spent > 5 && spent <= wall + 1, `spent ${spent} ms of CPU in ${wall} ms`);
		assert.notEqual(clock.start(), start, "a later start reads again");
		assert.equal(clock.spent(start, 0.01), 0.01, "a call shorter than the resolution reports its wall time");
		assert.ok(clock.spent(start, 1) <= 1 + START_REUSE_MS, "a call reports at most its wall time, and what a reused start held");
		assert.equal(clock.spent(-1, 0.01), cpuMs(-1, clock.read()), "without a start, nothing is estimated");
		assert.equal(cpuMs(-1, 5), -1);
		assert.equal(cpuMs(1e6, 3e6), 2);
		clock.close();
		assert.ok(clock.read() > start, "reads again after close");
		clock.close();
	});

	it("a call's context makes its abort signal only when asked, aborted with the first reason", () => {
		const early = new CallControl(7);
		early.abort(new CancelledError("first"));
		early.abort(new CancelledError("second"));
		assert.equal(early.id, 7);
		assert.equal(early.signal.aborted, true);
		assert.equal((early.signal.reason as Error).message, "first");
		const late = new CallControl(8);
		const signal = late.signal;
		assert.equal(signal.aborted, false);
		assert.equal(late.signal, signal, "one signal per call");
		late.abort("stop");
		assert.equal(signal.aborted, true);
		assert.equal(signal.reason, "stop");
	});
});

describe("reading a process tree from /proc", () => {
	it("counts the resident memory of the children a process started, and sees them come and go", async () => {
		const reader = new ProcReader(process.pid);
		// As for a call that started a process: its descendants count from then on.
		reader.beginCall();
		reader.spawned();
		const alone = reader.rssBytes();
		assert.ok(alone > 0);
		// A child that holds 150 MB, touched page by page, until it is killed.
		const child = spawn(process.execPath, ["-e", "const b = Buffer.alloc(150 * 1024 * 1024, 1); process.stdout.write('ready'); setInterval(() => b[0]++, 1000);"], { stdio: ["ignore", "pipe", "ignore"] });
		try {
			await new Promise<void>((resolve, reject) => {
				child.stdout.once("data", () => resolve());
				child.once("exit", () => reject(new Error("the child ended early")));
			});
			const withChild = reader.rssBytes();
			assert.ok(withChild - alone > 120 * 1024 * 1024, `the tree grew by ${Math.round((withChild - alone) / 1048576)} MB`);
		} finally {
			child.kill("SIGKILL");
			await new Promise((resolve) => child.once("close", resolve));
		}
		assert.ok(reader.rssBytes() - alone < 60 * 1024 * 1024, "the child is no longer counted once it is gone");
		reader.close();
		assert.equal(reader.rssBytes(), -1, "a closed reader reads nothing");
	});

	it("counts a call's CPU time: its main thread, the threads and processes it starts, not the threads there before", async () => {
		const reader = new ProcReader(process.pid);
		// A thread that spins before the call began is not the call's.
		const spin = (ms: number) => `const end = performance.now() + ${ms}; while (performance.now() < end) {}`;
		const before = new Worker(`${spin(1500)}`, { eval: true });
		// Listened for at once: on a busy machine it may end before the call's readings are done.
		const beforeEnded = new Promise((resolve) => before.once("exit", resolve));
		await new Promise((resolve) => setTimeout(resolve, 200));
		// As after a call: the reader lists the threads there now as no call's.
		reader.baseline();
		reader.beginCall();
		assert.ok(reader.callCpuNs() >= 0 && reader.callCpuNs() < 50e6, "nothing is counted yet");
		// A thread started during the call, spinning 300 ms, then ending: counted after it ended too.
		const ownCpu = `require("worker_threads").parentPort.postMessage(Number(require("fs").readFileSync("/proc/thread-self/schedstat", "utf8").split(" ")[0]) / 1e6)`;
		// As a pool process reports it, just before the call starts a thread of its own.
		reader.spawned();
		const nested = new Worker(`${spin(300)}; ${ownCpu}`, { eval: true });
		// Read closely while it runs, as the watchdog reads a call that started a thread.
		const reading = setInterval(() => reader.callCpuNs(), 10);
		const nestedMs = await new Promise<number>((resolve) => nested.once("message", resolve));
		await new Promise((resolve) => nested.once("exit", resolve));
		clearInterval(reading);
		const afterThread = reader.callCpuNs() / 1e6;
		assert.ok(afterThread >= nestedMs * 0.9 - 10, `a nested thread's ${nestedMs} ms of CPU counted as ${afterThread} ms`);
		// A child process spinning 300 ms, waited for.
		const child = spawn(process.execPath, ["-e", spin(300)], { stdio: "ignore" });
		await new Promise((resolve) => child.once("exit", resolve));
		const afterChild = reader.callCpuNs() / 1e6;
		assert.ok(afterChild - afterThread >= 100, `a child's 300 ms of spinning counted as ${afterChild - afterThread} ms`);
		await beforeEnded;
		// The thread that was there before spun about 1.3 s during the call: none of it counts.
		assert.ok(reader.callCpuNs() / 1e6 - afterChild < 200, `the earlier thread was counted: ${reader.callCpuNs() / 1e6 - afterChild} ms`);
		reader.close();
	});
});
