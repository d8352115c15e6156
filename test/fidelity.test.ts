// Limits hold at every edge: the end of a call, what the call started, what it leaves behind.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { type Future, Scheduler } from "../src/index.ts";
import { CpuTimeLimitError, MemoryLimitError, PynisherPlugin, type PynisherOptions } from "../src/pynisher/index.ts";
import { alive, delay, type ExecutorKind, make, runAll } from "./helpers.ts";

function fidelity(name: string) {
	return { module: new URL("./fixtures/fidelity.mjs", import.meta.url), name };
}

function limited(scheduler: Scheduler, name: string, options: PynisherOptions) {
	return scheduler.task(fidelity(name), { plugins: [new PynisherPlugin(options)] });
}

describe("the end of a call", () => {
	for (const limit of [{ cpuTimeLimit: "100ms" }, { wallTimeLimit: "100ms" }] as const) {
		it(`a process stopped by its ${Object.keys(limit)[0]} at the end of its call is never handed the next call`, async () => {
			const scheduler = Scheduler.withProcesses({ maxWorkers: 1 });
			const spin = limited(scheduler, "spin", limit);
			const add = scheduler.task(fidelity("add"));
			const { futures } = await runAll(scheduler, () => {
				const all: (Future | undefined)[] = [];
				for (let i = 0; i < 25; i++) {
					all.push(spin.submit(95 + (i % 10)), add.submit(i, 1));
				}
				return all;
			});
			const innocent = futures.filter((future) => future.taskName.endsWith("#add"));
			assert.equal(innocent.length, 25);
			const failed = innocent.filter((future) => future.state !== "result");
			assert.deepEqual(
				failed.map((future) => String(future.exception)),
				[],
				"no unlimited call failed",
			);
		});
	}

	for (const kind of ["threads", "processes"] as const) {
		it(`on ${kind}, a call that ends past its CPU limit ends with the limit's error, and a result reports usage within it`, async () => {
			const scheduler = make(kind, 2);
			// Spins by CPU time, not wall time, so that the calls straddle the limit however busy the machine is.
			const spin = limited(scheduler, "spinCpu", { cpuTimeLimit: "100ms" });
			const { futures } = await runAll(scheduler, () => Array.from({ length: 30 }, (_, i) => spin.submit(90 + (i % 20))));
			let results = 0;
			for (const future of futures) {
				if (future.state === "result") {
					results++;
					assert.ok((future.usage?.cpuMs ?? 0) < 100, `a result reported ${future.usage?.cpuMs} ms of CPU under a 100 ms limit`);
				} else {
					assert.ok(future.exception instanceof CpuTimeLimitError, String(future.exception));
					assert.ok((future.exception as CpuTimeLimitError).observed >= 100);
				}
			}
			assert.ok(results < futures.length, "calls past the limit were stopped");
		});
	}
});

describe("what a call started", () => {
	const cases: [ExecutorKind, string, PynisherOptions | "cancel"][] = [
		["threads", "wall limit", { wallTimeLimit: "1s" }],
		["threads", "cancel", "cancel"],
		["processes", "wall limit", { wallTimeLimit: "1s" }],
		["processes", "cancel", "cancel"],
		["sequential", "wall limit", { wallTimeLimit: "1s" }],
	];
	for (const [kind, how, limits] of cases) {
		it(`on ${kind}, a ${how} ends the call's children, grandchildren and detached children within a second`, async () => {
			const dir = mkdtempSync(path.join(tmpdir(), "byop-tree-"));
			const pidFile = path.join(dir, "pids.json");
			const scheduler = make(kind, 1);
			const task = limits === "cancel" ? scheduler.task(fidelity("spawnTree")) : limited(scheduler, "spawnTree", limits);
			let ended = 0;
			task.on(task.DONE, () => (ended = performance.now()));
			const { futures } = await runAll(scheduler, () => {
				const future = task.submit(pidFile);
				if (limits === "cancel") {
					// Once the call has started its processes (it writes their ids then): on a loaded
					// machine, a thread or process may take longer than a fixed delay to get there.
					const cancelWhenStarted = (): void => {
						if (existsSync(pidFile) && readFileSync(pidFile, "utf8").endsWith("]")) {
							future?.cancel();
						} else {
							scheduler.callLater("20ms", cancelWhenStarted);
						}
					};
					cancelWhenStarted();
				}
				return [future];
			});
			assert.equal(futures[0]?.state, limits === "cancel" ? "cancelled" : "exception");
			const pids = JSON.parse(readFileSync(pidFile, "utf8")) as number[];
			assert.equal(pids.length, 4);
			while (pids.some(alive) && performance.now() - ended < 1000) {
				await delay(20);
			}
			const left = pids.filter(alive);
			for (const pid of left) {
				process.kill(pid, "SIGKILL");
			}
			assert.deepEqual(left, [], "every process the call started is gone");
		});
	}

	for (const kind of ["threads", "processes", "sequential"] as const) {
		it(`on ${kind}, a nested worker's CPU time counts against the call's CPU limit`, async () => {
			const scheduler = make(kind, 1);
			const task = limited(scheduler, "nestedSpin", { cpuTimeLimit: "300ms", wallTimeLimit: "20s" });
			const { futures } = await runAll(scheduler, () => [task.submit(3000), task.submit(3000)]);
			for (const future of futures) {
				assert.ok(future.exception instanceof CpuTimeLimitError, String(future.exception ?? future.result));
				// On threads, the call moves to a process, where every thread of the call counts.
				assert.equal(future.usage?.where, "process");
			}
		});
	}

	it("on threads, a nested worker's memory counts against the call's memory limit", async () => {
		const scheduler = make("threads", 1);
		const task = limited(scheduler, "nestedHold", { memoryLimit: "128mb", wallTimeLimit: "20s" });
		const { futures } = await runAll(scheduler, () => [task.submit(240)]);
		assert.ok(futures[0]?.exception instanceof MemoryLimitError, String(futures[0]?.exception ?? futures[0]?.result));
	});

	for (const kind of ["threads", "processes"] as const) {
		it(`on ${kind}, a child process's CPU time counts against the call's CPU limit`, async () => {
			const scheduler = make(kind, 1);
			const task = limited(scheduler, "childSpin", { cpuTimeLimit: "300ms", wallTimeLimit: "20s" });
			const { futures } = await runAll(scheduler, () => [task.submit(3000)]);
			assert.ok(futures[0]?.exception instanceof CpuTimeLimitError, String(futures[0]?.exception ?? futures[0]?.result));
			assert.equal(futures[0]?.usage?.where, "process");
		});
	}

	it("on threads, a call with only a wall limit that starts a child stays on its thread", async () => {
		const scheduler = make("threads", 1);
		const task = limited(scheduler, "childSpin", { wallTimeLimit: "20s" });
		const { futures } = await runAll(scheduler, () => [task.submit(100)]);
		assert.equal(futures[0]?.result, "child done");
		assert.equal(futures[0]?.usage?.where, "thread");
	});
});

describe("what a call leaves behind", () => {
	for (const kind of ["threads", "processes"] as const) {
		it(`on ${kind}, work left running after a call ends is stopped, and the next call neither waits for it nor pays for it`, async () => {
			const scheduler = make(kind, 1);
			const leave = limited(scheduler, "leaveSpin", { wallTimeLimit: "1s", cpuTimeLimit: "500ms" });
			const next = limited(scheduler, "sleep", { wallTimeLimit: "5s", cpuTimeLimit: "500ms" });
			let first: Future | undefined;
			let second: Future | undefined;
			scheduler.on(Scheduler.STARTED, () => {
				first = leave.submit();
			});
			// The next call comes once what the first left behind is spinning.
			leave.on(leave.DONE, () => scheduler.callLater("300ms", () => (second = next.submit(300, "innocent"))));
			await scheduler.run({ timeout: "15s", wait: false, onException: "continue", onCancelled: "continue" });
			assert.equal(first?.result, "left");
			assert.equal(second?.state, "result", `the next call ended as ${second?.state}: ${String(second?.exception)}`);
			assert.ok((second?.usage?.cpuMs ?? 1000) < 100, `the next call was charged ${second?.usage?.cpuMs} ms of CPU`);
		});

		it(`on ${kind}, a worker thread left spinning by a call is stopped with the worker that ran the call`, async () => {
			const scheduler = make(kind, 1);
			const leave = scheduler.task(fidelity("leaveWorker"));
			const where = scheduler.task(fidelity("whoAmI"));
			const { futures } = await runAll(scheduler, () => [leave.submit(), where.submit()]);
			const [left, next] = futures.map((future) => future.result ?? String(future.exception));
			assert.match(String(left), /^\d+:\d+$/);
			assert.notEqual(next, left, "the next call ran elsewhere: the thread or process that ran the first was ended");
		});

		it(`on ${kind}, a call queued right behind one that leaves work running gets a fresh worker`, async () => {
			const scheduler = make(kind, 1);
			const leave = scheduler.task(fidelity("leaveSpin"));
			const add = scheduler.task(fidelity("add"));
			const { futures } = await runAll(scheduler, () => [leave.submit(), add.submit(1, 2), leave.submit(), add.submit(3, 4)]);
			assert.deepEqual(
				futures.map((future) => future.result ?? String(future.exception)),
				["left", 3, "left", 7],
			);
		});
	}
});

describe('"auto" limits beside neighbours', () => {
	it("a call holding SharedArrayBuffers past its limit is held to its own limit beside idle neighbours", async () => {
		// Three idle neighbours: the process-wide watch allows the budgets of all four calls.
		const scheduler = make("threads", 4);
		const options = { memoryLimit: "128mb", wallTimeLimit: "20s" } as const;
		const neighbour = limited(scheduler, "sleep", options);
		const shared = limited(scheduler, "holdShared", options);
		const { futures } = await runAll(scheduler, () => [neighbour.submit(2500, "idle"), neighbour.submit(2500, "idle"), neighbour.submit(2500, "idle"), shared.submit(180, 1500)]);
		assert.deepEqual(
			futures.slice(0, 3).map((future) => future.result),
			["idle", "idle", "idle"],
		);
		assert.ok(futures[3]?.exception instanceof MemoryLimitError, String(futures[3]?.exception ?? futures[3]?.result));
		assert.equal(futures[3]?.usage?.where, "process");
	});
});

describe("heap caps that a flag would lift", () => {
	/** Runs a program in a child process (heap flags are process-wide); returns what it printed. */
	function runProgram(source: string, nodeFlags: string[] = []): { stdout: string; stderr: string; code: number | null } {
		const file = fileURLToPath(new URL(`./fixtures/.heap-${process.pid}-${Date.now()}.ts`, import.meta.url));
		writeFileSync(file, source);
		try {
			const result = spawnSync(process.execPath, [...nodeFlags, "--import", "tsx", file], { encoding: "utf8", timeout: 60_000 });
			return { stdout: result.stdout, stderr: result.stderr, code: result.status };
		} finally {
			rmSync(file, { force: true });
		}
	}

	const program = (lift: boolean) => `import { Scheduler } from "../../src/index.ts";
		import { PynisherPlugin } from "../../src/pynisher/index.ts";
		const ref = (name: string) => ({ module: new URL("./fidelity.mjs", import.meta.url), name });
		const scheduler = Scheduler.withThreads({ maxWorkers: 1 });
		const lift = scheduler.task(ref("liftHeapCaps"));
		const hog = scheduler.task(ref("holdHeap"), { plugins: [new PynisherPlugin({ memoryLimit: "64mb", memoryKind: "heap" })] });
		const futures: any[] = [];
		scheduler.on(Scheduler.STARTED, () => {
			const first = ${lift} ? lift.submit() : undefined;
			const hold = () => futures.push(hog.submit(300));
			if (first === undefined) hold(); else first.then(hold);
		});
		await scheduler.run({ onException: "continue" });
		console.log(JSON.stringify(futures.map((f) => [f.exception?.name ?? f.result, f.usage?.where])));`;

	it("a task that raises V8's heap limit at run time does not lift the heap caps of later calls", () => {
		const result = runProgram(program(true));
		assert.equal(result.code, 0, result.stderr);
		assert.deepEqual(JSON.parse(result.stdout.trim()), [["MemoryLimitError", "process"]]);
		assert.match(result.stderr, /BYOP_HEAP_FLAG/);
	});

	it("--max-heap-size on node's command line sends heap-limited thread calls to a process", () => {
		const result = runProgram(program(false), ["--max-heap-size=4096"]);
		assert.equal(result.code, 0, result.stderr);
		assert.deepEqual(JSON.parse(result.stdout.trim()), [["MemoryLimitError", "process"]]);
	});
});

describe("the call after a stop", () => {
	/**
	 * Runs `count` calls one after another, each stopped by its limit, 150 ms apart; returns how
	 * long each waited from its submit to its start in its thread (its end less its wall time).
	 */
	async function startDelays(scheduler: Scheduler, limits: PynisherOptions, count: number, firstAfterMs: number): Promise<number[]> {
		const task = limited(scheduler, "spin", limits);
		const delays: number[] = [];
		let submittedAt = 0;
		const submit = (): void => {
			submittedAt = performance.now();
			task.submit(60_000);
		};
		task.on(task.EXCEPTION, (future) => {
			delays.push(performance.now() - submittedAt - (future.usage?.wallMs ?? 0));
			if (delays.length < count) {
				scheduler.callLater("150ms", submit);
			}
		});
		scheduler.on(Scheduler.STARTED, () => scheduler.callLater(firstAfterMs / 1000, submit));
		await scheduler.run({ onException: "continue" });
		return delays;
	}

	const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

	for (const limits of [{ wallTimeLimit: "300ms" }, { cpuTimeLimit: "300ms" }] as const) {
		it(`a thread stopped by its ${Object.keys(limits)[0]} is replaced at once: the next call does not wait for a thread to start`, async () => {
			const delays = await startDelays(Scheduler.withThreads({ maxWorkers: 2 }), limits, 6, 1);
			// A thread starts in about 60 ms here; a call that finds one started begins within a few ms.
			assert.ok(median(delays.slice(1)) < 40, `waited ${delays.map((ms) => ms.toFixed(0)).join(", ")} ms to start`);
		});
	}

	it("minWorkers threads are started when the run starts", async () => {
		const delays = await startDelays(Scheduler.withThreads({ maxWorkers: 2, minWorkers: 2 }), { wallTimeLimit: "300ms" }, 1, 2500);
		assert.ok(delays[0]! < 40, `the first call waited ${delays[0]?.toFixed(0)} ms to start`);
	});
});

describe("a process that holds only its modules", () => {
	it("is reused for the next memory-limited call of a task whose module is large", async () => {
		const scheduler = Scheduler.withProcesses({ maxWorkers: 1 });
		const task = scheduler.task({ module: new URL("./fixtures/large-module.mjs", import.meta.url), name: "whereAmI" }, { plugins: [new PynisherPlugin({ memoryLimit: "512mb", memoryKind: "rss" })] });
		const { futures } = await runAll(scheduler, () => Array.from({ length: 4 }, () => task.submit()));
		const pids = futures.map((future) => (future.result as { pid: number } | undefined)?.pid ?? String(future.exception));
		assert.equal(new Set(pids).size, 1, `the calls ran in ${JSON.stringify(pids)}`);
	});
});
