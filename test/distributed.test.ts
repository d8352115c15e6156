import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it, test } from "node:test";
import { pathToFileURL } from "node:url";
import { BYOP_VERSION, readReturn } from "../src/executors/bullmq/wire.ts";
import { CommPlugin, type Future, HostLostError, RemoteRefusedError, Scheduler, Task, TaskLoadError } from "../src/index.ts";
import { CpuTimeLimitError, MemoryLimitError, PynisherPlugin, WallTimeLimitError } from "../src/pynisher/index.ts";
import { delay, job, runAll } from "./helpers.ts";
import { Host, REPO, runWorkerCommand } from "./helpers/hosts.ts";
import { workerCommand } from "../src/cli/worker.ts";
import { UsageError } from "../src/cli/usage-error.ts";
import { RedisServer, redisMissing } from "./helpers/redis.ts";

const remote = (name: string) => ({ module: new URL("./fixtures/remote.ts", import.meta.url), name });
const CONTINUE = { onException: "continue", onCancelled: "continue" } as const;

describe("Scheduler.withBullMQ's options", () => {
	it("are checked at once, naming the option and the value, with any password masked", () => {
		assert.throws(() => Scheduler.withBullMQ({ connection: "redis://u:hunter2@host:99999", queueName: "q" }), (error: Error) => error instanceof TypeError && /`connection`/.test(error.message) && !error.message.includes("hunter2") && error.message.includes("***"));
		assert.throws(() => Scheduler.withBullMQ({ connection: "http://host", queueName: "q" }), TypeError);
		assert.throws(() => Scheduler.withBullMQ({ connection: 42 as unknown as string, queueName: "q" }), /`connection`/);
		assert.throws(() => Scheduler.withBullMQ({ connection: { host: "h", password: 5 as unknown as string }, queueName: "q" }), (error: Error) => /`connection.password`/.test(error.message) && !error.message.includes("5 (number)"));
		assert.throws(() => Scheduler.withBullMQ({ connection: { port: 70000 }, queueName: "q" }), RangeError);
		assert.throws(() => Scheduler.withBullMQ({ connection: "redis://h", queueName: "" }), /`queueName`/);
		assert.throws(() => Scheduler.withBullMQ({ connection: "redis://h", queueName: "a:b" }), /`queueName`/);
		assert.throws(() => Scheduler.withBullMQ({ connection: "redis://h", queueName: "q", maxWorkers: 0 }), RangeError);
		assert.throws(() => Scheduler.withBullMQ({ connection: "redis://h", queueName: "q", root: 3 as unknown as string }), /`root`/);
		assert.throws(() => Scheduler.withBullMQ(null as unknown as { connection: string; queueName: string }), /`options`/);
		assert.throws(() => Scheduler.withBullMQ(undefined as unknown as { connection: string; queueName: string }), /`connection`/);
		const scheduler = Scheduler.withBullMQ({ connection: { host: "127.0.0.1", port: 1, tls: true, db: 2 }, queueName: "q", maxWorkers: 3 });
		assert.equal(scheduler.executor, "bullmq");
		assert.equal(scheduler.maxWorkers, 3);
		assert.throws(() => scheduler.task(job("add"), { retryOnHostLoss: "yes" as unknown as boolean }), /`retryOnHostLoss`/);
	});

	it("importing byop loads neither bullmq nor ioredis; the first remote call does", () => {
		const hook = `export async function resolve(s, c, n) { if (/^(bullmq|ioredis)(\\/|$)/.test(s)) throw new Error("BLOCKED " + s); return n(s, c); }`;
		const script = `
			import { register } from "node:module";
			register("data:text/javascript," + encodeURIComponent(${JSON.stringify(hook)}));
			const byop = await import("./src/index.ts");
			await import("./src/pynisher/index.ts");
			await import("./src/cli/main.ts");
			byop.Scheduler.withBullMQ({ connection: "redis://127.0.0.1:1", queueName: "q" });
			let blocked = "not blocked";
			try { await import("bullmq"); } catch (error) { blocked = error.message; }
			console.log(JSON.stringify({ scheduler: typeof byop.Scheduler, blocked }));`;
		const child = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { cwd: REPO, encoding: "utf8" });
		assert.equal(child.status, 0, child.stderr);
		// The hook works (bullmq itself is refused), and byop's modules were imported without it.
		assert.deepEqual(JSON.parse(child.stdout.trim()), { scheduler: "function", blocked: "BLOCKED bullmq" });
	});

	it("a call on an unreachable Redis ends with an error that names it, without its password", { timeout: 30_000 }, async () => {
		const scheduler = Scheduler.withBullMQ({ connection: "redis://user:hunter2@127.0.0.1:1", queueName: "q" });
		const { futures } = await runAll(scheduler, () => [scheduler.task(job("add")).submit(1, 2)], CONTINUE);
		const error = futures[0]?.exception as Error;
		assert.match(error.message, /Cannot reach Redis at redis:\/\/user:\*\*\*@127\.0\.0\.1:1/);
		assert.ok(!error.message.includes("hunter2"));
	});

	it("a module file outside the scheduler's root is refused before anything is sent", async () => {
		const scheduler = Scheduler.withBullMQ({ connection: "redis://127.0.0.1:1", queueName: "q", root: REPO });
		const outside = { module: pathToFileURL(path.join(tmpdir(), "elsewhere.mjs")), name: "x" };
		const { futures } = await runAll(scheduler, () => [scheduler.task(outside).submit()], CONTINUE);
		assert.ok(futures[0]?.exception instanceof RemoteRefusedError);
		assert.equal((futures[0]?.exception as RemoteRefusedError).refusal, "outside-root");
		assert.match((futures[0]?.exception as Error).message, /outside the scheduler's root/);
	});
});

describe("byop worker's command line", () => {
	it("--help names every option and no secret", async () => {
		const help = await runWorkerCommand(["--help"], { ...process.env, BYOP_REDIS_URL: "redis://:hunter2@127.0.0.1:1" });
		assert.equal(help.code, 0);
		for (const option of ["--redis", "--queue", "--concurrency", "--executor", "--root", "--allow", "--grace", "--name"]) {
			assert.ok(help.stdout.includes(option), option);
		}
		assert.ok(!help.stdout.includes("hunter2"));
	});

	it("bad options are usage errors that name the option, with any password masked", async () => {
		const cases: [string[], RegExp][] = [
			[["--queue", "q"], /needs --redis/],
			[["--redis", "redis://127.0.0.1:1"], /needs --queue/],
			[["--redis", "http://x:hunter2@h", "--queue", "q"], /`--redis`.*\*\*\*/],
			[["--redis", "redis://127.0.0.1:1", "--queue", "q:x"], /`--queue`/],
			[["--redis", "redis://127.0.0.1:1", "--queue", "q", "--executor", "sequential"], /`--executor`/],
			[["--redis", "redis://127.0.0.1:1", "--queue", "q", "--concurrency", "0"], /`--concurrency`/],
			[["--redis", "redis://127.0.0.1:1", "--queue", "q", "--root", "/no/such/dir"], /`--root`/],
			[["--redis", "redis://127.0.0.1:1", "--queue", "q", "--allow", "../x"], /`--allow`/],
			[["--redis", "redis://127.0.0.1:1", "--queue", "q", "--grace", "soon"], /`--grace`/],
			[["--redis", "redis://127.0.0.1:1", "--queue", "q", "--bogus"], /bogus/],
		];
		for (const [args, pattern] of cases) {
			await assert.rejects(workerCommand(args), (error: Error) => error instanceof UsageError && pattern.test(error.message) && !error.message.includes("hunter2"), args.join(" "));
		}
		const env = process.env["BYOP_REDIS_URL"];
		delete process.env["BYOP_REDIS_URL"];
		try {
			await assert.rejects(workerCommand(["--queue", "q"]), /needs --redis/);
		} finally {
			if (env !== undefined) {
				process.env["BYOP_REDIS_URL"] = env;
			}
		}
	});

	it("exits with 1 and a clear line when Redis cannot be reached, without the password", async () => {
		const result = await runWorkerCommand(["--redis", "redis://user:hunter2@127.0.0.1:1", "--queue", "q"]);
		assert.equal(result.code, 1);
		assert.match(result.stderr, /Cannot reach Redis at redis:\/\/user:\*\*\*@127\.0\.0\.1:1/);
		assert.ok(!result.stderr.includes("hunter2"));
	});
});

const missing = redisMissing();
if (missing !== undefined) {
	if (process.env["BYOP_REQUIRE_REDIS"] === "1") {
		test("the distributed suite runs (BYOP_REQUIRE_REDIS=1)", () => assert.fail(`the distributed suite cannot run: ${missing}`));
	} else {
		process.stderr.write(`distributed suite skipped: ${missing}\n`);
		test("the distributed suite (Scheduler.withBullMQ, byop worker)", { skip: `skipped: ${missing}` }, () => {});
	}
} else {
	describe("Scheduler.withBullMQ with two byop worker hosts", { timeout: 180_000 }, () => {
		const QUEUE = "main";
		let redis: RedisServer;
		const hosts = new Map<string, Host>();
		let scratch: string;
		const hostArgs = (): string[] => ["--redis", redis.url, "--queue", QUEUE, "--root", REPO, "--concurrency", "2", "--allow", "ms"];
		const startHost = async (name: string): Promise<Host> => {
			const host = await Host.start(name, hostArgs());
			hosts.set(name, host);
			return host;
		};
		const scheduler = (options: { maxWorkers?: number; queueName?: string } = {}): Scheduler =>
			Scheduler.withBullMQ({ connection: redis.url, queueName: options.queueName ?? QUEUE, root: REPO, ...(options.maxWorkers === undefined ? {} : { maxWorkers: options.maxWorkers }) });
		const file = (name: string): string => path.join(scratch, name);

		before(async () => {
			scratch = mkdtempSync(path.join(tmpdir(), "byop-distributed-"));
			redis = await RedisServer.start();
			await Promise.all([startHost("A"), startHost("B")]);
		});

		after(async () => {
			await restarting;
			await Promise.all([...hosts.values()].map((host) => host.stop()));
			await redis.stop();
			rmSync(scratch, { recursive: true, force: true });
		});

		it("brings back results, errors (name, message, code, stack, cause) and usage that names the host", async () => {
			const s = scheduler();
			const value = { map: new Map([[1, 2n]]), when: new Date(5), bytes: new Uint8Array([1, 2]) };
			const { futures } = await runAll(s, () => [s.task(job("add")).submit(2, 3), s.task(job("default")).submit(value), s.task(job("fail")).submit("boom"), ...Array.from({ length: 8 }, () => s.task(job("sleep")).submit(100))], CONTINUE);
			const [sum, same, failed] = futures as Future[];
			assert.equal(sum?.result, 5);
			assert.deepEqual(same?.result, value);
			const error = failed?.exception as Error & { code?: string; detail?: unknown; cause?: Error };
			assert.equal(error.name, "CustomError");
			assert.equal(error.message, "boom");
			assert.equal(error.code, "E_CUSTOM");
			assert.deepEqual(error.detail, { answer: 42 });
			assert.ok(error.cause instanceof TypeError && error.cause.message === "inner cause");
			assert.match(error.stack ?? "", /fail/);
			for (const future of futures) {
				assert.equal(future.usage?.where, "thread", String(future.exception));
				assert.ok(["A", "B"].includes(future.usage?.host ?? ""), String(future.usage?.host));
				assert.ok((future.usage?.wallMs ?? 0) > 0);
			}
			assert.deepEqual(new Set(futures.map((future) => future.usage?.host)), new Set(["A", "B"]), "both hosts take calls");
		});

		it("enforces every limit on the host, with the same errors and events as locally (escalation to a process included)", { timeout: 60_000 }, async () => {
			const s = scheduler();
			const wall = new PynisherPlugin({ wallTimeLimit: "400ms" });
			const cpu = new PynisherPlugin({ cpuTimeLimit: "300ms" });
			const heap = new PynisherPlugin({ memoryLimit: "64mb", memoryKind: "heap" });
			const rss = new PynisherPlugin({ memoryLimit: "80mb", memoryKind: "rss" });
			const auto = new PynisherPlugin({ memoryLimit: "64mb" });
			const events: string[] = [];
			const tasks: Task[] = [];
			const { futures } = await runAll(
				s,
				() => {
					const wallTask = s.task(job("spinForever"), { plugins: [wall] });
					wallTask.on(wall.WALL_TIME_LIMIT_REACHED, () => events.push("wall"));
					const cpuTask = s.task(job("spinForever"), { plugins: [cpu] });
					cpuTask.on(cpu.CPU_TIME_LIMIT_REACHED, () => events.push("cpu"));
					const heapTask = s.task(job("growHeap"), { plugins: [heap] });
					heapTask.on(heap.MEMORY_LIMIT_REACHED, () => events.push("heap"));
					const rssTask = s.task(job("holdBuffers"), { plugins: [rss] });
					rssTask.on(rss.MEMORY_LIMIT_REACHED, () => events.push("rss"));
					const autoTask = s.task(job("holdBuffers"), { plugins: [auto] });
					autoTask.on(auto.MEMORY_LIMIT_REACHED, () => events.push("auto"));
					tasks.push(wallTask, cpuTask, heapTask, rssTask, autoTask);
					return [wallTask.submit(), cpuTask.submit(), heapTask.submit(), rssTask.submit(160, 5000), autoTask.submit(160, 5000)];
				},
				CONTINUE,
			);
			const [w, c, h, r, a] = futures as Future[];
			assert.ok(w?.exception instanceof WallTimeLimitError, String(w?.exception));
			assert.equal((w?.exception as WallTimeLimitError).limit, 400);
			assert.ok(c?.exception instanceof CpuTimeLimitError, String(c?.exception));
			assert.ok(h?.exception instanceof MemoryLimitError && h.exception.memoryKind === "heap", String(h?.exception));
			assert.ok(r?.exception instanceof MemoryLimitError && r.exception.memoryKind === "rss", String(r?.exception));
			assert.equal(r?.usage?.where, "process");
			assert.ok(a?.exception instanceof MemoryLimitError, String(a?.exception));
			assert.equal(a?.usage?.where, "process", "the auto call moved from its thread to a process on its host");
			assert.deepEqual(events.sort(), ["auto", "cpu", "heap", "rss", "wall"]);
			for (const future of futures) {
				assert.ok(["A", "B"].includes(future.usage?.host ?? ""));
			}
		});

		it("future.cancel() stops a running call on its host, and a waiting job is removed", async (t) => {
			const s = scheduler();
			const ticks = file("ticks");
			let latency = 0;
			let waitingCancelled: Future | undefined;
			const { futures } = await runAll(
				s,
				() => {
					const future = s.task(remote("tick")).submit(ticks);
					void (async () => {
						while (!existsSync(ticks) || statSync(ticks).size < 3) {
							await delay(20);
						}
						const started = performance.now();
						future?.cancel();
						await future?.then(
							() => {},
							() => {},
						);
						latency = performance.now() - started;
					})();
					return [future];
				},
				CONTINUE,
			);
			assert.ok(futures[0]?.cancelled);
			t.diagnostic(`cancel of a running remote call: ${latency.toFixed(0)} ms`);
			assert.ok(latency < 1000, `cancelled in ${latency} ms`);
			const size = statSync(ticks).size;
			await delay(300);
			assert.equal(statSync(ticks).size, size, "the call no longer runs on its host");

			// A queue that no host takes from: its job waits, and a cancel removes it.
			const idle = scheduler({ queueName: "idle" });
			await runAll(
				idle,
				() => {
					waitingCancelled = idle.task(job("add")).submit(1, 1);
					setTimeout(() => waitingCancelled?.cancel(), 300);
					return [waitingCancelled];
				},
				CONTINUE,
			);
			assert.ok(waitingCancelled?.cancelled);
			const { Queue } = await import("bullmq");
			const queue = new Queue("idle", { connection: { host: "127.0.0.1", port: redis.port }, prefix: "byop" });
			const counts = await queue.getJobCounts("waiting", "active", "paused");
			assert.equal((counts["waiting"] ?? 0) + (counts["active"] ?? 0) + (counts["paused"] ?? 0), 0, JSON.stringify(counts));
			await queue.close();
		});

		it("run({ wait: false }) stops what still runs remotely when the run ends", async () => {
			const s = scheduler();
			const ticks = file("ticks-wait");
			let future: Future | undefined;
			const exit = await (async () => {
				s.on(Scheduler.STARTED, () => {
					future = s.task(remote("tick")).submit(ticks);
					void (async () => {
						while (!existsSync(ticks) || statSync(ticks).size < 3) {
							await delay(20);
						}
						s.stop();
					})();
				});
				return s.run({ wait: false, ...CONTINUE });
			})();
			assert.equal(exit.code, "stopped");
			assert.ok(future?.cancelled);
			const size = statSync(ticks).size;
			await delay(300);
			assert.equal(statSync(ticks).size, size);
		});

		it("a missing module, an export that is not there, a file outside --root, a package not allowed: each fails its call clearly", async () => {
			const outside = mkdtempSync(path.join(tmpdir(), "byop-outside-"));
			const marker = path.join(outside, "imported");
			writeFileSync(path.join(outside, "evil.mjs"), `import { writeFileSync } from "node:fs"; writeFileSync(${JSON.stringify(marker)}, "x"); export default () => 1;\n`);
			const links = path.join(REPO, ".tmp", `links-${process.pid}`);
			mkdirSync(links, { recursive: true });
			symlinkSync(path.join(outside, "evil.mjs"), path.join(links, "evil.mjs"));
			try {
				const s = scheduler();
				const { futures } = await runAll(
					s,
					() => [
						s.task({ module: new URL("./fixtures/no-such-module.ts", import.meta.url), name: "x" }).submit(),
						s.task(job("noSuchExport")).submit(),
						s.task({ module: pathToFileURL(path.join(links, "evil.mjs")) }).submit(),
						s.task({ module: "fast-check", name: "integer" }).submit(),
						s.task({ module: "ms" }).submit("2s"),
					],
					CONTINUE,
				);
				const [noModule, noExport, link, notAllowed, allowed] = futures as Future[];
				assert.ok(noModule?.exception instanceof TaskLoadError, String(noModule?.exception));
				assert.match((noModule?.exception as Error).message, /no-such-module\.ts.*no such file/);
				assert.ok(noExport?.exception instanceof TaskLoadError, String(noExport?.exception));
				assert.ok(link?.exception instanceof RemoteRefusedError && link.exception.refusal === "outside-root", String(link?.exception));
				assert.match((link?.exception as Error).message, /outside the host's --root/);
				assert.ok(notAllowed?.exception instanceof RemoteRefusedError && notAllowed.exception.refusal === "not-allowed", String(notAllowed?.exception));
				assert.match((notAllowed?.exception as Error).message, /"fast-check".*--allow/);
				assert.equal(allowed?.result, 2000);
				assert.equal(existsSync(marker), false, "a module outside --root is never imported");
			} finally {
				rmSync(links, { recursive: true, force: true });
				rmSync(outside, { recursive: true, force: true });
			}
		});

		it("refuses jobs that anyone with access to Redis could write: another byop version, paths out of --root, malformed data", async () => {
			const { Queue, Job } = await import("bullmq");
			const queue = new Queue(QUEUE, { connection: { host: "127.0.0.1", port: redis.port }, prefix: "byop" });
			try {
				const base = { byop: BYOP_VERSION, module: "test/fixtures/jobs.ts", kind: "file", name: "add", args: Buffer.from(new Uint8Array(0)).toString("base64"), limits: null, retryOnHostLoss: false, taskName: "t" };
				const jobs = await Promise.all([
					queue.add("t", { ...base, byop: "0.0.0-other" }),
					queue.add("t", { ...base, module: "../../etc/passwd" }),
					queue.add("t", { ...base, module: "/etc/passwd" }),
					queue.add("t", { nothing: true }),
					queue.add("t", { ...base, limits: { wallMs: -1 } }),
				]);
				const endings = await Promise.all(
					jobs.map(async (added) => {
						for (let i = 0; i < 200; i++) {
							const state = await queue.getJobState(added.id as string);
							if (state === "completed") {
								return readReturn((await Job.fromId(queue, added.id as string))?.returnvalue);
							}
							await delay(50);
						}
						throw new Error(`job ${added.id} did not complete`);
					}),
				);
				const refusals = endings.map((ending) => (ending.kind === "exception" && ending.error instanceof RemoteRefusedError ? ending.error.refusal : ending.kind));
				assert.deepEqual(refusals, ["version", "outside-root", "outside-root", "malformed", "malformed"]);
				const version = endings[0];
				assert.ok(version?.kind === "exception");
				assert.match(version.error.message, new RegExp(`byop ${BYOP_VERSION.replace(/\./g, "\\.")} .*byop 0\\.0\\.0-other`));
			} finally {
				await queue.close();
			}
		});

		it("comm: what a remote task sends reaches the CommPlugin in order, before its outcome, and requests are answered", async () => {
			const s = scheduler();
			const commRef = (name: string) => ({ module: new URL("./fixtures/comm.ts", import.meta.url), name });
			const plugin = new CommPlugin();
			const events: string[] = [];
			const { futures } = await runAll(
				s,
				() => {
					const sender = s.task(commRef("sendAndReturn"), { plugins: [plugin] });
					sender.on(CommPlugin.OPEN, () => events.push("open"));
					sender.on(CommPlugin.MESSAGE, ({ data }) => events.push(`message ${String(data)}`));
					sender.on(CommPlugin.CLOSE, () => events.push("close"));
					sender.on(Task.RESULT, (_future, result) => events.push(`result ${String(result)}`));
					const asker = s.task(commRef("askAll"), { plugins: [plugin] });
					asker.on(CommPlugin.REQUEST, (request) => request.respond(new Map([["twice", 2 * (request.data as number)]])));
					const unanswered = s.task(commRef("askOnce"), { plugins: [plugin] });
					const without = s.task(commRef("askOnce"));
					return [sender.submit([1, 2, 3]), asker.submit([5, 6]), unanswered.submit(), without.submit()];
				},
				CONTINUE,
			);
			assert.deepEqual(events, ["open", "message 1", "message 2", "message 3", "close", "result 3"]);
			assert.deepEqual(futures[1]?.result, [new Map([["twice", 10]]), new Map([["twice", 12]])]);
			assert.deepEqual(futures[2]?.result, { name: "CommError", code: "ERR_COMM", failure: "no-handler" });
			assert.deepEqual(futures[3]?.result, { name: "CommError", code: "ERR_COMM", failure: "unavailable" });
		});

		it("runs 2,000 calls with none lost and none run twice", { timeout: 120_000 }, async (t) => {
			const s = scheduler();
			const runs = file("runs");
			writeFileSync(runs, "");
			const started = performance.now();
			const { futures } = await runAll(s, () => Array.from({ length: 2000 }, (_, i) => s.task(remote("countedAdd")).submit(runs, i, 1)), CONTINUE);
			const seconds = (performance.now() - started) / 1000;
			t.diagnostic(`2,000 remote calls in ${seconds.toFixed(1)} s: ${(2000 / seconds).toFixed(0)} calls/s`);
			assert.equal(futures.length, 2000);
			futures.forEach((future, i) => assert.equal(future.result, i + 1));
			const lines = readFileSync(runs, "utf8").trim().split("\n");
			assert.equal(lines.length, 2000, "each call ran exactly once");
			assert.equal(new Set(lines).size, 2000);
		});

		/** Submits `sleepOnce` and SIGKILLs the host that runs it once it has started; resolves with how it ended and in how long after the kill. */
		let restarting: Promise<unknown> = Promise.resolve();
		async function killMidCall(retryOnHostLoss: boolean, name: string): Promise<{ future: Future; afterKillMs: number; runs: string[]; killed: string }> {
			await restarting;
			const s = scheduler();
			const marker = file(name);
			let killedAt = 0;
			let killed = "";
			const { futures } = await runAll(
				s,
				() => {
					const future = s.task(remote("sleepOnce"), { retryOnHostLoss }).submit(marker, 30_000);
					void (async () => {
						while (!existsSync(marker)) {
							await delay(20);
						}
						const pid = Number(readFileSync(marker, "utf8").trim());
						const host = [...hosts.values()].find((candidate) => candidate.pid === pid);
						assert.ok(host !== undefined, `no host has pid ${pid}`);
						killed = host.name;
						host.child.kill("SIGKILL");
						killedAt = performance.now();
					})();
					return [future];
				},
				CONTINUE,
			);
			const afterKillMs = performance.now() - killedAt;
			await hosts.get(killed)?.exited();
			restarting = startHost(killed);
			return { future: futures[0] as Future, afterKillMs, runs: readFileSync(marker, "utf8").trim().split("\n"), killed };
		}

		it("a host killed mid-call: the call ends with a HostLostError within 10 s, and never runs twice", { timeout: 60_000 }, async (t) => {
			const { future, afterKillMs, runs } = await killMidCall(false, "lost");
			t.diagnostic(`host loss reported ${afterKillMs.toFixed(0)} ms after SIGKILL`);
			assert.ok(future.exception instanceof HostLostError, String(future.exception));
			assert.match((future.exception as Error).message, /did not opt in/);
			assert.ok(afterKillMs < 10_000, `${afterKillMs} ms`);
			await delay(1500);
			assert.equal(readFileSync(file("lost"), "utf8").trim().split("\n").length, 1, `ran once: ${runs.join(",")}`);
		});

		it("a host killed mid-call: a task that opted in runs again, once, on the other host", { timeout: 60_000 }, async (t) => {
			const { future, afterKillMs, runs, killed } = await killMidCall(true, "retried");
			t.diagnostic(`retried call ended ${afterKillMs.toFixed(0)} ms after SIGKILL`);
			assert.equal(future.result, "again", String(future.exception));
			assert.notEqual(future.usage?.host, killed);
			assert.equal(runs.length, 2);
			assert.ok(afterKillMs < 10_000, `${afterKillMs} ms`);
		});

		it("SIGTERM: the host takes no new job, lets a running call finish, and exits 0; past --grace it stops it", { timeout: 60_000 }, async () => {
			const [patient, hasty] = await Promise.all([
				Host.start("patient", ["--redis", redis.url, "--queue", "patient", "--root", REPO, "--grace", "20s"]),
				Host.start("hasty", ["--redis", redis.url, "--queue", "hasty", "--root", REPO, "--grace", "300ms"]),
			]);
			const s = scheduler({ queueName: "patient" });
			const h = scheduler({ queueName: "hasty" });
			const [first, second] = await Promise.all(
				[
					[s, patient, file("patient"), 1500],
					[h, hasty, file("hasty"), 30_000],
				].map(async ([scheduler, host, marker, ms]) => {
					const sched = scheduler as Scheduler;
					const { futures } = await runAll(
						sched,
						() => {
							const future = sched.task(remote("sleepOnce")).submit(marker as string, ms as number);
							void (async () => {
								while (!existsSync(marker as string)) {
									await delay(20);
								}
								(host as Host).child.kill("SIGTERM");
							})();
							return [future];
						},
						CONTINUE,
					);
					return { future: futures[0] as Future };
				}),
			);
			const finished = first?.future;
			const stopped = second?.future;
			assert.equal(finished?.result, "first");
			assert.ok(stopped?.exception instanceof HostLostError, String(stopped?.exception));
			assert.match((stopped?.exception as Error).message, /shut down/);
			assert.equal(await patient.exited(), 0);
			assert.equal(await hasty.exited(), 0);
			assert.match(patient.stderr, /stopping \(SIGTERM\)[\s\S]*stopped/);
		});

		it("a password-protected Redis: hosts and schedulers connect, and the password appears in no log or error", { timeout: 60_000 }, async () => {
			const secret = "s3cret-pw";
			const guarded = await RedisServer.start(secret);
			let host: Host | undefined;
			try {
				host = await Host.start("guarded", ["--redis", guarded.url, "--queue", "pw", "--root", REPO]);
				const good = Scheduler.withBullMQ({ connection: guarded.url, queueName: "pw", root: REPO });
				const { futures } = await runAll(good, () => [good.task(job("add")).submit(20, 22)], CONTINUE);
				assert.equal(futures[0]?.result, 42);
				const bad = Scheduler.withBullMQ({ connection: `redis://:wrong-${secret}@127.0.0.1:${guarded.port}`, queueName: "pw", root: REPO });
				const failed = await runAll(bad, () => [bad.task(job("add")).submit(1, 2)], CONTINUE);
				const error = failed.futures[0]?.exception as Error;
				assert.match(error.message, /Cannot reach Redis at redis:\/\/:\*\*\*@127\.0\.0\.1.*WRONGPASS/);
				assert.ok(!error.message.includes(secret));
				const refused = await runWorkerCommand(["--redis", `redis://:wrong-${secret}@127.0.0.1:${guarded.port}`, "--queue", "pw", "--root", REPO]);
				assert.equal(refused.code, 1);
				assert.ok(!refused.stderr.includes(secret), refused.stderr);
			} finally {
				await host?.stop();
				await guarded.stop();
			}
			assert.ok(host.stderr.includes("redis://:***@127.0.0.1"), host.stderr);
			assert.ok(!host.stderr.includes(secret));
		});
	});
}
