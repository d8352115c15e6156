// Pool sizing and per-call isolation: maxWorkers bounds the threads (and processes) alive at once
// whatever the heap caps of the calls; isolate "call" gives every call a fresh thread or process
// with a spare started ahead, and "none" reuses them, so that what a call leaves reaches the next.
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { describe, it } from "node:test";
import { type Future, Scheduler, type Task } from "../src/index.ts";
import { limit, PynisherPlugin } from "../src/pynisher/index.ts";
import type { FunctionRef } from "../src/ref.ts";
import { delay, poolPids, threadCounts } from "./helpers.ts";

function fixture(name: string): FunctionRef {
	return { module: new URL("./fixtures/isolation.mjs", import.meta.url), name };
}

interface Seen {
	readonly map: string | null;
	readonly parse: string | null;
	readonly global: string | null;
	readonly env: string | null;
	readonly pid: number;
	readonly threadId: number;
	readonly cwd: string;
}

/** Runs `body` inside a run of `scheduler`, which ends when it does; resolves to what it returned. */
async function within<T>(scheduler: Scheduler, body: () => Promise<T>): Promise<T> {
	let outcome: { value: T } | { error: unknown } | undefined;
	const off = scheduler.on(Scheduler.STARTED, () => {
		void body()
			.then(
				(value) => {
					outcome = { value };
				},
				(error: unknown) => {
					outcome = { error };
				},
			)
			.finally(() => scheduler.stop());
	});
	try {
		await scheduler.run({ endOnEmpty: false, onException: "continue", onCancelled: "continue", timeout: "2m" });
	} finally {
		off();
	}
	assert.ok(outcome !== undefined, "the run ended before its body did");
	if ("error" in outcome) {
		throw outcome.error;
	}
	return outcome.value;
}

const kinds = ["threads", "processes"] as const;

function make(kind: (typeof kinds)[number], options: { maxWorkers?: number; isolate?: "none" | "call"; minWorkers?: number }): Scheduler {
	return kind === "threads" ? Scheduler.withThreads(options) : Scheduler.withProcesses(options);
}

/** Calls `pollute`, then `inspect`, one after the other. */
async function pollution(scheduler: Scheduler, patchParse = true): Promise<{ first: Seen; second: Seen }> {
	const pollute = scheduler.task<[string, boolean], Seen>(fixture("pollute"));
	const inspect = scheduler.task<[], Seen>(fixture("inspect"));
	return within(scheduler, async () => {
		const first = await pollute.submit("left by call 1", patchParse)!;
		const second = await inspect.submit()!;
		return { first, second };
	});
}

/** The median of some numbers. */
function median(values: readonly number[]): number {
	const sorted = [...values].sort((a, b) => a - b);
	const middle = sorted.length >> 1;
	return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Times `future` from now to its settling, in ms. */
async function timed(submit: () => Future | undefined): Promise<number> {
	const started = performance.now();
	await submit()!;
	return performance.now() - started;
}

describe("isolate: what one call leaves to the next on a worker", () => {
	for (const kind of kinds) {
		it(`${kind}, isolate "call": the next call finds built-ins, globals, process.env${kind === "processes" ? " and the working directory" : ""} as they were, on another ${kind === "threads" ? "thread" : "process"}`, async () => {
			const { first, second } = await pollution(make(kind, { maxWorkers: 2, isolate: "call" }));
			assert.deepEqual({ map: second.map, parse: second.parse, global: second.global, env: second.env }, { map: null, parse: null, global: null, env: null });
			assert.equal(second.cwd, process.cwd());
			if (kind === "threads") {
				assert.notEqual(second.threadId, first.threadId);
			} else {
				assert.notEqual(second.pid, first.pid);
			}
		});

		it(`${kind}, isolate "none" (the default): the next call on the same ${kind === "threads" ? "thread" : "process"} finds what the first left, but for watched built-ins${kind === "processes" ? " and the working directory" : ""}`, async () => {
			const { first, second } = await pollution(make(kind, { maxWorkers: 1 }), false);
			assert.equal(second.pid, first.pid);
			assert.equal(second.threadId, first.threadId);
			assert.deepEqual(
				{ map: second.map, parse: second.parse, global: second.global, env: second.env },
				{ map: "left by call 1", parse: null, global: "left by call 1", env: "left by call 1" },
			);
			// Each call on a process starts in the process's first working directory.
			assert.equal(second.cwd, process.cwd());
			// A call that replaces a built-in the worker runs on (JSON.parse) has its worker replaced.
			const replaced = await pollution(make(kind, { maxWorkers: 1 }), true);
			assert.ok(replaced.second.pid !== replaced.first.pid || replaced.second.threadId !== replaced.first.threadId, JSON.stringify(replaced));
			assert.equal(replaced.second.parse, null);
		});

		it(`${kind}, isolate "call": spaced calls find a spare started, not a cold start`, async () => {
			// A cold start: a fresh run's first call, on a thread or a process that starts for it.
			const cold: number[] = [];
			for (let i = 0; i < 3; i++) {
				const scheduler = make(kind, { maxWorkers: 1 });
				const add = scheduler.task<[number, number], number>(fixture("add"));
				cold.push(await within(scheduler, () => timed(() => add.submit(1, 2))));
			}
			const coldMs = median(cold);
			// Spaced by more than a start takes, so that the spare started after a call is ready.
			const gapMs = Math.max(250, 2 * coldMs);
			const scheduler = make(kind, { maxWorkers: 2, isolate: "call" });
			const add = scheduler.task<[number, number], number>(fixture("add"));
			const spaced = await within(scheduler, async () => {
				const times: number[] = [];
				await add.submit(0, 0);
				for (let i = 0; i < 6; i++) {
					await delay(gapMs);
					times.push(await timed(() => add.submit(i, 1)));
				}
				return times;
			});
			const spacedMs = median(spaced);
			console.log(`${kind}: cold start ${coldMs.toFixed(1)} ms (median of 3), isolate "call" calls ${gapMs.toFixed(0)} ms apart ${spacedMs.toFixed(1)} ms (median of 6)`);
			assert.ok(spacedMs < coldMs / 2, `spaced isolated calls took ${spacedMs.toFixed(1)} ms (median), a cold start ${coldMs.toFixed(1)} ms`);
		});
	}

	it("limit() takes isolate too", async () => {
		await using inspect = limit<[], Seen>(fixture("inspect"), { wallTimeLimit: "30s", maxWorkers: 1, isolate: "call" });
		await using pollute = limit<[string], Seen>(fixture("pollute"), { wallTimeLimit: "30s", maxWorkers: 1, isolate: "call" });
		await pollute("left");
		assert.equal((await inspect()).global, null);
	});

	it("a bad isolate is rejected, naming the option and the value", () => {
		for (const [value, shown] of [
			["calls", /`isolate`.*"none" or "call".*`"calls"`/],
			[true, /`isolate`.*`true`/],
			[null, /`isolate`.*null/],
		] as const) {
			for (const make of [() => Scheduler.withThreads({ isolate: value as never }), () => Scheduler.withProcesses({ isolate: value as never }), () => limit(fixture("add"), { isolate: value as never })]) {
				assert.throws(make, (error: unknown) => error instanceof TypeError && shown.test(error.message));
			}
		}
	});
});

/** The OS threads of this process now. */
function osThreads(): number {
	return readdirSync("/proc/self/task").length;
}

describe("maxWorkers bounds the threads and processes alive at once, whatever the heap caps", () => {
	it("threads: 20 distinct heap caps on maxWorkers 2 never have more than 2 worker threads, and every call succeeds", async () => {
		// The helper threads of this process (V8's, libuv's) are counted once they have started:
		// a run of limited calls on one thread, ended, leaves them.
		const first = Scheduler.withThreads({ maxWorkers: 1 });
		const limited = first.task<[number, number], number>(fixture("add"), { plugins: [new PynisherPlugin({ memoryLimit: "96mb", memoryKind: "auto", wallTimeLimit: "60s" })] });
		await within(first, async () => {
			await Promise.all([limited.submit(1, 1)!, limited.submit(2, 1)!]);
		});
		const baseline = osThreads();
		const scheduler = Scheduler.withThreads({ maxWorkers: 2, minWorkers: 2 });
		const tasks: Task<[number, number], number>[] = [];
		for (let i = 0; i < 20; i++) {
			const memoryKind = i % 2 === 0 ? "heap" : "auto";
			tasks.push(scheduler.task(fixture("add"), { plugins: [new PynisherPlugin({ memoryLimit: [96 + 4 * i, "mb"], memoryKind, wallTimeLimit: "60s" })] }));
		}
		let maxAlive = 0;
		let maxOs = 0;
		const sample = (): void => {
			maxAlive = Math.max(maxAlive, threadCounts(scheduler)?.alive ?? 0);
			maxOs = Math.max(maxOs, osThreads() - baseline);
		};
		const sampler = setInterval(sample, 2);
		const results = await within(scheduler, async () => {
			const futures: Future<number>[] = [];
			for (let i = 0; i < 60; i++) {
				futures.push(tasks[i % 20]!.submit(i, 1)!);
				sample();
			}
			return Promise.allSettled(futures.map((future) => Promise.resolve(future)));
		});
		clearInterval(sampler);
		const failed = results.filter((result) => result.status === "rejected");
		assert.deepEqual(failed, [], `${failed.length} of 60 calls failed`);
		assert.deepEqual(
			results.map((result) => (result.status === "fulfilled" ? result.value : undefined)),
			Array.from({ length: 60 }, (_, i) => i + 1),
		);
		console.log(`worker threads alive at most: ${maxAlive} (pools' count), ${maxOs} (OS threads above the baseline of ${baseline})`);
		assert.ok(maxAlive <= 2, `${maxAlive} worker threads alive at once`);
		// A thread ended to make room has reported its exit before the next starts, but its OS
		// thread may linger in /proc a moment longer: one more is allowed there (the old pools
		// had 10 or more).
		assert.ok(maxOs <= 3, `${maxOs} OS threads above the baseline at once`);
	});

	it("processes: 20 distinct heap caps on maxWorkers 2 never have more than 2 processes, and every call succeeds", async () => {
		const scheduler = Scheduler.withProcesses({ maxWorkers: 2 });
		const tasks: Task<[number, number], number>[] = [];
		for (let i = 0; i < 20; i++) {
			tasks.push(scheduler.task(fixture("add"), { plugins: [new PynisherPlugin({ memoryLimit: [128 + 8 * i, "mb"], memoryKind: "rss", wallTimeLimit: "60s" })] }));
		}
		let maxAlive = 0;
		const sample = (): void => {
			maxAlive = Math.max(maxAlive, poolPids(scheduler).length);
		};
		const sampler = setInterval(sample, 2);
		const results = await within(scheduler, async () => {
			const futures: Future<number>[] = [];
			for (let i = 0; i < 40; i++) {
				futures.push(tasks[i % 20]!.submit(i, 1)!);
				sample();
			}
			return Promise.allSettled(futures.map((future) => Promise.resolve(future)));
		});
		clearInterval(sampler);
		const failed = results.filter((result) => result.status === "rejected");
		assert.deepEqual(failed, [], `${failed.length} of 40 calls failed`);
		console.log(`pool processes alive at most: ${maxAlive}`);
		assert.ok(maxAlive <= 2, `${maxAlive} processes alive at once`);
	});
});
