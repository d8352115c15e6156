// The demo's embedded workload: which calls run where, under which limits, and how each is
// meant to end. Each limited call has a plugin for its one intent, with generous limits on the
// other axes, so that it is stopped by the limit it was written for and by no other.
import { Scheduler, type Where } from "../index.ts";
import { PynisherPlugin, type PynisherOptions } from "../pynisher/index.ts";

/** How a call ends: a result, an ordinary error, or the limit that stopped it. */
export type Ending = "result" | "error" | "wall" | "cpu" | "heap" | "rss" | "cancelled" | "unfinished";

/** The job functions of `jobs.ts`. */
export type JobName = "countPrimes" | "slowLookup" | "parseConfig" | "runawaySearch" | "stuckDownload" | "leakyIndex" | "loadImages" | "decodeVideo" | "archiveLogs";

/** What limits a call runs under: one intent each (see `INTENTS`). */
export type Intent = "none" | "guard" | "wall" | "cpu" | "heap" | "auto" | "rss";

/** One call of the workload, and how it is meant to end. */
export interface CallSpec {
	readonly job: JobName;
	readonly args: readonly unknown[];
	/** How the call is shown, e.g. `countPrimes(2e6)`. */
	readonly label: string;
	readonly intent: Intent;
	/** How it is meant to end. */
	readonly expect: Ending;
	/** Where it is meant to run in the end. */
	readonly where: Where;
}

/** One scheduler of the demo and the calls submitted to it. */
export interface Section {
	readonly name: "threads" | "processes" | "sequential";
	/** One line on what the section shows. */
	readonly title: string;
	readonly scheduler: () => Scheduler;
	readonly calls: readonly CallSpec[];
}

/** The limits of each intent: the one the calls are written to pass, and a generous wall guard. */
export const INTENTS: Readonly<Record<Exclude<Intent, "none">, PynisherOptions>> = {
	// Ordinary calls with a safety net; a CPU limit still moves a call that starts a child process.
	guard: { wallTimeLimit: "15s", cpuTimeLimit: "5s" },
	// A stuck call sees its signal abort and ends itself within the grace period.
	wall: { wallTimeLimit: "800ms", gracePeriod: "200ms" },
	cpu: { cpuTimeLimit: "300ms", wallTimeLimit: "15s" },
	heap: { memoryLimit: "64mb", memoryKind: "heap", wallTimeLimit: "15s" },
	auto: { memoryLimit: "128mb", memoryKind: "auto", wallTimeLimit: "15s" },
	rss: { memoryLimit: "256mb", memoryKind: "rss", wallTimeLimit: "15s" },
};

/** The limits of an intent in a few words, e.g. `cpu 400 ms, wall 15 s`. */
export function describeIntent(intent: Intent): string {
	if (intent === "none") {
		return "none";
	}
	const { limits } = new PynisherPlugin(INTENTS[intent]);
	const parts: string[] = [];
	if (limits.memoryBytes !== undefined) {
		parts.push(`${limits.memoryKind} ${limits.memoryBytes / 2 ** 20} MB`);
	}
	if (limits.cpuMs !== undefined) {
		parts.push(`cpu ${formatMs(limits.cpuMs)}`);
	}
	if (limits.wallMs !== undefined) {
		parts.push(`wall ${formatMs(limits.wallMs)}`);
	}
	if (limits.graceMs > 0) {
		parts.push(`grace ${formatMs(limits.graceMs)}`);
	}
	return parts.join(", ");
}

function formatMs(ms: number): string {
	return ms >= 1000 ? `${ms / 1000} s` : `${ms} ms`;
}

function call(job: JobName, args: readonly unknown[], label: string, intent: Intent, expect: Ending, where: Where): CallSpec {
	return { job, args, label, intent, expect, where };
}

const url = (n: number) => `https://example.invalid/data-${n}`;

/** The default workload: about 30 calls on a thread pool, then a few on processes and on the main thread. */
export const WORKLOAD: readonly Section[] = [
	{
		name: "threads",
		title: "a pool of 2 worker threads: every limit, and calls that move to a process",
		scheduler: () => Scheduler.withThreads({ maxWorkers: 2 }),
		calls: [
			call("countPrimes", [2_000_000], "countPrimes(2e6)", "none", "result", "thread"),
			call("slowLookup", ["users", 300], 'slowLookup("users")', "guard", "result", "thread"),
			call("stuckDownload", [url(1)], "stuckDownload(url 1)", "wall", "wall", "thread"),
			call("runawaySearch", [], "runawaySearch()", "cpu", "cpu", "thread"),
			call("countPrimes", [1_000_000], "countPrimes(1e6)", "guard", "result", "thread"),
			call("loadImages", [24], "loadImages(24 MB)", "auto", "result", "thread"),
			call("parseConfig", ['{"retries": 3}'], "parseConfig(good)", "none", "result", "thread"),
			call("decodeVideo", [300], "decodeVideo(300 MB)", "auto", "rss", "process"),
			call("slowLookup", ["orders", 200], 'slowLookup("orders")', "none", "result", "thread"),
			call("leakyIndex", [], "leakyIndex()", "heap", "heap", "thread"),
			call("countPrimes", [500_000], "countPrimes(5e5)", "guard", "result", "thread"),
			call("archiveLogs", [12], "archiveLogs(12)", "guard", "result", "process"),
			call("parseConfig", ["{retries: 3"], "parseConfig(broken)", "none", "error", "thread"),
			call("countPrimes", [3_000_000], "countPrimes(3e6)", "none", "result", "thread"),
			call("loadImages", [400], "loadImages(400 MB)", "rss", "rss", "process"),
			call("slowLookup", ["prices", 150], 'slowLookup("prices")', "guard", "result", "thread"),
			call("stuckDownload", [url(2)], "stuckDownload(url 2)", "wall", "wall", "thread"),
			call("loadImages", [40], "loadImages(40 MB)", "auto", "result", "thread"),
			call("countPrimes", [1_000_000], "countPrimes(1e6)", "none", "result", "thread"),
			call("slowLookup", ["stock", 100], 'slowLookup("stock")', "none", "result", "thread"),
			call("countPrimes", [3_000_000], "countPrimes(3e6)", "cpu", "result", "thread"),
			call("parseConfig", ['{"mode": "fast"}'], "parseConfig(good)", "guard", "result", "thread"),
			call("countPrimes", [2_000_000], "countPrimes(2e6)", "guard", "result", "thread"),
			call("slowLookup", ["users", 50], 'slowLookup("users")', "none", "result", "thread"),
			call("countPrimes", [800_000], "countPrimes(8e5)", "none", "result", "thread"),
			call("loadImages", [16], "loadImages(16 MB)", "auto", "result", "thread"),
			call("countPrimes", [1_000_000], "countPrimes(1e6)", "guard", "result", "thread"),
			call("slowLookup", ["summary", 50], 'slowLookup("summary")', "none", "result", "thread"),
			call("countPrimes", [1_500_000], "countPrimes(1.5e6)", "none", "result", "thread"),
			call("slowLookup", ["report", 100], 'slowLookup("report")', "guard", "result", "thread"),
		],
	},
	{
		name: "processes",
		title: "a pool of 2 forked processes: a true RSS limit, CPU and wall time per process",
		scheduler: () => Scheduler.withProcesses({ maxWorkers: 2 }),
		calls: [
			call("countPrimes", [2_000_000], "countPrimes(2e6)", "guard", "result", "process"),
			call("loadImages", [400], "loadImages(400 MB)", "rss", "rss", "process"),
			call("runawaySearch", [], "runawaySearch()", "cpu", "cpu", "process"),
			call("stuckDownload", [url(4)], "stuckDownload(url 4)", "wall", "wall", "process"),
		],
	},
	{
		name: "sequential",
		title: "the main thread: unlimited calls run here, limited ones in a process",
		scheduler: () => Scheduler.withSequential(),
		calls: [
			call("countPrimes", [1_000_000], "countPrimes(1e6)", "none", "result", "main"),
			call("slowLookup", ["users", 100], 'slowLookup("users")', "none", "result", "main"),
			call("stuckDownload", [url(5)], "stuckDownload(url 5)", "wall", "wall", "process"),
		],
	},
];
