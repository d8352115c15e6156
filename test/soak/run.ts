// The soak run itself (started by soak.ts, from a build in plain node): 50,000 mixed calls on the thread pool and on the process pool,
// 5% of them stopped by a limit and 1% crashing their worker. Reports throughput, the main
// process's memory after warm-up and at the end, the peak number of threads and processes, and
// what was left behind. Exits with code 1 when an invariant is broken or RSS grew by more than 5%.
import { readdirSync } from "node:fs";
import os from "node:os";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { type Future, Scheduler, WorkerCrashedError } from "../../src/index.ts";
import { LimitExceededError, PynisherPlugin } from "../../src/pynisher/index.ts";
import { descendants, leaksSince, snapshot } from "../leaks.ts";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

const TOTAL = Number(process.env["SOAK_CALLS"] ?? 50_000);
// Processes are scaled down: each limit hit or crash replaces a forked process (~0.15 s against
// ~0.01 s for a thread), so 50,000 calls there would take over ten minutes on two cores.
const PROCESS_CALLS = Number(process.env["SOAK_PROCESS_CALLS"] ?? Math.min(TOTAL, 20_000));
const WINDOW = 64;
const WARM_UP = 0.1;

const ref = (name: string) => ({ module: new URL("./jobs.mjs", import.meta.url), name });

type Plan = "echo" | "raise" | "wall" | "cpu" | "crash";

/** The plan of call `i`: 1% crash, 5% hit a limit (half wall, half CPU), 2% throw, the rest echo. */
function plan(i: number): Plan {
	const slot = i % 100;
	if (slot === 37) {
		return "crash";
	}
	if (slot % 20 === 3) {
		return slot % 40 === 3 ? "wall" : "cpu";
	}
	if (slot === 11 || slot === 61) {
		return "raise";
	}
	return "echo";
}

function mb(bytes: number): string {
	return (bytes / 1024 / 1024).toFixed(1);
}

async function soak(executor: "threads" | "processes", total: number) {
	const scheduler = executor === "threads" ? Scheduler.withThreads({ maxWorkers: 2 }) : Scheduler.withProcesses({ maxWorkers: 2 });
	const wall = new PynisherPlugin({ wallTimeLimit: "50ms" });
	const cpu = new PynisherPlugin({ cpuTimeLimit: "30ms" });
	const tasks = {
		echo: scheduler.task(ref("echo")),
		raise: scheduler.task(ref("raise")),
		wall: scheduler.task(ref("nap"), { plugins: [wall] }),
		cpu: scheduler.task(ref("spin"), { plugins: [cpu] }),
		crash: scheduler.task(ref("exitWith")),
	};
	const argsOf: Record<Plan, unknown[]> = { echo: [{ id: 0, payload: "x".repeat(64) }], raise: ["planned"], wall: [5_000], cpu: [5_000], crash: [3] };
	const planned: Record<Plan, number> = { echo: 0, raise: 0, wall: 0, cpu: 0, crash: 0 };
	const outcome = { result: 0, exception: 0, cancelled: 0, limit: 0, crashed: 0, other: 0, events: 0 };
	// Calls in flight, by id: a call that ends twice, or never, is caught without holding on to
	// every future of the run (which would be the soak's own memory growth).
	const inFlight = new Set<number>();
	let endedTwice = 0;
	const plans = new Map<Future, Plan>();
	/** How each kind of call ended: `plan -> outcome -> count`. */
	const byPlan: Record<string, Record<string, number>> = {};
	let submitted = 0;
	let peakThreads = 0;
	let peakProcesses = 0;
	let warm: { rss: number; heap: number; at: number; done: number } | undefined;
	// A short run first, so that handles Node creates once (such as /dev/null for the first fork)
	// exist before the baseline.
	const warmUp = executor === "threads" ? Scheduler.withThreads({ maxWorkers: 2 }) : Scheduler.withProcesses({ maxWorkers: 2 });
	const warmTasks = [warmUp.task(ref("echo")), warmUp.task(ref("exitWith"))] as const;
	warmUp.on(Scheduler.STARTED, () => {
		warmTasks[0].submit(1);
		warmTasks[1].submit(3);
	});
	await warmUp.run({ onException: "continue" });
	const before = snapshot();
	const start = { rss: process.memoryUsage.rss(), heap: process.memoryUsage().heapUsed };
	const sampler = setInterval(() => {
		peakThreads = Math.max(peakThreads, readdirSync("/proc/self/task").length);
		peakProcesses = Math.max(peakProcesses, descendants().live.length);
	}, 100);

	const submitOne = (): void => {
		const i = submitted++;
		const which = plan(i);
		planned[which]++;
		const future = tasks[which].submit(...(which === "echo" ? [{ id: i, payload: "x".repeat(64) }] : argsOf[which]));
		if (future !== undefined) {
			plans.set(future, which);
			inFlight.add(future.id);
		}
	};
	let done = 0;
	const t0 = performance.now();
	scheduler.on(Scheduler.FUTURE_DONE, (future) => {
		if (!inFlight.delete(future.id)) {
			endedTwice++;
		}
		const how = future.state === "exception" ? (future.exception as Error).name : future.state;
		const kind = plans.get(future) ?? "?";
		byPlan[kind] ??= {};
		byPlan[kind][how] = (byPlan[kind][how] ?? 0) + 1;
		plans.delete(future);
		done++;
		if (warm === undefined && done >= total * WARM_UP) {
			gc();
			warm = { rss: process.memoryUsage.rss(), heap: process.memoryUsage().heapUsed, at: performance.now(), done };
		}
		if (submitted < total) {
			submitOne();
		}
	});
	scheduler.on(Scheduler.FUTURE_RESULT, () => outcome.result++);
	scheduler.on(Scheduler.FUTURE_CANCELLED, () => outcome.cancelled++);
	scheduler.on(Scheduler.FUTURE_EXCEPTION, (_future, error) => {
		outcome.exception++;
		if (error instanceof LimitExceededError) {
			outcome.limit++;
		} else if (error instanceof WorkerCrashedError) {
			outcome.crashed++;
		} else if (!(error instanceof Error && error.message === "planned")) {
			outcome.other++;
			if (outcome.other <= 3) {
				console.error(`unexpected: ${String(error)}`);
			}
		}
	});
	tasks.wall.on(wall.TIMEOUT, () => outcome.events++);
	tasks.cpu.on(cpu.TIMEOUT, () => outcome.events++);
	scheduler.on(Scheduler.STARTED, () => {
		while (submitted < Math.min(WINDOW, total)) {
			submitOne();
		}
	});
	const exit = await scheduler.run({ onException: "continue" });
	const seconds = (performance.now() - t0) / 1000;
	clearInterval(sampler);
	gc();
	const end = { rss: process.memoryUsage.rss(), heap: process.memoryUsage().heapUsed };
	const leaks = await leaksSince(before, [], 5000);
	const once = endedTwice === 0 && inFlight.size === 0 && submitted === total;
	const growth = warm === undefined ? 0 : (end.rss - warm.rss) / warm.rss;
	const report = {
		executor,
		calls: total,
		exit: exit.code,
		seconds: Number(seconds.toFixed(1)),
		callsPerSecond: Math.round(total / seconds),
		planned,
		outcome,
		byPlan,
		everyCallEndedOnce: once,
		rssMb: { start: mb(start.rss), afterWarmUp: mb(warm?.rss ?? 0), end: mb(end.rss) },
		heapMb: { start: mb(start.heap), afterWarmUp: mb(warm?.heap ?? 0), end: mb(end.heap) },
		rssGrowthAfterWarmUp: `${(growth * 100).toFixed(1)}%`,
		peakThreads,
		peakProcesses,
		leaks,
	};
	console.log(JSON.stringify(report, null, 2));
	const problems: string[] = [];
	if (!once) problems.push("a call did not end exactly once");
	if (outcome.result + outcome.exception + outcome.cancelled !== total) problems.push("scheduler counts do not add up");
	if (outcome.crashed !== planned.crash) problems.push(`crashes: ${outcome.crashed} of ${planned.crash}`);
	if (outcome.limit !== planned.wall + planned.cpu || outcome.events !== outcome.limit) problems.push(`limit hits: ${outcome.limit} (${outcome.events} events) of ${planned.wall + planned.cpu}`);
	if (outcome.other > 0) problems.push(`${outcome.other} unexpected errors`);
	if (growth > 0.05) problems.push(`RSS grew by ${(growth * 100).toFixed(1)}% after warm-up`);
	if (leaks.fds > 0 || leaks.threads > 0 || leaks.live.length > 0 || leaks.zombies.length > 0 || Object.keys(leaks.refed).length > 0) problems.push("something was left behind");
	return problems;
}

console.log(`soak: ${new Date().toISOString()}, ${os.cpus().length} cores, Node ${process.version}, ${os.type()} ${os.release()}`);
const only = process.env["SOAK_ONLY"];
const problems = [...(only === "processes" ? [] : await soak("threads", TOTAL)), ...(only === "threads" ? [] : await soak("processes", PROCESS_CALLS))];
if (problems.length > 0) {
	console.error(`soak failed:\n- ${problems.join("\n- ")}`);
	process.exitCode = 1;
} else {
	console.log("soak passed");
}
