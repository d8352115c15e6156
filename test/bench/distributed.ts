// Section 11: byop on BullMQ (`Scheduler.withBullMQ` and `byop worker` hosts) against raw BullMQ
// on the same Redis, how late a remote wall limit stops a call, and how soon a remote cancel ends one.
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { Queue as BullQueue, QueueEvents as BullQueueEvents } from "bullmq";
import { RedisServer } from "../helpers/redis.ts";
import { type Future, PynisherPlugin, Scheduler, Task, WallTimeLimitError } from "./byop.ts";
import type { Plan } from "./dispatch.ts";
import { alternate, delay, job, open, type Session, StartProbe, summarize, withTimeout } from "./harness.ts";
import type { Row } from "./report.ts";

export const DISTRIBUTED = "11. Distributed: byop on BullMQ against raw BullMQ";
/** Worker processes on each side, and the concurrency of each. */
export const HOSTS = 2;
export const CONCURRENCY = 4;
/** The wall limit of the overshoot rows. */
const WALL_LIMIT_MS = 500;

const REPO = fileURLToPath(new URL("../../", import.meta.url)).replace(/\/$/, "");
const MAIN = fileURLToPath(new URL("../../dist/src/cli/main.js", import.meta.url));
const RAW_WORKER = fileURLToPath(new URL("./bullmq-worker.mjs", import.meta.url));

/** What the section is given beyond the shared plan. */
export interface DistributedPlan extends Plan {
	/** No-op jobs per throughput round. */
	readonly remoteJobs: number;
	/** Calls of the overshoot and cancel rows. */
	readonly remoteTrials: number;
}

/** A child process that writes `marker` on stderr once it is ready. */
async function startChild(args: readonly string[], marker: string): Promise<ChildProcess> {
	const child = spawn(process.execPath, args, { cwd: REPO, stdio: ["ignore", "ignore", "pipe"] });
	let output = "";
	await new Promise<void>((resolve, reject) => {
		const timer = setTimeout(() => reject(new Error(`${args.join(" ")} did not start in 30 s: ${output}`)), 30_000);
		child.stderr?.on("data", (chunk: Buffer) => {
			output += chunk.toString();
			if (output.includes(marker)) {
				clearTimeout(timer);
				resolve();
			}
		});
		child.once("exit", (code) => {
			clearTimeout(timer);
			reject(new Error(`${args.join(" ")} exited with ${code}: ${output}`));
		});
	});
	child.stderr?.resume();
	return child;
}

async function stopChild(child: ChildProcess): Promise<void> {
	if (child.exitCode !== null || child.signalCode !== null) {
		return;
	}
	const exited = new Promise((resolve) => child.once("exit", resolve));
	child.kill("SIGTERM");
	const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
	await exited;
	clearTimeout(timer);
}

/** `HOSTS` byop worker hosts (the built `dist/src/cli/main.js worker`) on `queue`. */
function startHosts(url: string, queue: string): Promise<ChildProcess[]> {
	return Promise.all(
		Array.from({ length: HOSTS }, (_, i) =>
			startChild([MAIN, "worker", "--redis", url, "--queue", queue, "--concurrency", String(CONCURRENCY), "--executor", "threads", "--root", REPO, "--name", `bench-${i}`], "started:"),
		),
	);
}

/** Raw BullMQ: a producer that adds jobs in bulk and counts their completions with `QueueEvents`. */
class RawProducer {
	readonly #queue: BullQueue;
	readonly #events: BullQueueEvents;
	#target = 0;
	#count = 0;
	#resolve: (() => void) | undefined;

	private constructor(queue: BullQueue, events: BullQueueEvents) {
		this.#queue = queue;
		this.#events = events;
		events.on("completed", () => {
			if (++this.#count === this.#target) {
				this.#resolve?.();
			}
		});
	}

	static async open(port: number, queueName: string): Promise<RawProducer> {
		const { Queue, QueueEvents } = await import("bullmq");
		const connection = { host: "127.0.0.1", port, maxRetriesPerRequest: null };
		const queue = new Queue(queueName, { connection, prefix: "raw" });
		const events = new QueueEvents(queueName, { connection, prefix: "raw" });
		await Promise.all([queue.waitUntilReady(), events.waitUntilReady()]);
		return new RawProducer(queue, events);
	}

	/** Adds `count` no-op jobs at once and resolves with the milliseconds until all completed. */
	async burst(count: number): Promise<number> {
		this.#count = 0;
		this.#target = count;
		const done = new Promise<void>((resolve) => {
			this.#resolve = resolve;
		});
		const start = performance.now();
		await this.#queue.addBulk(Array.from({ length: count }, (_, i) => ({ name: "add", data: { a: i, b: 1 }, opts: { removeOnComplete: true, removeOnFail: true } })));
		await withTimeout(done, 300_000, `${count} raw BullMQ jobs`);
		return performance.now() - start;
	}

	async close(): Promise<void> {
		await Promise.allSettled([this.#events.close(), this.#queue.close()]);
	}
}

/** byop: `count` no-op calls submitted at once on a `Scheduler.withBullMQ` run; resolves with the milliseconds. */
async function byopBurst(task: Task<[number, number], number>, count: number): Promise<number> {
	const start = performance.now();
	const futures: Future<number>[] = [];
	for (let i = 0; i < count; i++) {
		futures.push(task.submit(i, 1)!);
	}
	const results = await withTimeout(Promise.allSettled(futures), 300_000, `${count} byop calls on BullMQ`);
	const ms = performance.now() - start;
	const failed = results.find((result) => result.status === "rejected");
	if (failed !== undefined) {
		throw new Error(`byop on BullMQ: ${results.filter((result) => result.status === "rejected").length} of ${count} calls failed`, { cause: (failed as PromiseRejectedResult).reason });
	}
	return ms;
}

/** The EXCEPTION of one call of a busy loop under the wall limit: from submit, and the host's `usage.wallMs`. */
async function overshoot(task: Task): Promise<{ seenMs: number; hostMs: number }> {
	const start = performance.now();
	const future = task.submit()!;
	const error = await withTimeout(
		new Promise<unknown>((resolve) => {
			future.then(
				() => resolve(new Error("the busy loop returned")),
				(reason: unknown) => resolve(reason),
			);
		}),
		30_000,
		"a busy loop under a wall limit on a host",
	);
	const seenMs = performance.now() - start;
	if (!(error instanceof WallTimeLimitError)) {
		throw new Error(`a busy loop under a ${WALL_LIMIT_MS} ms wall limit ended with ${String(error)}`);
	}
	return { seenMs: seenMs - WALL_LIMIT_MS, hostMs: (future.usage?.wallMs ?? Number.NaN) - WALL_LIMIT_MS };
}

/** Cancels a running remote sleep once it has started; the milliseconds from `cancel()` to its CANCELLED event. */
async function cancelLatency(task: Task<[number]>, probe: StartProbe): Promise<number> {
	const future = task.submit(60_000)!;
	const ended = new Promise<void>((resolve) => {
		future.then(
			() => resolve(),
			() => resolve(),
		);
	});
	await withTimeout(
		(async () => {
			while (probe.at(future) === undefined) {
				await delay(5);
			}
		})(),
		30_000,
		"a remote sleep to start",
	);
	// The job is active on a host; give its thread a moment to be inside the sleep.
	await delay(50);
	const start = performance.now();
	future.cancel("measured");
	let cancelledAt = Number.NaN;
	const off = task.on(Task.CANCELLED, (cancelled: Future) => {
		if (cancelled === future) {
			cancelledAt = performance.now();
		}
	});
	try {
		await withTimeout(ended, 30_000, "a cancelled remote sleep to end");
	} finally {
		off();
	}
	// The usage comes from the host's own ending of the job: without it the scheduler gave up waiting.
	if (future.usage === undefined) {
		throw new Error("a cancelled remote call ended without its host confirming it had stopped");
	}
	return cancelledAt - start;
}

export async function distributedSection(plan: DistributedPlan): Promise<Row[]> {
	const redis = await RedisServer.start();
	const children: ChildProcess[] = [];
	let session: Session | undefined;
	let raw: RawProducer | undefined;
	try {
		const url = redis.url;
		children.push(...(await startHosts(url, "bench")));
		children.push(...(await Promise.all(Array.from({ length: HOSTS }, () => startChild([RAW_WORKER, url, "raw", "raw", String(CONCURRENCY)], "ready")))));
		session = await open(Scheduler.withBullMQ({ connection: url, queueName: "bench", root: REPO }));
		const scheduler = session.scheduler;
		raw = await RawProducer.open(redis.port, "raw");
		const add = new Task<[number, number], number>(job("add"), scheduler);
		const producer = raw;
		const warmup = Math.max(100, plan.remoteJobs / 10);
		await byopBurst(add, warmup);
		await producer.burst(warmup);

		type Side = "byop" | "raw";
		const ms = new Map<Side, number[]>([
			["byop", []],
			["raw", []],
		]);
		await alternate(plan.rounds, ["byop", "raw"] as const, async (side, round) => {
			ms.get(side)![round] = side === "byop" ? await byopBurst(add, plan.remoteJobs) : await producer.burst(plan.remoteJobs);
			if (ms.get("byop")![round] !== undefined && ms.get("raw")![round] !== undefined) {
				plan.log(`  throughput round ${round + 1}/${plan.rounds}: byop ${Math.round((plan.remoteJobs / ms.get("byop")![round]!) * 1000)} calls/s, raw BullMQ ${Math.round((plan.remoteJobs / ms.get("raw")![round]!) * 1000)} jobs/s`);
			}
		});
		const rate = (side: Side): number[] => ms.get(side)!.map((value) => (plan.remoteJobs / value) * 1000);
		const ratios = ms.get("byop")!.map((value, round) => ms.get("raw")![round]! / value);

		plan.log("  wall-limit overshoot");
		const spin = new Task(job("spinForever"), scheduler, { plugins: [new PynisherPlugin({ wallTimeLimit: `${WALL_LIMIT_MS}ms` })] });
		const seen: number[] = [];
		const host: number[] = [];
		for (let i = 0; i < plan.remoteTrials; i++) {
			const figure = await overshoot(spin);
			seen.push(figure.seenMs);
			host.push(figure.hostMs);
		}

		plan.log("  cancel latency");
		const probe = new StartProbe();
		const sleep = new Task<[number]>(job("sleep"), scheduler, { plugins: [probe] });
		const cancels: number[] = [];
		for (let i = 0; i < plan.remoteTrials; i++) {
			cancels.push(await cancelLatency(sleep, probe));
		}

		const perSecond = (side: Side): string => `${Math.round(summarize(rate(side)).median).toLocaleString("en-US")}/s`;
		const workers = `${HOSTS} × ${CONCURRENCY}`;
		return [
			{
				section: DISTRIBUTED,
				measure: `byop on BullMQ ÷ raw BullMQ throughput, ${plan.remoteJobs.toLocaleString("en-US")} no-op jobs at once, ${workers} workers`,
				value: summarize(ratios),
				shape: "range",
				unit: "×",
				digits: 2,
				reference: `byop ${perSecond("byop")}, raw BullMQ ${perSecond("raw")}`,
				target: { stat: "median", op: ">=", value: 0.8 },
				whyMissed: DISTRIBUTED_WHY,
				chart: { group: "ratio", label: "byop on BullMQ" },
			},
			{
				section: DISTRIBUTED,
				measure: "byop on BullMQ: calls/s",
				value: summarize(rate("byop")),
				shape: "range",
				unit: "calls/s",
				digits: 0,
			},
			{
				section: DISTRIBUTED,
				measure: "raw BullMQ (addBulk, Worker, QueueEvents): jobs/s",
				value: summarize(rate("raw")),
				shape: "range",
				unit: "jobs/s",
				digits: 0,
			},
			{
				section: DISTRIBUTED,
				measure: `remote wall limit ${WALL_LIMIT_MS} ms, busy loop: submit to EXCEPTION, minus the limit`,
				value: summarize(seen),
				shape: "p95",
				unit: "ms",
				digits: 0,
				chart: { group: "overshoot", label: "remote wall limit" },
			},
			{
				section: DISTRIBUTED,
				measure: `remote wall limit ${WALL_LIMIT_MS} ms: the host's usage.wallMs minus the limit`,
				value: summarize(host),
				shape: "p95",
				unit: "ms",
				digits: 0,
			},
			{
				section: DISTRIBUTED,
				measure: "remote cancel of a running call: cancel() to CANCELLED, stopped on its host",
				value: summarize(cancels),
				shape: "p95",
				unit: "ms",
				digits: 0,
			},
		];
	} finally {
		await session?.close();
		await raw?.close();
		await Promise.allSettled(children.map((child) => stopChild(child)));
		await redis.stop();
	}
}

const DISTRIBUTED_WHY =
	"Measured on a machine shared with other work (load average 13–18 on 2 cores), where the rounds of either side vary 3–4× and the figure follows how much CPU each side gets. What each side spends per job, from `/proc/<pid>/stat` around 2,000 jobs (best runs): raw BullMQ 0.25–0.28 ms in the producer and 0.34–0.36 ms in its two worker processes together; byop 0.53–0.67 ms in the scheduler and 1.5–1.9 ms in its two hosts together, 1.9–2.7 ms before a host kept its module look-up for a second (it took the real path of the module file, one `lstat` per path component, for every job). What is left on a host is the hop of every call to a worker thread and back (piscina's `postMessage` and the thread's wake-up are the largest items in a host's profile), byop's call machinery in the thread (usage, the heap sample, the slot), and the envelope of the outcome (`v8.serialize` and base64); raw BullMQ runs its processor in the worker's own event loop. On the scheduler, each call is its own `Queue.add` (byop keeps at most `maxWorkers`, 64, on the queue; raw BullMQ adds the whole batch with one `addBulk`) and its finished job is removed with `Queue.remove`; skipping that removal, or keeping 512 calls on the queue, measured the same within the noise. Hosts with `--executor processes` were not measured.";
