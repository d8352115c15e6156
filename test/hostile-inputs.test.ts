import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type Future, type Plugin, Scheduler, WorkerCrashedError } from "../src/index.ts";
import { CallMonitor, START_WAIT_MS } from "../src/limits/monitor.ts";
import { OffHeapWatch } from "../src/limits/off-heap.ts";
import type { Limits } from "../src/limits/types.ts";
import { Watchdog } from "../src/limits/watchdog.ts";
import { clearLongTimeout, MAX_TIMEOUT_MS, setLongTimeout } from "../src/long-timeout.ts";
import { MemoryLimitError, PynisherPlugin, WallTimeLimitError } from "../src/pynisher/index.ts";
import { viewOf } from "../src/test-hooks.ts";
import { delay, job, runAll } from "./helpers.ts";

const MiB = 1024 * 1024;
/** A test that runs this long has hung (a hang is what these tests look for). */
const HANG_MS = 60_000;

/** Collects the `TimeoutOverflowWarning`s emitted while `body` runs. */
async function overflowWarnings(body: () => Promise<void>): Promise<number> {
	let count = 0;
	const listener = (warning: Error): void => {
		if (warning.name === "TimeoutOverflowWarning") {
			count++;
		}
	};
	process.on("warning", listener);
	try {
		await body();
		// Warnings are emitted on the next tick.
		await delay(50);
	} finally {
		process.off("warning", listener);
	}
	return count;
}

/** What a future ended in, for assertion messages. */
function describeEnd(future: Future | undefined): string {
	const error = future?.exception;
	return `${future?.state}: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error ?? future?.result)} in a ${future?.usage?.where}`;
}

describe("memory limits too small for a worker thread", () => {
	for (const memoryKind of ["heap", "auto"] as const) {
		for (const [label, limit] of [["1 B", 1], ["1 KB", 1024], ["1 MB", MiB], ["4 MB", 4 * MiB]] as const) {
			it(`threads, ${memoryKind}, ${label}: the call ends at once with a MemoryLimitError that says why, and the next call works`, { timeout: HANG_MS }, async () => {
				const scheduler = Scheduler.withThreads({ maxWorkers: 1 });
				const plugin = new PynisherPlugin({ memoryLimit: limit, memoryKind, wallTimeLimit: "20s" });
				const tiny = scheduler.task(job("add"), { plugins: [plugin] });
				const normal = scheduler.task(job("add"));
				let events = 0;
				tiny.on(plugin.MEMORY_LIMIT_REACHED, () => events++);
				const started = performance.now();
				const { futures } = await runAll(scheduler, () => [tiny.submit(1, 2)]);
				const elapsed = performance.now() - started;
				const error = futures[0]?.exception as MemoryLimitError;
				assert.ok(error instanceof MemoryLimitError, describeEnd(futures[0]));
				assert.match(error.message, /below the \d+ MB a worker thread needs/);
				assert.equal(error.limit, limit);
				assert.equal(events, 1);
				assert.ok(elapsed < 5_000, `ended after ${Math.round(elapsed)} ms`);
				const next = await runAll(scheduler, () => [normal.submit(2, 3), tiny.submit(1, 1)]);
				assert.equal(next.futures[0]?.result, 5, describeEnd(next.futures[0]));
				assert.ok(next.futures[1]?.exception instanceof MemoryLimitError, describeEnd(next.futures[1]));
			});
		}
	}

	for (const [label, limit] of [["1 B", 1], ["1 MB", MiB], ["4 MB", 4 * MiB]] as const) {
		it(`processes, ${label}: the call still ends with MemoryLimitError`, { timeout: HANG_MS }, async () => {
			const scheduler = Scheduler.withProcesses({ maxWorkers: 1 });
			const plugin = new PynisherPlugin({ memoryLimit: limit, wallTimeLimit: "20s" });
			const tiny = scheduler.task(job("add"), { plugins: [plugin] });
			const started = performance.now();
			const { futures } = await runAll(scheduler, () => [tiny.submit(1, 2)]);
			assert.ok(futures[0]?.exception instanceof MemoryLimitError, describeEnd(futures[0]));
			assert.ok(performance.now() - started < 15_000);
		});
	}

	it("a thread that fails to start ends its call with an error, and the scheduler goes on", { timeout: HANG_MS }, async (t) => {
		const scheduler = Scheduler.withThreads({ maxWorkers: 2 });
		// The refusal of tiny heap caps is lowered so that the pool's threads do run out of heap as they
		// start. A 4 MB old space: on Node 22 and later, a thread capped at 1 or 2 MB aborts the whole
		// process as V8 deserializes its start-up snapshot, before the thread could fail on its own.
		const threads = (): { minHeapBytes: number } | undefined => viewOf(viewOf<object>(viewOf<object>(scheduler, "dispatcher") ?? {}, "threads") ?? {}, "startable");
		const plugin = new PynisherPlugin({ memoryLimit: 5 * MiB, memoryKind: "heap" });
		const failing = scheduler.task(job("add"), { plugins: [plugin] });
		const normal = scheduler.task(job("add"));
		const started = performance.now();
		const off = scheduler.on(Scheduler.STARTED, () => {
			const startable = threads();
			assert.ok(startable !== undefined, "the thread executor exposes its start checks");
			startable.minHeapBytes = 1;
		});
		const { futures } = await runAll(scheduler, () => [failing.submit(1, 2), failing.submit(3, 4), normal.submit(5, 6)]);
		off();
		assert.ok(performance.now() - started < 10_000, `ended after ${Math.round(performance.now() - started)} ms`);
		t.diagnostic(futures.map(describeEnd).join("; "));
		for (const future of futures.slice(0, 2)) {
			const error = future.exception;
			assert.ok(error instanceof MemoryLimitError || error instanceof WorkerCrashedError, describeEnd(future));
			assert.match((error as Error).message, /start/);
		}
		assert.equal(futures[2]?.result, 11);
	});
});

describe("a call whose thread never starts", () => {
	const watchers = (): { watchdog: Watchdog; offHeap: OffHeapWatch } => {
		const watchdog = new Watchdog();
		return { watchdog, offHeap: new OffHeapWatch(watchdog) };
	};
	const never = { startedAt: (): undefined => undefined, cpuMs: (): number => -1 };
	/** What the monitor stops the call with (its timers do not keep the process alive: a timer here does). */
	const stopped = async (monitorLimits: Limits): Promise<unknown> => {
		const keepAlive = setInterval(() => {}, 1_000);
		try {
			return await new Promise<unknown>((resolve) => new CallMonitor(monitorLimits, never, watchers(), resolve).start());
		} finally {
			clearInterval(keepAlive);
		}
	};
	const limits = { wallMs: undefined, cpuMs: undefined, memoryBytes: undefined, memoryKind: "auto", graceMs: 0, sampleMs: 10, escalate: true } as const;

	it("is ended by its wall-time limit, once the time a thread may take to start has also passed", { timeout: HANG_MS }, async () => {
		const started = performance.now();
		const reason = await stopped({ ...limits, wallMs: 100 });
		assert.ok(reason instanceof WallTimeLimitError, String(reason));
		assert.match(reason.message, /did not start/);
		assert.ok(performance.now() - started >= START_WAIT_MS - 1, "a call may take START_WAIT_MS to start");
		assert.ok(performance.now() - started < START_WAIT_MS + 10_000);
	});

	it("is ended by its CPU-time limit, once the time a thread may take to start has also passed", { timeout: HANG_MS }, async () => {
		const started = performance.now();
		const reason = await stopped({ ...limits, cpuMs: 100 });
		assert.ok(reason instanceof Error && reason.name === "CpuTimeLimitError", String(reason));
		assert.match(reason.message, /did not start/);
		assert.ok(performance.now() - started >= START_WAIT_MS - 1, "a call may take START_WAIT_MS to start");
		assert.ok(performance.now() - started < START_WAIT_MS + 10_000);
	});
});

describe("cancels and run timeouts while a call moves from its thread to a process", () => {
	/**
	 * Runs one call of 200 MB of Buffers under a 32 MB "auto" limit on a new scheduler (a function
	 * that escalated once goes straight to a process): its thread call is stopped and re-run in a
	 * process. `onStart` hears each start: first in its thread, then in its process.
	 */
	async function escalating(onStart: (future: Future, starts: number, moved: () => boolean) => void, options?: Parameters<typeof runAll>[2]): Promise<{ future: Future | undefined; exit: unknown; starts: number }> {
		const scheduler = Scheduler.withThreads({ maxWorkers: 2 });
		let starts = 0;
		// The dispatcher makes its process executor when the call moves (a thread scheduler has none before).
		const moved = (): boolean => viewOf(viewOf<object>(scheduler, "dispatcher") ?? {}, "processes") !== undefined;
		const watch: Plugin = { name: "starts", started: (future) => onStart(future, ++starts, moved) };
		const task = scheduler.task(job("holdBuffers"), { plugins: [new PynisherPlugin({ memoryLimit: "32mb" }), watch] });
		const { exit, futures } = await runAll(scheduler, () => [task.submit(200, 5_000)], options);
		return { future: futures[0], exit, starts };
	}

	it("a cancel at any point, from the thread's start through the move to the process's start, ends the future cancelled", { timeout: HANG_MS * 4 }, async (t) => {
		const ends: string[] = [];
		// Milliseconds after the call started in its thread: filling 200 MB of Buffers passes 32 MB within
		// a few ms, the watch moves it within tens of ms, and the process takes hundreds to start.
		for (const offset of [0, 5, 15, 30, 60, 100, 200, 400, 700]) {
			const { future, starts } = await escalating((started, count) => {
				if (count === 1) {
					setTimeout(() => started.cancel(), offset);
				}
			});
			ends.push(`${offset} ms after the thread start (${starts} starts): ${describeEnd(future)}`);
		}
		// At points after the call was sent to its process, as it starts there.
		for (const offset of [0, 20, 100, 300]) {
			const { future, starts } = await escalating((started, count, moved) => {
				if (count === 1) {
					const poll = setInterval(() => {
						if (moved() || started.done) {
							clearInterval(poll);
							setTimeout(() => started.cancel(), offset);
						}
					}, 2);
				}
			});
			ends.push(`${offset} ms after the move (${starts} starts): ${describeEnd(future)}`);
		}
		// And at once as it starts in its process.
		const { future, starts } = await escalating((started, count) => {
			if (count === 2) {
				started.cancel();
			}
		});
		ends.push(`as the process starts (${starts} starts): ${describeEnd(future)}`);
		t.diagnostic(ends.join("; "));
		// A cancel that comes once the call has ended in its process (its 32 MB limit is below what
		// a process needs: it ends as it starts there) finds nothing to cancel. Any other ends cancelled.
		for (const end of ends) {
			assert.match(end, /: (cancelled: CancelledError|exception: MemoryLimitError: .* in a process)/, ends.join("\n"));
		}
		assert.ok(ends.filter((end) => end.includes("cancelled: CancelledError")).length >= ends.length - 3, ends.join("\n"));
		assert.ok(ends.some((end) => end.includes("(2 starts)") && end.includes("cancelled")), `no cancel landed after the move:\n${ends.join("\n")}`);
	});

	it("a run timeout that lands while the call moves ends the run and the call cancelled, never with an escalation", { timeout: HANG_MS * 4 }, async (t) => {
		const ends: string[] = [];
		for (const timeout of [0.3, 0.6, 1, 1.5, 2.5]) {
			const { future, exit } = await escalating(() => {}, { timeout, wait: false, onException: "continue", onCancelled: "continue" });
			ends.push(`timeout ${timeout} s, ${(exit as { code: string }).code}: ${describeEnd(future)}`);
		}
		t.diagnostic(ends.join("; "));
		// A run timeout that comes once the call has ended in its process finds the run exhausted;
		// any other ends the run and the call cancelled.
		for (const end of ends) {
			assert.match(end, /timeout: cancelled: CancelledError|exhausted: exception: MemoryLimitError: .* in a process/, ends.join("\n"));
		}
		assert.match(ends[0] ?? "", /timeout: cancelled: CancelledError/, ends.join("\n"));
		assert.ok(ends.filter((end) => end.includes("timeout: cancelled")).length >= 2, ends.join("\n"));
	});
});

describe("limits of 2^31 ms or more", () => {
	it("a [720, \"h\"] wall-time limit and grace period let a short call return, without a TimeoutOverflowWarning", { timeout: HANG_MS }, async () => {
		const warnings = await overflowWarnings(async () => {
			for (const kind of ["threads", "processes"] as const) {
				const scheduler = kind === "threads" ? Scheduler.withThreads({ maxWorkers: 1 }) : Scheduler.withProcesses({ maxWorkers: 1 });
				const plugin = new PynisherPlugin({ wallTimeLimit: [720, "h"], cpuTimeLimit: [720, "h"], gracePeriod: [720, "h"] });
				const task = scheduler.task(job("sleep"), { plugins: [plugin] });
				const { futures } = await runAll(scheduler, () => [task.submit(100, "done")]);
				assert.equal(futures[0]?.result, "done", describeEnd(futures[0]));
			}
		});
		assert.equal(warnings, 0);
	});

	it("a grace period of [720, \"h\"] is a grace period: a stopped call that ends on its own within it is not killed at once", { timeout: HANG_MS }, async () => {
		const warnings = await overflowWarnings(async () => {
			const scheduler = Scheduler.withThreads({ maxWorkers: 1 });
			const plugin = new PynisherPlugin({ wallTimeLimit: "300ms", gracePeriod: [720, "h"] });
			const task = scheduler.task(job("sleep"), { plugins: [plugin] });
			// The call sleeps 1 s, past its limit, and then ends on its own within its grace period.
			const { futures } = await runAll(scheduler, () => [task.submit(1_000, "late")]);
			assert.ok(futures[0]?.exception instanceof WallTimeLimitError, describeEnd(futures[0]));
			assert.ok((futures[0]?.usage?.wallMs ?? 0) >= 900, `killed after ${futures[0]?.usage?.wallMs} ms`);
		});
		assert.equal(warnings, 0);
	});

	it("run({ timeout: [720, \"h\"] }) and callLater([720, \"h\"]) arm no overflowing timer", { timeout: HANG_MS }, async () => {
		const warnings = await overflowWarnings(async () => {
			const scheduler = Scheduler.withThreads({ maxWorkers: 1 });
			const task = scheduler.task(job("add"));
			let later = false;
			const off = scheduler.on(Scheduler.STARTED, () => {
				const cancel = scheduler.callLater([720, "h"], () => {
					later = true;
				});
				setTimeout(cancel, 200);
			});
			const { exit, futures } = await runAll(scheduler, () => [task.submit(1, 2)], { timeout: [720, "h"], onException: "continue", onCancelled: "continue" });
			off();
			assert.equal(exit.code, "exhausted");
			assert.equal(futures[0]?.result, 3);
			assert.equal(later, false);
		});
		assert.equal(warnings, 0);
	});

	it("setLongTimeout chains timers of at most the step, and fires once the whole delay has passed", { timeout: HANG_MS }, async () => {
		const started = performance.now();
		let fired = 0;
		await new Promise<void>((resolve) => {
			setLongTimeout(
				() => {
					fired++;
					resolve();
				},
				200,
				{ stepMs: 30 },
			);
		});
		const elapsed = performance.now() - started;
		assert.equal(fired, 1);
		assert.ok(elapsed >= 199, `fired after ${elapsed} ms`);
		assert.ok(elapsed < 5_000, `fired after ${elapsed} ms`);
	});

	it("setLongTimeout can be cleared between two steps, and past 2^31 − 1 ms arms no overflowing timer", { timeout: HANG_MS }, async () => {
		let fired = false;
		const chained = setLongTimeout(() => (fired = true), 200, { stepMs: 30 });
		await delay(100);
		clearLongTimeout(chained);
		await delay(250);
		assert.equal(fired, false);
		const warnings = await overflowWarnings(async () => {
			const long = setLongTimeout(() => (fired = true), MAX_TIMEOUT_MS * 3 + 5);
			await delay(50);
			clearLongTimeout(long);
		});
		assert.equal(warnings, 0);
		assert.equal(fired, false);
		clearLongTimeout(undefined);
	});
});
