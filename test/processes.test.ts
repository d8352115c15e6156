import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { type Future, Scheduler, WorkerCrashedError } from "../src/index.ts";
import { MemoryLimitError, PynisherPlugin, WallTimeLimitError } from "../src/pynisher/index.ts";
import { alive, delay, job, poolPids, runAll } from "./helpers.ts";

const root = fileURLToPath(new URL("..", import.meta.url));

function tempFile(name: string): string {
	return path.join(mkdtempSync(path.join(tmpdir(), "byop-proc-")), name);
}

/** Runs a TypeScript program in a fresh node (under tsx) and returns what it printed. */
function runProgram(source: string, env: NodeJS.ProcessEnv = {}): { stdout: string; stderr: string; code: number | null } {
	const file = path.join(root, "test", "fixtures", `.program-${process.pid}-${Date.now()}.ts`);
	writeFileSync(file, source);
	try {
		const stdout = execFileSync(process.execPath, ["--import", "tsx", file], { cwd: root, env: { ...process.env, ...env }, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 60_000 });
		return { stdout, stderr: "", code: 0 };
	} catch (error) {
		const failure = error as { stdout?: string; stderr?: string; status?: number | null };
		return { stdout: failure.stdout ?? "", stderr: failure.stderr ?? "", code: failure.status ?? null };
	} finally {
		execFileSync("rm", ["-f", file]);
	}
}

describe("process executor", () => {
	it("reuses warm processes between calls", async () => {
		const scheduler = Scheduler.withProcesses({ maxWorkers: 1 });
		const task = scheduler.task(job("default"));
		const { futures } = await runAll(scheduler, () => [task.submit("a"), task.submit("b"), task.submit("c")]);
		assert.deepEqual(
			futures.map((future) => future.result),
			["a", "b", "c"],
		);
		for (const future of futures) {
			assert.equal(future.usage?.where, "process");
		}
		// One process served all three: its pid is the same, so later calls were quick.
		const warm = futures.slice(1).map((future) => future.usage?.wallMs ?? 1000);
		assert.ok(Math.max(...warm) < 500, `warm calls took ${warm.join(", ")} ms`);
	});

	it("a call under an RSS limit is not charged for memory an earlier call left in the process", async () => {
		// Regression: what a call leaves behind (a cache, garbage not yet collected, memory the
		// allocator keeps) still counts as resident; a process reused with it stopped the next call
		// far below its own use. Such a process is now replaced.
		const scheduler = Scheduler.withProcesses({ maxWorkers: 1 });
		const task = scheduler.task(job("keepBuffers"), { plugins: [new PynisherPlugin({ memoryLimit: "400mb", memoryKind: "rss" })] });
		const { futures } = await runAll(scheduler, () => [task.submit(250), task.submit(200), task.submit(1), task.submit(1)]);
		// Each call that kept much found a fresh process; a call that kept little leaves its process to the next.
		assert.deepEqual(
			futures.map((future) => future.result ?? String(future.exception)),
			[250, 200, 1, 2],
		);
	});

	it("a process stopped by a limit gets its successor at once, before the next call asks for one", async () => {
		const scheduler = Scheduler.withProcesses({ maxWorkers: 1 });
		const spin = scheduler.task(job("spinForever"), { plugins: [new PynisherPlugin({ wallTimeLimit: "100ms" })] });
		const echo = scheduler.task(job("default"));
		let before: number[] = [];
		let after: number[] = [];
		let next: Future | undefined;
		scheduler.on(Scheduler.STARTED, () => {
			// The process warmed at the start of the run, which takes the spinning call.
			before = poolPids(scheduler);
			spin.on(spin.DONE, () => {
				// The next call comes later: by then its process has been started.
				scheduler.callLater("1s", () => {
					after = poolPids(scheduler);
					next = echo.submit("next");
				});
			});
		});
		const { futures } = await runAll(scheduler, () => [spin.submit()]);
		assert.ok(futures[0]?.exception instanceof WallTimeLimitError, String(futures[0]?.exception));
		assert.equal(after.length, 1, "a successor was running before the next call");
		assert.equal(before.length, 1);
		assert.notEqual(after[0], before[0], "the successor is a new process");
		assert.equal(next?.result, "next");
		assert.equal(next?.usage?.where, "process");
	});

	it("kills the task's whole process group: a spawned `sleep 60` does not outlive a wall limit", async () => {
		const pidFile = tempFile("sleeper.pid");
		const scheduler = Scheduler.withProcesses({ maxWorkers: 1 });
		const plugin = new PynisherPlugin({ wallTimeLimit: "1500ms" });
		const task = scheduler.task(job("spawnSleeper"), { plugins: [plugin] });
		const { futures } = await runAll(scheduler, () => [task.submit(pidFile)]);
		assert.ok(futures[0]?.exception instanceof WallTimeLimitError, `${futures[0]?.exception}`);
		const sleeper = Number(readFileSync(pidFile, "utf8"));
		assert.ok(sleeper > 0);
		await delay(200);
		assert.equal(alive(sleeper), false, "the spawned sleep was killed with the group");
	});

	for (const [what, name, args, check] of [
		["process.exit(0)", "exit", [0], (error: WorkerCrashedError) => assert.equal(error.exitCode, 0)],
		["process.exit(3)", "exit", [3], (error: WorkerCrashedError) => assert.equal(error.exitCode, 3)],
		["process.abort()", "abort", [], (error: WorkerCrashedError) => assert.equal(error.signal, "SIGABRT")],
		["an uncaught exception outside the task", "throwOutside", [], (error: WorkerCrashedError) => assert.match(String((error.cause as Error)?.message), /outside/)],
		["an unhandled rejection", "rejectUnhandled", [], (error: WorkerCrashedError) => assert.match(String((error.cause as Error)?.message), /nobody listened/)],
		["a fatal signal", "killSelf", ["SIGSEGV"], (error: WorkerCrashedError) => assert.equal(error.signal, "SIGSEGV")],
	] as const) {
		it(`turns ${what} into a WorkerCrashedError and the next call runs`, async () => {
			const scheduler = Scheduler.withProcesses({ maxWorkers: 1 });
			const crash = scheduler.task(job(name));
			const add = scheduler.task(job("add"));
			const { futures } = await runAll(scheduler, () => [crash.submit(...args), add.submit(1, 2)]);
			const error = futures[0]?.exception as WorkerCrashedError;
			assert.ok(error instanceof WorkerCrashedError, `${error}`);
			assert.equal(error.code, "ERR_WORKER_CRASHED");
			check(error);
			assert.equal(await futures[1], 3);
		});
	}

	it("a process that fails to start fails its call with WorkerCrashedError, and later runs work", async () => {
		const scheduler = Scheduler.withProcesses({ maxWorkers: 1 });
		const task = scheduler.task(job("add"));
		process.execArgv.push("--no-such-node-flag");
		let broken;
		try {
			broken = await runAll(scheduler, () => [task.submit(1, 2)]);
		} finally {
			process.execArgv.pop();
		}
		const error = broken.futures[0]?.exception as WorkerCrashedError;
		assert.ok(error instanceof WorkerCrashedError, `${error}`);
		assert.match(error.message, /failed to start|ended with exit code 9/);
		assert.equal(error.exitCode, 9);
		const healthy = await runAll(scheduler, () => [task.submit(2, 3)]);
		assert.equal(await healthy.futures[0], 5);
	});

	it("enforces a true RSS limit on Buffers, which a heap cap does not see", async () => {
		const scheduler = Scheduler.withProcesses({ maxWorkers: 1 });
		const plugin = new PynisherPlugin({ memoryLimit: "200mb", memoryKind: "rss" });
		const task = scheduler.task(job("holdBuffers"), { plugins: [plugin] });
		let events = 0;
		task.on(plugin.MEMORY_LIMIT_REACHED, () => events++);
		const { futures } = await runAll(scheduler, () => [task.submit(600, 5000)]);
		const error = futures[0]?.exception as MemoryLimitError;
		assert.ok(error instanceof MemoryLimitError, `${error}`);
		assert.equal(error.memoryKind, "rss");
		assert.ok(error.observed > 200 * 1024 * 1024, `observed ${error.observed}`);
		assert.equal(events, 1);
		assert.ok((futures[0]?.usage?.peakMemoryBytes ?? 0) > 200 * 1024 * 1024);
	});

	it("memoryKind rss on threads runs the call in a process", async () => {
		const scheduler = Scheduler.withThreads({ maxWorkers: 1 });
		const plugin = new PynisherPlugin({ memoryLimit: "200mb", memoryKind: "rss" });
		const task = scheduler.task(job("holdBuffers"), { plugins: [plugin] });
		const { futures } = await runAll(scheduler, () => [task.submit(20, 10), task.submit(600, 5000)]);
		assert.equal(futures[0]?.result, 20);
		assert.equal(futures[0]?.usage?.where, "process");
		assert.ok(futures[1]?.exception instanceof MemoryLimitError);
	});

	it("auto: a thread task holding 600 MB of Buffers under a 200 MB limit escalates to a process and ends with MemoryLimitError", async () => {
		const scheduler = Scheduler.withThreads({ maxWorkers: 2 });
		const plugin = new PynisherPlugin({ memoryLimit: "200mb" });
		const task = scheduler.task(job("holdBuffers"), { plugins: [plugin] });
		const small = scheduler.task(job("holdBuffers"), { plugins: [plugin] });
		let events = 0;
		task.on(plugin.MEMORY_LIMIT_REACHED, () => events++);
		const { futures } = await runAll(scheduler, () => [small.submit(10, 50), task.submit(600, 5000)]);
		assert.equal(futures[0]?.result, 10);
		assert.equal(futures[0]?.usage?.where, "thread", "a call within its limit stays in its thread");
		const error = futures[1]?.exception as MemoryLimitError;
		assert.ok(error instanceof MemoryLimitError, `${error}`);
		assert.equal(error.memoryKind, "rss");
		assert.equal(futures[1]?.usage?.where, "process");
		assert.equal(events, 1);
		// The task that escalated goes straight to a process from then on.
		const again = await runAll(scheduler, () => [task.submit(5, 10)]);
		assert.equal(again.futures[0]?.usage?.where, "process");
	});

	// 140 MB under a 128 MB limit: once the thread has started (the first call), the process grows
	// by less than the watch allows for the threads themselves, and the allocator may reuse pages
	// an earlier call freed, so that the process does not grow at all. What the call's thread
	// measured decides, while the call awaits or when it ends.
	for (const [name, args] of [["holdBuffers", [140, 400]], ["fillBuffers", [140]]] as const) {
		it(`auto: memory outside the heap a little past the limit escalates, whether or not the process grows (${name}, ${name === "fillBuffers" ? "synchronous" : "awaiting"})`, async () => {
			const scheduler = Scheduler.withThreads({ maxWorkers: 1 });
			const plugin = new PynisherPlugin({ memoryLimit: "128mb" });
			const within = scheduler.task(job("keepBuffers"), { plugins: [plugin] });
			const over = scheduler.task(job(name), { plugins: [plugin] });
			const { futures } = await runAll(scheduler, () => [within.submit(40), over.submit(...args)]);
			assert.equal(futures[0]?.result, 40);
			assert.equal(futures[0]?.usage?.where, "thread", "a call within its limit stays in its thread");
			const error = futures[1]?.exception as MemoryLimitError;
			assert.ok(error instanceof MemoryLimitError, `${futures[1]?.result ?? error} in a ${futures[1]?.usage?.where}`);
			assert.equal(error.memoryKind, "rss");
			assert.equal(futures[1]?.usage?.where, "process");
		});
	}

	it("auto: what earlier calls kept or dropped outside the heap is not charged to the next call, and what it grows is", async () => {
		const scheduler = Scheduler.withThreads({ maxWorkers: 1 });
		const plugin = new PynisherPlugin({ memoryLimit: "128mb" });
		const kept = scheduler.task(job("keepBuffers"), { plugins: [plugin] });
		const dropped = scheduler.task(job("fillBuffers"), { plugins: [plugin] });
		const over = scheduler.task(job("holdBuffers"), { plugins: [plugin] });
		// The thread keeps 100 MB (a cache), then a call adds 60 MB: 160 MB in all, 60 MB its own.
		// Then a call drops 100 MB, which the next one's 200 MB would reuse: that one passes its limit.
		const { futures } = await runAll(scheduler, () => [kept.submit(100), kept.submit(60), dropped.submit(100), over.submit(200, 400)]);
		assert.deepEqual(
			futures.map((future) => `${future.result ?? (future.exception as Error | undefined)?.name} in a ${future.usage?.where}`),
			["100 in a thread", "160 in a thread", "100 in a thread", "MemoryLimitError in a process"],
		);
	});

	it("escalate: false makes auto behave as heap: the call stays in its thread", async () => {
		const scheduler = Scheduler.withThreads({ maxWorkers: 1 });
		const plugin = new PynisherPlugin({ memoryLimit: "64mb", escalate: false });
		const task = scheduler.task(job("holdBuffers"), { plugins: [plugin] });
		const { futures } = await runAll(scheduler, () => [task.submit(200, 300)]);
		assert.equal(futures[0]?.result, 200);
		assert.equal(futures[0]?.usage?.where, "thread");
	});

	it("sequential: a limited call runs in a process and the main thread stays free", async () => {
		const scheduler = Scheduler.withSequential();
		const plugin = new PynisherPlugin({ cpuTimeLimit: "300ms" });
		const limited = scheduler.task(job("spinForever"), { plugins: [plugin] });
		const free = scheduler.task(job("add"));
		let ticks = 0;
		const timer = setInterval(() => ticks++, 20);
		const { futures } = await runAll(scheduler, () => [limited.submit(), free.submit(1, 1)]);
		clearInterval(timer);
		assert.equal(futures[0]?.usage?.where, "process");
		assert.equal(futures[1]?.usage?.where, "main");
		assert.ok(ticks >= 5, `the main thread kept running timers (${ticks})`);
	});

	it("a process-wide --max-old-space-size sends heap-limited thread tasks to a process, with one warning", () => {
		const result = runProgram(
			`import { Scheduler } from "../../src/index.ts";
			import { PynisherPlugin } from "../../src/pynisher/index.ts";
			const scheduler = Scheduler.withThreads({ maxWorkers: 1 });
			const task = scheduler.task({ module: new URL("./jobs.ts", import.meta.url), name: "add" }, { plugins: [new PynisherPlugin({ memoryLimit: "128mb", memoryKind: "heap" })] });
			const futures = [];
			scheduler.on(Scheduler.STARTED, () => { futures.push(task.submit(1, 2), task.submit(3, 4)); });
			await scheduler.run();
			console.log(JSON.stringify(futures.map((f) => [f.result, f.usage.where])));`,
			{ NODE_OPTIONS: "--max-old-space-size=4096" },
		);
		assert.equal(result.code, 0, result.stderr);
		assert.deepEqual(JSON.parse(result.stdout.trim()), [
			[3, "process"],
			[7, "process"],
		]);
	});

	for (const [when, delayMs] of [
		["while they start", 0],
		["while a task spins", 3000],
	] as const) {
		it(`children exit when their parent dies ${when}`, async () => {
			const pidFile = tempFile("children.json");
			const program = path.join(root, "test", "fixtures", `.orphan-${process.pid}-${delayMs}.ts`);
			writeFileSync(
				program,
				`import { writeFileSync } from "node:fs";
				import { Scheduler } from "../../src/index.ts";
				import { poolPids } from "../helpers.ts";
				const scheduler = Scheduler.withProcesses({ maxWorkers: 2 });
				const task = scheduler.task({ module: new URL("./plain.mjs", import.meta.url), name: "spinForever" });
				scheduler.on(Scheduler.STARTED, () => {
					task.submit();
					task.submit();
					setTimeout(() => writeFileSync(${JSON.stringify(pidFile)}, JSON.stringify(poolPids(scheduler))), ${delayMs});
				});
				await scheduler.run();`,
			);
			const parent = spawn(process.execPath, ["--import", "tsx", program], { cwd: root, stdio: "ignore" });
			try {
				let pids: number[] = [];
				for (let i = 0; i < 200 && pids.length === 0; i++) {
					await delay(50);
					try {
						pids = JSON.parse(readFileSync(pidFile, "utf8")) as number[];
					} catch {
						// Not written yet.
					}
				}
				assert.equal(pids.length, 2, "two children were started");
				parent.kill("SIGKILL");
				for (let i = 0; i < 100 && pids.some(alive); i++) {
					await delay(100);
				}
				assert.deepEqual(pids.filter(alive), [], "no child outlived its parent");
			} finally {
				parent.kill("SIGKILL");
				execFileSync("rm", ["-f", program]);
			}
		});
	}

	it("a program using every executor exits on its own and leaves no child process", () => {
		const result = runProgram(
			`import { execSync } from "node:child_process";
			import { Scheduler } from "../../src/index.ts";
			import { PynisherPlugin } from "../../src/pynisher/index.ts";
			const ref = { module: new URL("./jobs.ts", import.meta.url), name: "add" };
			const plugin = new PynisherPlugin({ wallTimeLimit: "10s", memoryLimit: "256mb", memoryKind: "rss" });
			for (const scheduler of [Scheduler.withSequential(), Scheduler.withThreads({ maxWorkers: 2 }), Scheduler.withProcesses({ maxWorkers: 2 })]) {
				const plain = scheduler.task(ref);
				const limited = scheduler.task(ref, { plugins: [plugin] });
				scheduler.on(Scheduler.STARTED, () => { plain.submit(1, 1); limited.submit(2, 2); });
				await scheduler.run();
			}
			// tsx keeps an esbuild service; every other child would be byop's.
			const children = execSync("ps -o comm= --ppid " + process.pid).toString().split("\\n").filter((name) => name.trim() === "node");
			console.log("children:" + children.length);`,
		);
		assert.equal(result.code, 0, result.stderr);
		assert.match(result.stdout, /children:0/);
	});
});
