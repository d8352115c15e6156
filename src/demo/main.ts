// `npm start`: the scheduler and its limits at work on an embedded workload.
import { Scheduler, type Future, Task } from "../index.ts";
import { PynisherPlugin } from "../pynisher/index.ts";

const jobs = new URL(`./jobs${import.meta.url.endsWith(".ts") ? ".ts" : ".js"}`, import.meta.url);
const ref = (name: string) => ({ module: jobs, name });

interface Row {
	executor: string;
	call: string;
	outcome: string;
	where: string;
	wall: string;
	cpu: string;
	memory: string;
}

const rows: Row[] = [];
const events: string[] = [];

function describe(executor: string, future: Future, call: string): void {
	const usage = future.usage;
	const error = future.exception as (Error & { code?: string }) | undefined;
	rows.push({
		executor,
		call,
		outcome: future.state === "result" ? `result ${JSON.stringify(future.result)}` : future.state === "exception" ? `${error?.name}${error?.code ? ` (${error.code})` : ""}` : future.state,
		where: usage?.where ?? "-",
		wall: usage ? `${usage.wallMs.toFixed(0)} ms` : "-",
		cpu: usage && usage.cpuMs >= 0 ? `${usage.cpuMs.toFixed(0)} ms` : "-",
		memory: usage ? `${(usage.peakMemoryBytes / 1024 / 1024).toFixed(0)} MB` : "-",
	});
}

function table(): string {
	const header: Row = { executor: "executor", call: "call", outcome: "outcome", where: "ran in", wall: "wall", cpu: "cpu", memory: "peak memory" };
	const keys = Object.keys(header) as (keyof Row)[];
	const widths = keys.map((key) => Math.max(header[key].length, ...rows.map((row) => row[key].length)));
	const line = (row: Row) => keys.map((key, i) => row[key].padEnd(widths[i] ?? 0)).join("  ");
	return [line(header), widths.map((width) => "-".repeat(width)).join("  "), ...rows.map(line)].join("\n");
}

async function demo(executor: "threads" | "processes" | "sequential", scheduler: Scheduler, calls: [Task, string, unknown[]][]): Promise<void> {
	scheduler.on(Scheduler.STARTED, () => {
		for (const [task, label, args] of calls) {
			const future = task.submit(...args);
			future?.then(
				() => describe(executor, future, label),
				() => describe(executor, future, label),
			);
		}
	});
	const started = performance.now();
	const exit = await scheduler.run({ timeout: "60s", onException: "continue" });
	await new Promise((resolve) => setImmediate(resolve));
	console.log(`  ${executor}: run ended "${exit.code}" after ${(performance.now() - started).toFixed(0)} ms`);
}

function limited(scheduler: Scheduler, name: string, plugin: PynisherPlugin): Task {
	const task = scheduler.task(ref(name), { plugins: [plugin] });
	task.on(plugin.TIMEOUT, (error) => events.push(`${name}: TIMEOUT (${error.code})`));
	task.on(plugin.WALL_TIME_LIMIT_REACHED, (error) => events.push(`${name}: WALL_TIME_LIMIT_REACHED after ${error.observed.toFixed(0)} ms (limit ${error.limit} ms)`));
	task.on(plugin.CPU_TIME_LIMIT_REACHED, (error) => events.push(`${name}: CPU_TIME_LIMIT_REACHED after ${error.observed.toFixed(0)} ms of CPU (limit ${error.limit} ms)`));
	task.on(plugin.MEMORY_LIMIT_REACHED, (error) =>
		events.push(`${name}: MEMORY_LIMIT_REACHED (${error.memoryKind}) at ${(error.observed / 1024 / 1024).toFixed(0)} MB (limit ${(error.limit / 1024 / 1024).toFixed(0)} MB)`),
	);
	return task;
}

console.log("byop demo: a scheduler that puts wall-time, CPU-time and memory limits on every task\n");

// 1. A worker-thread pool. Wall and CPU limits stop runaway calls; the heap cap stops heap
//    growth; "auto" memory re-runs a call that fills memory outside the heap in a process.
{
	const scheduler = Scheduler.withThreads({ maxWorkers: 2 });
	const limits = new PynisherPlugin({ wallTimeLimit: "1s", cpuTimeLimit: "500ms", memoryLimit: "128mb", gracePeriod: "100ms" });
	const heap = new PynisherPlugin({ memoryLimit: "96mb", memoryKind: "heap" });
	const primes = scheduler.task(ref("countPrimes"));
	await demo("threads", scheduler, [
		[primes, "countPrimes(2e6)", [2_000_000]],
		[limited(scheduler, "countPrimes", limits), "countPrimes(5e5) limited", [500_000]],
		[limited(scheduler, "runawaySearch", limits), "runawaySearch()", []],
		[limited(scheduler, "stuckDownload", limits), "stuckDownload(url)", ["https://example.invalid/data"]],
		[limited(scheduler, "leakyIndex", heap), "leakyIndex() heap 96 MB", []],
		[limited(scheduler, "loadImages", limits), "loadImages(400 MB)", [400]],
	]);
}

// 2. A pool of forked processes: a true RSS limit, and CPU time per process.
{
	const scheduler = Scheduler.withProcesses({ maxWorkers: 2 });
	const rss = new PynisherPlugin({ memoryLimit: "256mb", memoryKind: "rss", cpuTimeLimit: "500ms" });
	await demo("processes", scheduler, [
		[limited(scheduler, "loadImages", rss), "loadImages(100 MB)", [100]],
		[limited(scheduler, "loadImages", rss), "loadImages(600 MB)", [600]],
		[limited(scheduler, "runawaySearch", rss), "runawaySearch()", []],
	]);
}

// 3. The main thread: calls without limits run here; a limited call goes to a process, so the
//    main thread is never limited and never blocked.
{
	const scheduler = Scheduler.withSequential();
	const wall = new PynisherPlugin({ wallTimeLimit: "300ms" });
	await demo("sequential", scheduler, [
		[scheduler.task(ref("countPrimes")), "countPrimes(1e6)", [1_000_000]],
		[limited(scheduler, "stuckDownload", wall), "stuckDownload(url)", ["https://example.invalid/slow"]],
	]);
}

console.log(`\n${table()}\n\nLimit events, in the order they were emitted:\n${events.map((event) => `  ${event}`).join("\n")}`);
