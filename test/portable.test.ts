// The portable path (no /proc), taken here with BYOP_PORTABLE=1, as on macOS or Windows: what it
// enforces, where, and what it refuses to leave unenforced. The switch is set before byop loads
// (procAvailable() is decided once): its module is imported first.
import "./fixtures/portable-env.ts";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, it } from "node:test";

import { type FunctionRef, Scheduler, WorkerCrashedError, WorkerProtocolError } from "../src/index.ts";
import { WORKER_CPU_USAGE } from "../src/limits/placement.ts";
import { procAvailable } from "../src/procfs.ts";
import { CpuTimeLimitError, MemoryLimitError, PynisherPlugin, type PynisherOptions, WallTimeLimitError } from "../src/pynisher/index.ts";
import { alive, delay, runAll } from "./helpers.ts";

type Options = PynisherOptions;

function portable(name: string): FunctionRef {
	return { module: new URL("./fixtures/portable.mjs", import.meta.url), name };
}

/** Runs one call of `name` with `options` on a scheduler of `kind`, and returns its future. */
async function once(kind: "processes" | "sequential" | "threads", name: string, options: Options, ...args: unknown[]) {
	const scheduler = kind === "processes" ? Scheduler.withProcesses({ maxWorkers: 1 }) : kind === "threads" ? Scheduler.withThreads({ maxWorkers: 1 }) : Scheduler.withSequential();
	const task = scheduler.task(portable(name), { plugins: [new PynisherPlugin(options)] });
	const { futures } = await runAll(scheduler, () => [task.submit(...args)]);
	// A future is awaitable: it goes back wrapped, not as the async function's value.
	return { future: futures[0]! };
}

describe("the portable path (BYOP_PORTABLE=1)", () => {
	it("is taken when BYOP_PORTABLE=1, decided once", () => {
		assert.equal(procAvailable(), false);
		process.env["BYOP_PORTABLE"] = "0";
		try {
			assert.equal(procAvailable(), false, "read once: a later change does not switch paths");
		} finally {
			process.env["BYOP_PORTABLE"] = "1";
		}
	});

	for (const kind of ["processes", "sequential"] as const) {
		it(`stops a busy loop past its CPU limit in a process (${kind}), from the readings of the process's watcher`, async () => {
			const { future } = await once(kind, "spinForever", { cpuTimeLimit: "300ms" });
			const error = future.exception as CpuTimeLimitError;
			assert.ok(error instanceof CpuTimeLimitError, `${error}`);
			assert.ok(error.observed >= 300 && error.observed < 3000, `observed ${error.observed}`);
			assert.equal(future.usage?.where, "process");
			assert.ok((future.usage?.cpuMs ?? 0) >= 300, `cpu ${future.usage?.cpuMs}`);
		});
	}

	it("stops a call whose Buffers pass its memory limit in a process, however busy the call keeps its main thread", async () => {
		const { future } = await once("processes", "fillBuffersAndSpin", { memoryLimit: "160mb" }, 400);
		const error = future.exception as MemoryLimitError;
		assert.ok(error instanceof MemoryLimitError, `${error}`);
		assert.equal(error.memoryKind, "rss");
		assert.ok(error.observed > 160 * 1024 * 1024, `observed ${error.observed}`);
		assert.ok((future.usage?.peakMemoryBytes ?? 0) > 160 * 1024 * 1024, `peak ${future.usage?.peakMemoryBytes}`);
	});

	it("reports the CPU time a busy loop stopped by its wall limit used, and a call inside its limits returns with its usage", async () => {
		const { future: stopped } = await once("processes", "spinForever", { wallTimeLimit: "600ms" });
		assert.ok(stopped.exception instanceof WallTimeLimitError, `${stopped.exception}`);
		const { cpuMs = -1, wallMs = 0 } = stopped.usage ?? {};
		// The watcher's last reading before the kill: a busy loop has used CPU all along (on a loaded
		// machine, a fraction of a core).
		assert.ok(cpuMs >= 20 && cpuMs <= wallMs + 100, `cpu ${cpuMs} in ${wallMs} ms`);
		const { future: ok } = await once("processes", "spin", { cpuTimeLimit: "10s", memoryLimit: "512mb" }, 200);
		assert.equal(ok.state, "result", `${ok.exception}`);
		assert.ok((ok.usage?.cpuMs ?? 0) >= 10, `cpu ${ok.usage?.cpuMs}`);
		assert.ok((ok.usage?.peakMemoryBytes ?? 0) > 0);
	});

	it("a sleeping call in a warm process stays far below its CPU limit", async () => {
		const scheduler = Scheduler.withProcesses({ maxWorkers: 1 });
		const task = scheduler.task(portable("sleep"), { plugins: [new PynisherPlugin({ cpuTimeLimit: "2s" })] });
		const { futures } = await runAll(scheduler, () => [task.submit(50, "warm")]);
		assert.equal(futures[0]?.result, "warm");
		const second = await runAll(scheduler, () => [task.submit(600, "rested")]);
		assert.equal(second.futures[0]?.result, "rested");
		assert.ok((second.futures[0]?.usage?.cpuMs ?? 2000) < 500, `cpu ${second.futures[0]?.usage?.cpuMs}`);
	});

	it("runs a CPU-limited thread call where its CPU time can be read: on its thread with worker.cpuUsage(), else in a process, with one warning", async () => {
		const warnings: string[] = [];
		const onWarning = (warning: Error & { code?: string }): void => void warnings.push(warning.code ?? "");
		process.on("warning", onWarning);
		try {
			const scheduler = Scheduler.withThreads({ maxWorkers: 2 });
			const task = scheduler.task(portable("spinForever"), { plugins: [new PynisherPlugin({ cpuTimeLimit: "300ms" })] });
			const { futures } = await runAll(scheduler, () => [task.submit(), task.submit()]);
			await delay(10);
			for (const future of futures) {
				assert.ok(future.exception instanceof CpuTimeLimitError, `${future.exception}`);
				assert.ok((future.exception as CpuTimeLimitError).observed < 3000);
				assert.equal(future.usage?.where, WORKER_CPU_USAGE ? "thread" : "process");
			}
			assert.deepEqual(
				warnings.filter((code) => code === "BYOP_THREAD_CPU"),
				WORKER_CPU_USAGE ? [] : ["BYOP_THREAD_CPU"],
			);
		} finally {
			process.off("warning", onWarning);
		}
	});

	it("ends a call whose task forges a reading on the watcher's channel with WorkerProtocolError", async () => {
		for (const line of ["0123 5 0 0 0 0\n", "garbage\n", "x".repeat(400)]) {
			const { future } = await once("processes", "forgeReading", { cpuTimeLimit: "20s" }, line, 3000);
			assert.ok(future.exception instanceof WorkerProtocolError, `${JSON.stringify(line.slice(0, 20))}: ${future.exception}`);
		}
	});

	it("ends a call whose task closes the channel of its process's readings: the process ends", async () => {
		const started = performance.now();
		const { future } = await once("processes", "closeReports", { cpuTimeLimit: "60s" }, 40_000);
		assert.ok(future.exception instanceof WorkerCrashedError, `${future.exception}`);
		assert.equal((future.exception as WorkerCrashedError).exitCode, 71);
		assert.ok(performance.now() - started < 30_000, "ended long before the call would have");
	});

	it("replaces the process of a limited call that started a child process, and its group kill ends the child", async () => {
		const dir = mkdtempSync(path.join(tmpdir(), "byop-portable-"));
		const pidFile = path.join(dir, "pid");
		const { future } = await once("processes", "spawnSleeper", { cpuTimeLimit: "10s" }, pidFile);
		assert.equal(future.state, "result", `${future.exception}`);
		assert.ok(existsSync(pidFile));
		const pid = Number(readFileSync(pidFile, "utf8"));
		for (let i = 0; i < 50 && alive(pid); i++) {
			await delay(100);
		}
		assert.equal(alive(pid), false, "the child ended with its process's group");
	});
});
