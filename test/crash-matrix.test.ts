// The crash matrix: for each executor, a task that misbehaves in one way, and then an ordinary
// task on the same executor. Each misbehaviour has one documented outcome (docs/reliability.md),
// and the next task runs normally. On the sequential executor every crash case gets a limit, so
// that it runs in a forked process: an unlimited sequential call runs in the main thread, where
// process.exit() ends the program (checked in a child program at the end).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { DataCloneError, type Future, Scheduler, Task, WorkerCrashedError } from "../src/index.ts";
import { MemoryLimitError, PynisherPlugin, type PynisherOptions, WallTimeLimitError } from "../src/pynisher/index.ts";
import { EXECUTORS, type ExecutorKind, make } from "./helpers.ts";

const root = fileURLToPath(new URL("..", import.meta.url));

function chaos(name: string) {
	return { module: new URL("./fixtures/chaos.ts", import.meta.url), name };
}

type Check = (future: Future, kind: ExecutorKind) => void;

function crashed(check: (error: WorkerCrashedError) => void): Check {
	return (future) => {
		assert.equal(future.state, "exception");
		const error = future.exception as WorkerCrashedError;
		assert.ok(error instanceof WorkerCrashedError, `${String(error)}`);
		assert.equal(error.code, "ERR_WORKER_CRASHED");
		check(error);
	};
}

function returned(check: (value: unknown) => void): Check {
	return (future) => {
		assert.equal(future.state, "result", `${String(future.exception)}`);
		check(future.result);
	};
}

interface Case {
	readonly what: string;
	readonly name: string;
	readonly args: unknown[];
	readonly limits?: PynisherOptions;
	readonly check: Check;
	/** Submit the next task this long after the crash case ended (default: with it, at once). */
	readonly nextAfterMs?: number;
	/** The next task, when it is not add(1, 2). */
	readonly next?: readonly [string, unknown[], unknown];
}

const CASES: readonly Case[] = [
	{ what: "process.exit(0)", name: "exitWith", args: [0], check: crashed((error) => assert.equal(error.exitCode, 0)) },
	{ what: "process.exit(3)", name: "exitWith", args: [3], check: crashed((error) => assert.equal(error.exitCode, 3)) },
	{
		what: "process.abort()",
		name: "abortProcess",
		args: [],
		check: (future, kind) => {
			if (kind === "threads") {
				// Node refuses process.abort() in a worker thread: it throws, and nothing else happens.
				assert.equal((future.exception as { code?: string }).code, "ERR_WORKER_UNSUPPORTED_OPERATION");
				assert.ok(future.exception instanceof TypeError);
			} else {
				crashed((error) => assert.equal(error.signal, "SIGABRT"))(future, kind);
			}
		},
	},
	{
		what: "throw 42",
		name: "throwValue",
		args: [42],
		check: (future) => {
			assert.ok(future.exception instanceof Error);
			assert.equal((future.exception as { value?: unknown }).value, 42);
		},
	},
	{
		what: "throw null",
		name: "throwValue",
		args: [null],
		check: (future) => {
			assert.ok(future.exception instanceof Error);
			assert.equal((future.exception as { value?: unknown }).value, null);
			assert.match((future.exception as Error).message, /non-Error value: null/);
		},
	},
	{
		// The call returned; its worker then fails while idle and is replaced, and no call is
		// blamed: an idle thread runs its event loop (piscina's "async" atomics), like a process.
		what: "a rejection after it returned",
		name: "rejectAfterReturn",
		args: [10],
		nextAfterMs: 300,
		next: ["nap", [300], "rested"],
		check: returned((value) => assert.equal(value, "returned")),
	},
	{
		what: "an unhandled rejection while it runs",
		name: "unhandledRejection",
		args: [],
		check: crashed((error) => assert.match(String((error.cause as Error | undefined)?.message), /nobody listened/)),
	},
	{
		what: "process.stdout.end()",
		name: "closeStdout",
		args: [],
		next: ["shout", ["still talking"], "still talking"],
		check: returned((value) => assert.equal(value, "closed")),
	},
	{ what: "a function as its result", name: "returnFunction", args: [], check: (future) => assert.ok(future.exception instanceof DataCloneError, `${String(future.exception)}`) },
	{ what: "a Symbol as its result", name: "returnSymbol", args: [], check: (future) => assert.ok(future.exception instanceof DataCloneError, `${String(future.exception)}`) },
	{
		what: "a 200 MB result",
		name: "bigResult",
		args: [200],
		check: returned((value) => {
			assert.ok(value instanceof Uint8Array);
			assert.equal(value.length, 200 * 1024 * 1024);
			assert.equal(value[value.length - 1], 7);
		}),
	},
	{
		what: "Atomics.wait forever under a 1 s wall limit",
		name: "atomicsWait",
		args: [],
		limits: { wallTimeLimit: 1 },
		check: (future) => assert.ok(future.exception instanceof WallTimeLimitError, `${String(future.exception)}`),
	},
	{
		what: 'execSync("sleep 5") under a 1 s wall limit',
		name: "blockNative",
		args: [5],
		limits: { wallTimeLimit: 1 },
		check: (future) => {
			assert.ok(future.exception instanceof WallTimeLimitError, `${String(future.exception)}`);
			// The call ends at its limit, not when the native call returns.
			assert.ok((future.usage?.wallMs ?? 0) < 4000, `ended after ${future.usage?.wallMs} ms`);
		},
	},
	{ what: "a stack overflow", name: "recurse", args: [], check: (future) => assert.ok(future.exception instanceof RangeError, `${String(future.exception)}`) },
	{
		// One allocation past a whole heap cap aborts a thread's process (nodejs/node#47224); with
		// memoryKind "rss" it runs in a process of its own, and only that process dies.
		what: "new Array(1e8).fill(1.5) under a 160 MB rss limit",
		name: "hugeArray",
		args: [],
		limits: { memoryLimit: "160mb", memoryKind: "rss" },
		check: (future) => {
			assert.ok(future.exception instanceof MemoryLimitError, `${String(future.exception)}`);
			assert.equal(future.usage?.where, "process");
		},
	},
];

/** Limits that send a sequential call to a process without ever being reached. */
const GENEROUS: PynisherOptions = { wallTimeLimit: 30 };

for (const kind of EXECUTORS) {
	describe(`crash matrix: ${kind}`, () => {
		for (const entry of CASES) {
			it(`${entry.what}: ends as documented and the next task runs`, { timeout: 60_000 }, async () => {
				const scheduler = make(kind, 1);
				const limits = entry.limits ?? (kind === "sequential" ? GENEROUS : undefined);
				const plugins = limits === undefined ? [] : [new PynisherPlugin(limits)];
				const crash = scheduler.task(chaos(entry.name), { plugins });
				const [nextName, nextArgs, nextValue] = entry.next ?? ["add", [1, 2], 3];
				const next = scheduler.task(chaos(nextName), { plugins: kind === "sequential" ? [new PynisherPlugin(GENEROUS)] : [] });
				const third = scheduler.task(chaos("add"), { plugins: kind === "sequential" ? [new PynisherPlugin(GENEROUS)] : [] });
				const futures: Future[] = [];
				let finished = 0;
				// A third call, once the second has ended: the executor still serves calls after both.
				next.on(Task.DONE, () => void futures.push(third.submit(20, 22)!));
				scheduler.on(Scheduler.FUTURE_DONE, () => finished++);
				scheduler.on(Scheduler.STARTED, () => {
					futures.push(crash.submit(...entry.args)!);
					const submitNext = () => void futures.push(next.submit(...nextArgs)!);
					if (entry.nextAfterMs === undefined) {
						submitNext();
					} else {
						const delayMs = entry.nextAfterMs;
						crash.on(Task.DONE, () => void scheduler.callLater([delayMs, "ms"], submitNext));
					}
				});
				const exit = await scheduler.run({ onException: "continue" });
				assert.equal(exit.code, "exhausted");
				assert.equal(futures.length, 3);
				assert.equal(finished, 3, "each call ended exactly once");
				assert.equal(futures[2]?.result, 42, `the third call: ${String(futures[2]?.exception)}`);
				entry.check(futures[0]!, kind);
				assert.equal(futures[1]?.state, "result", `the next task: ${String(futures[1]?.exception)}`);
				assert.deepEqual(futures[1]?.result, nextValue);
				assert.equal(futures[1]?.usage?.where, kind === "threads" ? "thread" : "process");
			});
		}
	});
}

/** Runs a TypeScript program in a fresh node (under tsx), with its output captured. */
function runProgram(source: string): { stdout: string; stderr: string; code: number | null } {
	const file = path.join(root, "test", "fixtures", `.crash-${process.pid}-${Date.now()}.ts`);
	writeFileSync(file, source);
	try {
		const result = spawnSync(process.execPath, ["--import", "tsx", file], { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 60_000, maxBuffer: 256 * 1024 * 1024 });
		return { stdout: result.stdout, stderr: result.stderr, code: result.status };
	} finally {
		rmSync(file, { force: true });
	}
}

describe("crash matrix: output and the main thread", () => {
	it("a task flooding stdout and stderr with 8 MB each returns, on every executor, and the next task runs", () => {
		// In a child program, so that the flood does not reach this test runner's output.
		const result = runProgram(
			`import { Scheduler } from "../../src/index.ts";
			import { PynisherPlugin } from "../../src/pynisher/index.ts";
			const ref = (name: string) => ({ module: new URL("./chaos.ts", import.meta.url), name });
			const out: unknown[] = [];
			for (const scheduler of [Scheduler.withSequential(), Scheduler.withThreads({ maxWorkers: 1 }), Scheduler.withProcesses({ maxWorkers: 1 })]) {
				const plugins = scheduler.executor === "sequential" ? [new PynisherPlugin({ wallTimeLimit: 30 })] : [];
				const flood = scheduler.task(ref("flood"), { plugins });
				const add = scheduler.task(ref("add"), { plugins });
				const futures: any[] = [];
				scheduler.on(Scheduler.STARTED, () => { futures.push(flood.submit(8, scheduler.executor[0]), add.submit(1, 2)); });
				await scheduler.run({ onException: "continue" });
				out.push([scheduler.executor, futures[0].state, futures[0].result, futures[1].result]);
			}
			process.stderr.write("\\nRESULT " + JSON.stringify(out) + "\\n");`,
		);
		assert.equal(result.code, 0, result.stderr.slice(-2000));
		const line = result.stderr.split("\n").find((text) => text.startsWith("RESULT "));
		const bytes = 2 * 8 * 1024 * 1024;
		assert.deepEqual(JSON.parse(line?.slice(7) ?? "null"), [
			["sequential", "result", bytes, 3],
			["threads", "result", bytes, 3],
			["processes", "result", bytes, 3],
		]);
		// The output reached the program's own stdout and stderr, in full, from every executor.
		for (const letter of ["s", "t", "p"]) {
			for (const [stream, text] of [["stdout", result.stdout], ["stderr", result.stderr]] as const) {
				const count = text.split(letter.repeat(1023)).length - 1;
				assert.equal(count, 8 * 1024, `${stream} lines from ${letter}: ${count}`);
			}
		}
	});

	it("an unlimited sequential call runs in the main thread: process.exit(3) there ends the program", () => {
		const result = runProgram(
			`import { Scheduler } from "../../src/index.ts";
			const scheduler = Scheduler.withSequential();
			const task = scheduler.task({ module: new URL("./chaos.ts", import.meta.url), name: "exitWith" });
			scheduler.on(Scheduler.STARTED, () => { task.submit(3); });
			await scheduler.run();
			console.log("survived");`,
		);
		assert.equal(result.code, 3);
		assert.doesNotMatch(result.stdout, /survived/);
	});
});
