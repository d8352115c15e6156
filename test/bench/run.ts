// `npm run bench`: measures byop against piscina, tinypool and workerpool, and how closely it holds
// its limits; prints a table and writes docs/benchmarks.md and docs/benchmarks.svg.
//
//   npm run bench                 the full run (a few minutes), writes the docs
//   npm run bench -- --quick      fewer rounds and smaller batches, prints only
//   npm run bench -- --only=1,3   some sections only, prints only
import { writeFileSync } from "node:fs";
import { CLI_MAP, cliMapSection } from "./cli-map.ts";
import { commSection, FLOOD } from "./comm.ts";
import { CONCURRENCY, DISTRIBUTED, distributedSection, type DistributedPlan, HOSTS } from "./distributed.ts";
import { dispatchSection, scaleSection, serialSection } from "./dispatch.ts";
import { escalationSection } from "./escalation.ts";
import { idleSection } from "./idle.ts";
import { ISOLATION_GAP_MS, isolationSection, type IsolationPlan } from "./isolation.ts";
import { limitsSection } from "./limits.ts";
import { chart, currentLoad, describeMachine, markdown, type Methods, printTable, type Row, status } from "./report.ts";
import { userLimitsSection, type UserPlan } from "./user-limits.ts";

const args = process.argv.slice(2);
const quick = args.includes("--quick");
const only = args.find((arg) => arg.startsWith("--only="))?.slice("--only=".length).split(",").map(Number);
const write = !quick && only === undefined && !args.includes("--no-write");

const plan: UserPlan & IsolationPlan & DistributedPlan & { readonly trials: number } = {
	rounds: quick ? 3 : 5,
	ratioRounds: quick ? 3 : 9,
	burst: quick ? 5_000 : 20_000,
	warmup: quick ? 1_000 : 2_000,
	serialCalls: quick ? 500 : 2_000,
	scaleSizes: quick ? [1_000, 10_000] : [1_000, 10_000, 100_000],
	trials: quick ? 5 : 20,
	userCalls: quick ? 5 : 12,
	transpileCalls: quick ? 10 : 30,
	isolationCalls: quick ? 20 : 40,
	spacedCalls: quick ? 5 : 8,
	remoteJobs: quick ? 500 : 2_000,
	remoteTrials: quick ? 5 : 10,
	log: (line) => console.error(line),
};

const methods: Methods = {
	"1. Dispatch overhead: 20,000 no-op calls at once on 2 threads":
		"Each round starts every pool afresh (2 threads), runs one call (its start-up figure), 2,000 calls of warm-up, then the measured burst: 20,000 calls of `(a, b) => a + b` submitted at once, timed from the first submit to the last result. byop submits with `task.submit()` from a `Scheduler.withThreads({ maxWorkers: 2 })` run and counts `Task.RESULT` events; the peers await `Promise.all` of their `run()`/`exec()` promises. The limited variant adds a `PynisherPlugin` with a 5 min wall limit, a 5 min CPU limit and a 512 MB memory limit (`memoryKind` \"auto\", the default). byop is measured as it ships, from the JavaScript in `dist/` (`npm run bench` builds it first), with a plain `.mjs` job module, as the peers' workers are plain `.mjs` files.",
	"2. One call in flight":
		"One byop run and one piscina pool stay open for the whole section; after a warm-up, each round times 2,000 calls awaited one after another (`await task.submit(i, 1)` against `await pool.run()`), alternating between them. The figure is the ratio of calls per second within a round.",
	"3. Limit precision":
		"Each trial runs one call alone on a warm executor (2 idle workers are made ready before each trial) and waits for its `EXCEPTION` event. Time trials run a busy loop (`for (;;) {}`), which cannot react to anything: the thread is terminated or the process killed from outside. The heap trials grow the V8 heap in 80 KB arrays and write `v8.getHeapStatistics().used_heap_size` into a `SharedArrayBuffer` as they go, so the heap in use at the kill can be read after the thread is gone. The RSS trials fill 1 MB Buffers, paced at 1 GB/s or unpaced, in a forked process. For comparison: pynisher 1.0.10 (the Python original), measured on this machine, stops a task 5,005 ms late on a wall limit and 12–13 ms late on a CPU limit; piscina, tinypool and workerpool have no CPU or RSS limit at all (only an abort signal or a timeout, and `resourceLimits` for the heap).",
	"4. Escalation cost":
		"Warm process against thread: one run of each kind stays open, and each round times 500 awaited no-op calls on each (the median call of each block). Cold fork: a fresh `Scheduler.withThreads()` run whose first call has `memoryKind: \"rss\"`, so the process pool is created and forked for it, timed from `submit()` to the result; beside it, a bare `child_process.fork()` of a minimal child (plain node, and node with the `--max-old-space-size` flag a pool process for that limit starts with) until it answers one message. Escalation: a fresh run per round; a call with `memoryKind: \"auto\"` and a 128 MB limit fills 256 MB of Buffers in a thread, is stopped there and re-run in a process under a true RSS limit; then the same task's next call goes straight to a process.",
	"5. Scale: no-op calls queued at once":
		"One byop run on 2 threads, warmed up; each round submits 1,000, 10,000 and 100,000 no-op calls at once (order reversed every other round), each after 2,000 calls of warm-up, and times them from the first submit to the last result; the 1,000-call batch is run 10 times in a row (each queued at once and drained) so that it is timed over as long as the 10,000-call one. The heap is measured in a second pass: a full garbage collection (`v8.setFlagsFromString('--expose-gc')`), the calls queued, another full collection, the heap in use compared, then the queued calls cancelled. Forced collections slow the next few thousand calls, so that pass comes after the timed one.",
	"6. Watchdog idle cost":
		"2 calls that sleep (an awaited timer) run with a 5 min wall limit, a 5 min CPU limit and a 512 MB memory limit; after 0.5 s, the CPU time of the main thread (`/proc/thread-self/schedstat`) and of the whole process is read over five 1-second windows (each a round). The watchdog checks each call when it could first have passed a limit, and at least once a second; the 10-second wait of the issue is cut to 5 windows to keep the run short. The same with no limits is the baseline.",
	"7. Limits as a user sees them":
		"Calls as a user makes them, with no warm-up or re-warming between them: on a fresh `Scheduler.withThreads({ maxWorkers: 2 })` run, and on a fresh `Scheduler.withProcesses({ maxWorkers: 2 })` run, a series of 12 calls of a busy loop (`for (;;) {}`) under a 500 ms wall limit, and another series on another fresh run under a 500 ms CPU limit; each call is submitted 150 ms after the previous call's `EXCEPTION` event, and the figure is the time from `submit()` to that event, minus the limit. The first call of each series pays the pool's first start and is left out of the figures (the reference column gives it). The transpile row runs a job module that imports the TypeScript compiler and runs `ts.transpileModule` on the text of 30 `.ts` files of `src/`, each twice, per call: each of 5 rounds times 30 calls awaited one after another on a `Scheduler.withProcesses({ maxWorkers: 1 })` run whose task has a `PynisherPlugin({ memoryLimit: \"512mb\", memoryKind: \"rss\" })`, and 30 on another such run without a plugin, alternating between them, after a first call and 2 calls of warm-up on each; the figure is the ratio of the time per call within a round.",
	[CLI_MAP]:
		"Each round runs two commands from a fresh start to their exit, alternating: `byop map --concurrency 2 --input in.jsonl --output out.jsonl jobs.mjs#add` (the built `dist/src/cli/main.js`) over 10,000 lines `[i, 1]`, and a plain Node script (`test/bench/map-piscina.mjs`) that reads the same lines with `readline`, sends each to a piscina pool of 2 threads with `pool.run()` (all at once, as a plain loop does) and writes one JSON line per result. Both times include Node's start, the pool's start and writing the output; the output is checked to hold 10,000 lines.",
	"8. Per-call isolation":
		`Threads and processes, each with \`maxWorkers: 2\`: one run with \`isolate: "none"\` (threads and processes reused) and one with \`isolate: "call"\` (a fresh thread or process for every call, a spare started ahead) stay open for the whole section, each after a first call and 2 calls of warm-up. Each round times, on each run in turn, ${plan.isolationCalls} no-op calls awaited one after another (back to back: the spare started after a call may not be ready for the next), then ${plan.spacedCalls} calls ${ISOLATION_GAP_MS} ms apart (the gaps not counted: a spare has time to start); the figure is the ratio of the time per call within a round.`,
	"10. Comm flood":
		`Threads and processes, each with \`maxWorkers: 2\`: each round opens a fresh run, makes one call of a task with a \`CommPlugin\` (the worker starts, the module loads), then times one call that sends ${FLOOD.toLocaleString("en")} small messages (\`await comm.send(i)\`, the integers 0 to ${(FLOOD - 1).toLocaleString("en")}), from \`submit()\` until the call has settled, with every message counted by a \`MESSAGE\` handler. The longest pause is the largest event-loop delay of the main thread over that time (\`perf_hooks.monitorEventLoopDelay\`, 1 ms resolution).`,	[DISTRIBUTED]:
		`One \`redis-server\` (no persistence, on 127.0.0.1) is started for the section and stopped after it. byop: ${HOSTS} worker hosts, each \`byop worker --concurrency ${CONCURRENCY} --executor threads\` (the built \`dist/src/cli/main.js\`), and one \`Scheduler.withBullMQ\` run with its default \`maxWorkers\`; each round submits ${plan.remoteJobs.toLocaleString("en")} no-op calls \`(a, b) => a + b\` at once and times them from the first \`submit()\` until every future has settled. Raw BullMQ, on the same Redis (another queue): ${HOSTS} worker processes, each a \`bullmq\` \`Worker\` with concurrency ${CONCURRENCY} and the processor \`(job) => job.data.a + job.data.b\` (\`test/bench/bullmq-worker.mjs\`), and a producer that adds the same number of jobs with one \`Queue.addBulk\` (\`removeOnComplete: true\`) and counts their \`completed\` events on a \`QueueEvents\`, timed from before \`addBulk\` to the last event. Both sides are warmed up first (a tenth of a round); the rounds alternate between them, and the figure is the ratio of throughput within a round. The wall-limit rows run, one after another, ${plan.remoteTrials} calls of a busy loop (\`for (;;) {}\`) with a \`PynisherPlugin({ wallTimeLimit: "500ms" })\` on the same hosts: the time from \`submit()\` until the call's future rejects with \`WallTimeLimitError\`, minus 500 ms, and the \`usage.wallMs\` the host reports, minus 500 ms. The cancel row runs ${plan.remoteTrials} calls of a 60 s sleep one after another: once the call has started on a host (a plugin's \`started\` hook, which the scheduler calls when BullMQ reports the job active) and 50 ms more, \`future.cancel()\`, timed until the task's \`CANCELLED\` event; the scheduler ends such a call when its host has stopped it and completed its job as cancelled (each call is checked to carry the host's usage, so none of them ended by the scheduler giving up on the host).`,
};

const sections: readonly (readonly [number, string, () => Promise<Row[]>])[] = [
	[1, "dispatch overhead", () => dispatchSection(plan)],
	[2, "one call in flight", () => serialSection(plan)],
	[3, "limit precision", () => limitsSection(plan)],
	[4, "escalation cost", () => escalationSection(plan)],
	[5, "scale", () => scaleSection(plan)],
	[6, "watchdog idle cost", () => idleSection(plan)],
	[7, "limits as a user sees them", () => userLimitsSection(plan)],
	[9, "byop map", () => cliMapSection(plan)],
	[8, "per-call isolation", () => isolationSection(plan)],
	[10, "comm flood", () => commSection(plan)],
	[11, "byop on BullMQ", () => distributedSection(plan)],
];

const loadAtStart = currentLoad();
const started = performance.now();
const rows: Row[] = [];
const failures: string[] = [];
for (const [number, name, run] of sections) {
	if (only !== undefined && !only.includes(number)) {
		continue;
	}
	const sectionStart = performance.now();
	console.error(`${number}. ${name}…`);
	try {
		rows.push(...(await run()));
	} catch (error) {
		failures.push(`${number}. ${name}`);
		console.error(`   section ${number} failed:`, error);
	}
	console.error(`   ${((performance.now() - sectionStart) / 1000).toFixed(1)} s`);
}
const durationS = (performance.now() - started) / 1000;
const loadAtEnd = currentLoad();

console.log(printTable(rows));
const missed = rows.filter((row) => status(row) === "missed");
console.log(`\n${rows.filter((row) => status(row) === "met").length} targets met, ${missed.length} missed; ${durationS.toFixed(0)} s in all; load average ${loadAtStart.toFixed(2)} at the start, ${loadAtEnd.toFixed(2)} at the end.`);

if (failures.length > 0) {
	console.log(`Failed sections: ${failures.join(", ")}; the docs are not written.`);
	process.exitCode = 1;
} else if (write) {
	const machine = describeMachine(durationS, loadAtStart, loadAtEnd);
	writeFileSync(new URL("../../docs/benchmarks.md", import.meta.url), markdown(rows, machine, methods));
	writeFileSync(new URL("../../docs/benchmarks.svg", import.meta.url), chart(rows));
	console.log("Wrote docs/benchmarks.md and docs/benchmarks.svg.");
}
