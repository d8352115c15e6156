import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { CancelledError, type Plugin, Scheduler, Task } from "../src/index.ts";
import { CpuTimeLimitError, LimitExceededError, limit, MemoryLimitError, PynisherPlugin, type PynisherOptions, WallTimeLimitError } from "../src/pynisher/index.ts";
import { alive, delay, EXECUTORS, job, make, plain, procOnly, runAll, THREAD_CPU, threadCounts, threadCpuOnly, watchdogState } from "./helpers.ts";

/** Records the plugin's and the task's events in order. */
function watch(task: Task, plugin: PynisherPlugin): string[] {
	const log: string[] = [];
	task.on(plugin.TIMEOUT, (error) => log.push(`timeout:${error.code}`));
	task.on(plugin.WALL_TIME_LIMIT_REACHED, () => log.push("wall"));
	task.on(plugin.CPU_TIME_LIMIT_REACHED, () => log.push("cpu"));
	task.on(plugin.MEMORY_LIMIT_REACHED, () => log.push("memory"));
	task.on(Task.EXCEPTION, (_future, error) => log.push(`exception:${(error as Error).name}`));
	task.on(Task.RESULT, () => log.push("result"));
	return log;
}

async function once(kind: (typeof EXECUTORS)[number], name: string, options: PynisherOptions, ...args: unknown[]) {
	const scheduler = make(kind);
	const plugin = new PynisherPlugin(options);
	const task = scheduler.task(job(name), { plugins: [plugin] });
	const log = watch(task, plugin);
	const { futures } = await runAll(scheduler, () => [task.submit(...args)]);
	return { future: futures[0]!, log };
}

describe("PynisherPlugin options and events", () => {
	it("exposes its events on the class and on instances", () => {
		const plugin = new PynisherPlugin();
		assert.equal(plugin.TIMEOUT, PynisherPlugin.TIMEOUT);
		assert.equal(plugin.WALL_TIME_LIMIT_REACHED, PynisherPlugin.WALL_TIME_LIMIT_REACHED);
		assert.equal(plugin.CPU_TIME_LIMIT_REACHED, PynisherPlugin.CPU_TIME_LIMIT_REACHED);
		assert.equal(plugin.MEMORY_LIMIT_REACHED, PynisherPlugin.MEMORY_LIMIT_REACHED);
		assert.equal(new Set(plugin.events).size, 4);
	});

	it("parses every unit form into milliseconds and bytes", () => {
		const plugin = new PynisherPlugin({ wallTimeLimit: [5, "m"], cpuTimeLimit: "90s", memoryLimit: [2, "gb"], gracePeriod: 0.5, sampleInterval: [20, "ms"] });
		assert.deepEqual(plugin.limits, { wallMs: 300_000, cpuMs: 90_000, memoryBytes: 2 * 1024 ** 3, memoryKind: "auto", graceMs: 500, sampleMs: 20, escalate: true });
		assert.equal(new PynisherPlugin({ wallTimeLimit: 3, memoryLimit: 1024 }).limits.memoryBytes, 1024);
	});

	it("rejects bad limits at construction, naming the option and the value", () => {
		const cases: [PynisherOptions, RegExp, typeof TypeError | typeof RangeError][] = [
			[{ wallTimeLimit: -1 }, /`wallTimeLimit`.*`-1` \(number\)/, RangeError],
			[{ wallTimeLimit: 0 }, /`wallTimeLimit`/, RangeError],
			[{ cpuTimeLimit: Number.NaN }, /`cpuTimeLimit`/, RangeError],
			[{ cpuTimeLimit: [1, "fortnight" as "s"] }, /`cpuTimeLimit`.*fortnight/, RangeError],
			[{ memoryLimit: [2, "tb" as "gb"] }, /`memoryLimit`.*tb/, RangeError],
			[{ memoryLimit: "-2gb" }, /`memoryLimit`/, RangeError],
			[{ memoryLimit: true as unknown as number }, /`memoryLimit`/, TypeError],
			[{ memoryKind: "vms" as "rss" }, /`memoryKind`/, TypeError],
			[{ gracePeriod: -3 }, /`gracePeriod`/, RangeError],
			[{ sampleInterval: 0 }, /`sampleInterval`/, RangeError],
			[{ escalate: "no" as unknown as boolean }, /`escalate`/, TypeError],
		];
		for (const [options, message, type] of cases) {
			assert.throws(() => new PynisherPlugin(options), (error: Error) => error instanceof type && message.test(error.message), JSON.stringify(options));
		}
		assert.throws(() => new PynisherPlugin(null as unknown as PynisherOptions), /`options`/);
	});

	it("combines plugins on one task: the tighter limit wins and each emits only the events of its own limits", async () => {
		const scheduler = Scheduler.withThreads({ maxWorkers: 1 });
		const loose = new PynisherPlugin({ wallTimeLimit: "30s", memoryLimit: "1gb" });
		const tight = new PynisherPlugin({ wallTimeLimit: "200ms", cpuTimeLimit: "20s" });
		const memoryOnly = new PynisherPlugin({ memoryLimit: "2gb" });
		const task = scheduler.task(job("sleep"), { plugins: [loose, tight, memoryOnly] });
		let timeouts = 0;
		let wallEvents = 0;
		let cpuEvents = 0;
		task.on(PynisherPlugin.TIMEOUT, () => timeouts++);
		task.on(PynisherPlugin.WALL_TIME_LIMIT_REACHED, () => wallEvents++);
		task.on(PynisherPlugin.CPU_TIME_LIMIT_REACHED, () => cpuEvents++);
		const { futures } = await runAll(scheduler, () => [task.submit(5000)]);
		assert.ok(futures[0]?.exception instanceof WallTimeLimitError);
		assert.equal((futures[0]?.exception as WallTimeLimitError).limit, 200);
		// The two plugins with a wall limit emit TIMEOUT and WALL_TIME_LIMIT_REACHED; the memory-only one emits nothing.
		assert.equal(timeouts, 2);
		assert.equal(wallEvents, 2);
		assert.equal(cpuEvents, 0);
	});
});

for (const kind of EXECUTORS) {
	describe(`limits on ${kind}`, () => {
		it("a sleep past its wall limit emits TIMEOUT and WALL_TIME_LIMIT_REACHED before EXCEPTION", async () => {
			const started = performance.now();
			const { future, log } = await once(kind, "sleep", { wallTimeLimit: "300ms" }, 20_000);
			assert.ok(performance.now() - started < 10_000, "stopped long before the sleep ended");
			const error = future.exception as WallTimeLimitError;
			assert.ok(error instanceof WallTimeLimitError);
			assert.ok(error instanceof LimitExceededError);
			assert.equal(error.code, "ERR_WALL_TIME_LIMIT");
			assert.equal(error.limit, 300);
			assert.ok(error.observed >= 300 && error.observed < 5000, `observed ${error.observed}`);
			assert.deepEqual(log, ["timeout:ERR_WALL_TIME_LIMIT", "wall", "exception:WallTimeLimitError"]);
			assert.equal(future.usage?.where, kind === "threads" ? "thread" : "process");
		});

		it("a busy loop stopped by its wall limit reports the CPU time it used until then", { skip: kind === "threads" && threadCpuOnly("a thread call stopped by its wall limit reports cpuMs -1") }, async () => {
			const { future } = await once(kind, "spinForever", { wallTimeLimit: "600ms" });
			assert.ok(future.exception instanceof WallTimeLimitError, `${future.exception}`);
			// Read just before its thread or process was ended: a busy loop has used CPU all along,
			// but on a loaded machine only a fraction of a core (85 ms of 618 ms was seen with a
			// load average of 11 on 2 cores): some, and no more than the wall time.
			const { cpuMs = -1, wallMs = 0 } = future.usage ?? {};
			assert.ok(wallMs >= 600, `wall ${wallMs}`);
			assert.ok(cpuMs >= 20 && cpuMs <= wallMs + 50, `cpu ${cpuMs} in ${wallMs} ms`);
		});

		it("a busy loop past its CPU limit emits TIMEOUT and CPU_TIME_LIMIT_REACHED", async () => {
			const { future, log } = await once(kind, "spinForever", { cpuTimeLimit: "250ms" });
			const error = future.exception as CpuTimeLimitError;
			assert.ok(error instanceof CpuTimeLimitError, `${error}`);
			assert.equal(error.code, "ERR_CPU_TIME_LIMIT");
			assert.equal(error.limit, 250);
			assert.ok(error.observed >= 250 && error.observed < 5000, `observed ${error.observed}`);
			assert.deepEqual(log, ["timeout:ERR_CPU_TIME_LIMIT", "cpu", "exception:CpuTimeLimitError"]);
		});

		const wholeProcess = procOnly("a process's CPU time is that of all its threads: the TypeScript loader's thread compiling the job's module counts (about 130 ms)");
		it("a sleeping call never reaches its CPU limit", { skip: (kind !== "threads" || !THREAD_CPU) && wholeProcess }, async () => {
			const { future, log } = await once(kind, "sleep", { cpuTimeLimit: "100ms" }, 600, "rested");
			assert.equal(future.result, "rested");
			assert.deepEqual(log, ["result"]);
			assert.ok((future.usage?.cpuMs ?? 0) < 100, `cpu ${future.usage?.cpuMs}`);
			assert.ok((future.usage?.wallMs ?? 0) >= 550, `wall ${future.usage?.wallMs}`);
		});

		it("heap growth past its memory limit emits MEMORY_LIMIT_REACHED only", async () => {
			const { future, log } = await once(kind, "growHeap", { memoryLimit: "96mb", memoryKind: "heap" });
			const error = future.exception as MemoryLimitError;
			assert.ok(error instanceof MemoryLimitError, `${error}`);
			assert.equal(error.code, "ERR_MEMORY_LIMIT");
			assert.equal(error.limit, 96 * 1024 * 1024);
			assert.ok(error.observed > 0);
			assert.deepEqual(log, ["memory", "exception:MemoryLimitError"]);
		});

		it("a call inside all its limits returns its result", async () => {
			// A wall limit far off: with a load average of 17 on 2 cores, a new heap-capped thread took
			// more than 10 s to start under tsx.
			const { future, log } = await once(kind, "add", { wallTimeLimit: "60s", cpuTimeLimit: "10s", memoryLimit: "512mb" }, 40, 2);
			assert.equal(future.result, 42);
			assert.deepEqual(log, ["result"]);
		});
	});
}

describe("limits on threads", () => {
	it("queue wait does not count toward the wall limit", async () => {
		const scheduler = Scheduler.withThreads({ maxWorkers: 1 });
		const plugin = new PynisherPlugin({ wallTimeLimit: "1500ms" });
		const task = scheduler.task(job("sleep"), { plugins: [plugin] });
		// Each waits ~600 ms in the queue per call ahead of it; each runs 600 ms, under its limit.
		const { futures } = await runAll(scheduler, () => [task.submit(600, 1), task.submit(600, 2), task.submit(600, 3)]);
		assert.deepEqual(
			futures.map((future) => future.result),
			[1, 2, 3],
		);
	});

	it("limits on one task never touch another running beside it, and a stopped thread is replaced", { skip: threadCpuOnly() }, async () => {
		const scheduler = Scheduler.withThreads({ maxWorkers: 2 });
		const plugin = new PynisherPlugin({ cpuTimeLimit: "200ms" });
		const limited = scheduler.task(job("spinForever"), { plugins: [plugin] });
		// Spun by CPU time: on a busy machine, 1200 ms of wall time may give it less than 400 ms of CPU.
		const free = scheduler.task(job("spinCpu"));
		const after = scheduler.task(job("add"));
		const { futures } = await runAll(scheduler, () => [limited.submit(), free.submit(1200)]);
		assert.ok(futures[0]?.exception instanceof CpuTimeLimitError);
		assert.equal(futures[1]?.state, "result", `${futures[1]?.exception}`);
		assert.ok((futures[1]?.usage?.cpuMs ?? 0) > 400, "the free task spent its own CPU time");
		const second = await runAll(scheduler, () => [after.submit(1, 2), limited.submit()]);
		assert.equal(await second.futures[0], 3);
		assert.ok(second.futures[1]?.exception instanceof CpuTimeLimitError);
	});

	it("40 calls in a row hitting limits leave the pool healthy and no stray threads", async () => {
		const scheduler = Scheduler.withThreads({ maxWorkers: 2 });
		const plugin = new PynisherPlugin({ wallTimeLimit: "30ms" });
		const task = scheduler.task(plain("spinForever"), { plugins: [plugin] });
		const add = scheduler.task(plain("add"));
		let limitEvents = 0;
		task.on(plugin.WALL_TIME_LIMIT_REACHED, () => limitEvents++);
		await runAll(scheduler, () => [add.submit(0, 0)]);
		const osThreads = (): number => readdirSync("/proc/self/task").length;
		const osThreadsBefore = osThreads();
		let peakThreads = 0;
		let peakStarted = 0;
		scheduler.on(Scheduler.FUTURE_DONE, () => {
			peakThreads = Math.max(peakThreads, threadCounts(scheduler)?.alive ?? 0);
			peakStarted = Math.max(peakStarted, threadCounts(scheduler)?.started ?? 0);
		});
		// 40 replaced threads: what grew with each replacement (threads remembered, descriptors) shows
		// as 40 times as much; more calls take longer and find nothing more.
		const { futures } = await runAll(scheduler, () => Array.from({ length: 40 }, () => task.submit()));
		assert.equal(limitEvents, 40);
		assert.ok(futures.every((future) => future.exception instanceof WallTimeLimitError));
		assert.ok(peakThreads <= 2, `peak threads ${peakThreads}`);
		// What the executor remembers of started threads does not grow with the threads replaced.
		assert.ok(peakStarted >= 1 && peakStarted <= 3, `started threads remembered: ${peakStarted}`);
		let osThreadsAfter = osThreads();
		for (let i = 0; i < 40 && osThreadsAfter > osThreadsBefore; i++) {
			await new Promise((resolve) => setTimeout(resolve, 50));
			osThreadsAfter = osThreads();
		}
		assert.ok(osThreadsAfter <= osThreadsBefore, `OS threads ${osThreadsBefore} before, ${osThreadsAfter} after: ${readdirSync("/proc/self/task").map((tid) => readFileSync(`/proc/self/task/${tid}/stat`, "utf8").slice(0, 40)).join(" | ")}`);
		const healthy = await runAll(scheduler, () => [add.submit(2, 2)]);
		assert.equal(await healthy.futures[0], 4);
		assert.equal(watchdogState(scheduler).active, false, "the watchdog stops when nothing is limited");
	});

	it("a CPU limit holds while the other thread is replaced many times (each stopped call ends its thread)", async () => {
		// Regression: the main thread keeps a schedstat descriptor per thread; once many threads had
		// come and gone, it closed descriptors still read by running calls, and a running call was
		// then measured on another thread, or not at all.
		const scheduler = Scheduler.withThreads({ maxWorkers: 2 });
		// Spun by CPU time, so that each passes its limit however small its share of a core.
		const long = scheduler.task(job("spinCpu"), { plugins: [new PynisherPlugin({ cpuTimeLimit: "1500ms" })] });
		const short = scheduler.task(job("spinCpu"), { plugins: [new PynisherPlugin({ cpuTimeLimit: "20ms" })] });
		const { futures } = await runAll(scheduler, () => [long.submit(6000), ...Array.from({ length: 14 }, () => short.submit(6000))]);
		const outcomes = futures.map((future) => (future?.exception instanceof CpuTimeLimitError ? "cpu" : `${future?.state}: ${String(future?.exception ?? future?.result)}`));
		assert.deepEqual(outcomes, Array.from({ length: 15 }, () => "cpu"));
		const observed = (futures[0]?.exception as CpuTimeLimitError).observed;
		assert.ok(observed >= 1500 && observed < 3000, `the long call was stopped at ${observed} ms of CPU`);
	});

	it("the watchdog runs only while limited calls run, and seldom while they are far from their limits", { skip: threadCpuOnly() }, async () => {
		const scheduler = Scheduler.withThreads({ maxWorkers: 2 });
		const plugin = new PynisherPlugin({ cpuTimeLimit: "10s", sampleInterval: "5ms" });
		const task = scheduler.task(job("sleep"), { plugins: [plugin] });
		let activeDuring = false;
		scheduler.on(Scheduler.STARTED, () => {
			scheduler.callLater("900ms", () => {
				activeDuring = watchdogState(scheduler).active;
			});
		});
		const { futures } = await runAll(scheduler, () => [task.submit(1500), task.submit(1500)]);
		assert.equal(futures.length, 2);
		assert.equal(activeDuring, true);
		// Sleeping calls use no CPU time: nothing needs a look before 10 s of it could have passed.
		// Sampled every 5 ms this would be about 300 ticks; each call is looked at about once a second, and a timer that
		// fires a fraction early on a busy machine adds a wake-up.
		assert.ok(watchdogState(scheduler).ticks <= 8, `${watchdogState(scheduler).ticks} ticks in 1.5 s`);
		assert.equal(watchdogState(scheduler).active, false);
	});

	it("a task sees its signal abort and gets its grace period before it is terminated", async () => {
		const dir = mkdtempSync(path.join(tmpdir(), "byop-grace-"));
		const marker = path.join(dir, "marker");
		const scheduler = Scheduler.withThreads({ maxWorkers: 1 });
		const plugin = new PynisherPlugin({ wallTimeLimit: "200ms", gracePeriod: "400ms" });
		const task = scheduler.task(job("waitForAbort"), { plugins: [plugin] });
		const started = performance.now();
		const { futures } = await runAll(scheduler, () => [task.submit(marker)]);
		const elapsed = performance.now() - started;
		assert.ok(futures[0]?.exception instanceof WallTimeLimitError);
		assert.equal(readFileSync(marker, "utf8"), "WallTimeLimitError");
		assert.ok(elapsed >= 550, `terminated after the grace period (${elapsed} ms)`);
		// A thread's CPU time is read from outside it as it is terminated; where it cannot be, the usage says so.
		const cpuMs = futures[0]?.usage?.cpuMs ?? Number.NaN;
		assert.ok(THREAD_CPU ? cpuMs >= 0 : cpuMs === -1, `cpu ${cpuMs}`);
	});

	it("a cancelled task also sees its signal during the grace period", async () => {
		const dir = mkdtempSync(path.join(tmpdir(), "byop-grace-"));
		const marker = path.join(dir, "marker");
		const scheduler = Scheduler.withProcesses({ maxWorkers: 1 });
		const plugin = new PynisherPlugin({ wallTimeLimit: "20s", gracePeriod: "300ms" });
		// Cancelled once it runs in its process (a process may take a while to start on a busy machine).
		const cancelOnStart: Plugin = { name: "cancel-on-start", started: (future) => void scheduler.callLater("300ms", () => future.cancel()) };
		const task = scheduler.task(job("waitForAbort"), { plugins: [plugin, cancelOnStart] });
		const { futures } = await runAll(scheduler, () => [task.submit(marker)]);
		assert.equal(futures[0]?.cancelled, true);
		assert.equal(readFileSync(marker, "utf8"), "CancelledError");
		// Read as the process was killed, at the end of the grace period.
		assert.ok((futures[0]?.usage?.cpuMs ?? -1) >= 0, `cpu ${futures[0]?.usage?.cpuMs}`);
		assert.ok((futures[0]?.usage?.wallMs ?? 0) >= 300, `wall ${futures[0]?.usage?.wallMs}`);
	});
});

describe("limit()", () => {
	it("runs one call under limits without a scheduler, with the same errors", async () => {
		const add = limit<[number, number], number>(job("add"), { wallTimeLimit: "5s" });
		assert.equal(await add(20, 22), 42);
		const sleepy = limit(job("sleep"), { wallTimeLimit: "200ms" });
		await assert.rejects(sleepy(10_000), WallTimeLimitError);
		const spinner = limit(job("spinForever"), { cpuTimeLimit: "200ms", executor: "processes" });
		await assert.rejects(spinner(), CpuTimeLimitError);
		const failing = limit(job("fail"), {});
		await assert.rejects(failing("plain"), { message: "plain" });
		assert.throws(() => limit(job("add"), { executor: "gpu" as "threads" }), /`executor`/);
		assert.throws(() => limit({ module: "" }, {}), /`ref.module`/);
		await Promise.all([add.close(), sleepy.close(), spinner.close(), failing.close()]);
	});

	it("keeps its process warm from call to call until close(), which cancels what still runs", async () => {
		const before = new Set(childPids());
		const add = limit<[number, number], number>(plain("add"), { executor: "processes", maxWorkers: 1, wallTimeLimit: "10s" });
		assert.equal(await add(1, 1), 2);
		const first = childPids().filter((pid) => !before.has(pid));
		assert.equal(first.length, 1, "one process serves the wrapper");
		assert.equal(await add(2, 2), 4);
		assert.deepEqual(childPids().filter((pid) => !before.has(pid)), first, "the next call runs in the same process");
		const sleep = limit(plain("sleep"), { executor: "processes", maxWorkers: 1 });
		// Its rejection is awaited from the start: close() may reject it before it returns.
		const long = assert.rejects(sleep(30_000), CancelledError);
		await delay(300);
		await sleep.close();
		await long;
		await add.close();
		assert.equal(alive(first[0]!), false, "close() ended the process");
		// A closed wrapper starts again at its next call.
		assert.equal(await add(3, 3), 6);
		await add[Symbol.asyncDispose]();
	});

	it("never keeps a program alive that did not close it", async () => {
		const program = fileURLToPath(new URL("./fixtures/limit-exit.ts", import.meta.url));
		const child = spawn(process.execPath, ["--import", "tsx", program], { stdio: ["ignore", "pipe", "inherit"] });
		let output = "";
		child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
		const code = await new Promise<number | null>((resolve) => {
			const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
			child.on("exit", (exitCode) => {
				clearTimeout(timer);
				resolve(exitCode);
			});
		});
		assert.equal(code, 0, "the program exited on its own");
		assert.equal(output.trim(), "3 5");
	});
});

/** The pids of this process's children. */
function childPids(): number[] {
	const pids: number[] = [];
	for (const tid of readdirSync("/proc/self/task")) {
		const text = readFileSync(`/proc/self/task/${tid}/children`, "utf8").trim();
		if (text !== "") {
			pids.push(...text.split(" ").map(Number));
		}
	}
	return pids.filter(alive);
}

