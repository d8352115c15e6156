// Section 7: limits as a user sees them: limited calls one after another on a fresh run, each
// stopped by its limit, with no warm-up between them; and what an RSS limit costs a real job.
import { readdirSync, readFileSync } from "node:fs";
import { CpuTimeLimitError, type Future, type LimitExceededError, processIds, type PynisherOptions, PynisherPlugin, Scheduler, Task, WallTimeLimitError } from "./byop.ts";
import type { Plan } from "./dispatch.ts";
import { alternate, delay, job, open, processes, type Session, StartProbe, summarize, threads, withTimeout } from "./harness.ts";
import type { Row } from "./report.ts";

const SECTION = "7. Limits as a user sees them";
const MiB = 1024 * 1024;

/** The limit of every serial call, in milliseconds. */
const LIMIT_MS = 500;
/** How long after a call's EXCEPTION event the next one is submitted, in milliseconds. */
const PAUSE_MS = 150;
const WALL_TARGET = 25;
const CPU_TARGET = 30;
/** How many files of src/ the transpile job gets, each twice per call. */
const SOURCE_FILES = 30;

/** Options of this section, beside the shared ones. */
export interface UserPlan extends Plan {
	/** Limited calls per series, the first of them left out of the figures. */
	readonly userCalls: number;
	/** Awaited transpile calls per side and round. */
	readonly transpileCalls: number;
}

type Kind = "thread" | "process";
type Limit = "wall" | "cpu";

const PLURAL: Readonly<Record<Kind, string>> = { thread: "threads", process: "processes" };

interface Series {
	/** From `submit()` to the task's EXCEPTION event, minus the limit, in milliseconds; the first call left out. */
	readonly outside: number[];
	/** `error.observed - error.limit`, the first call left out. */
	readonly reported: number[];
	/** From `submit()` to the call's start, the first call left out. */
	readonly startDelay: number[];
	/** The first call's `submit()` → EXCEPTION, minus the limit: it pays the pool's first start. */
	readonly first: number;
}

/** Runs `calls` limited busy loops one after another on a fresh run, each submitted `PAUSE_MS` after the last one's EXCEPTION event. */
async function series(kind: Kind, limit: Limit, calls: number): Promise<Series> {
	const session = await open(kind === "thread" ? threads() : processes());
	const figures = { outside: [] as number[], reported: [] as number[], startDelay: [] as number[], first: Number.NaN };
	try {
		const options: PynisherOptions = limit === "wall" ? { wallTimeLimit: [LIMIT_MS / 1000, "s"] } : { cpuTimeLimit: [LIMIT_MS / 1000, "s"] };
		const probe = new StartProbe();
		const task = new Task(job("spinForever"), session.scheduler, { plugins: [probe, new PynisherPlugin(options)] });
		let settle: ((ended: { error: unknown; at: number }) => void) | undefined;
		task.on(Task.EXCEPTION, (_future: Future, error: unknown) => settle?.({ error, at: performance.now() }));
		task.on(Task.RESULT, (_future: Future, _result: unknown) => settle?.({ error: new Error("spinForever returned instead of being stopped"), at: performance.now() }));
		for (let i = 0; i < calls; i++) {
			const ended = new Promise<{ error: unknown; at: number }>((resolve) => {
				settle = resolve;
			});
			const submitted = performance.now();
			const future = task.submit()!;
			const { error, at } = await withTimeout(ended, 60_000, `spinForever under ${JSON.stringify(options)} on a ${kind}`);
			const expected = limit === "wall" ? WallTimeLimitError : CpuTimeLimitError;
			if (!(error instanceof expected)) {
				throw new Error(`Expected a ${expected.name}, got ${String(error)}`, { cause: error });
			}
			const stopped: LimitExceededError = error;
			if (i === 0) {
				figures.first = at - submitted - LIMIT_MS;
			} else {
				figures.outside.push(at - submitted - LIMIT_MS);
				figures.reported.push(stopped.observed - stopped.limit);
				figures.startDelay.push((probe.at(future) ?? Number.NaN) - submitted);
			}
			await delay(PAUSE_MS);
		}
	} finally {
		await session.close();
	}
	return figures;
}

const WALL_WHY =
	"Look at the reference column first. A start delay of more than a millisecond or two means the call waited for a worker: the thread terminated or the process killed by the previous call's limit had not been replaced within the 150 ms pause (a thread pool replaces a thread at once; a process pool forks a new process, as long as the cold fork of section 4, with the heap-cap flag of the call's limits), or the fresh run had not started its workers yet. If the call started at once, the wall timer fired late: it is a timer on the main thread's event loop (`CallMonitor.start`), late by however long the main thread is busy or waits for a core; and the EXCEPTION event waits for the stop (`worker.terminate()`, or the kill and the exit of the process).";
const CPU_WHY =
	"Look at the reference column first. A start delay of more than a millisecond or two means the call waited for a worker: the one stopped by the previous call's limit had not been replaced within the 150 ms pause, or the fresh run had not started its workers yet. If the call started at once but the reported overshoot is high, the watchdog looked late: a CPU-limited call is first looked at when it could have used its whole limit at wall speed, then every `sampleInterval` (10 ms), each tick late by however long the main thread is busy. If both are low, the gap is wall time the busy loop spent waiting for a core (its CPU time grows slower than the wall clock), or the stop itself (`worker.terminate()`, or the kill and the exit of the process).";

function seriesRow(kind: Kind, limit: Limit, figures: Series): Row {
	const start = summarize(figures.startDelay);
	return {
		section: SECTION,
		measure: `${limit === "wall" ? "wall" : "CPU"} ${LIMIT_MS} ms, busy loop, ${PLURAL[kind]}, serial calls ${PAUSE_MS} ms apart: submit() → EXCEPTION event, minus the limit`,
		value: summarize(figures.outside),
		shape: "p95",
		unit: "ms",
		digits: 1,
		reference: `call started ${start.median.toFixed(1)} / ${start.p95.toFixed(1)} ms after submit(); reported overshoot ${summarize(figures.reported).median.toFixed(1)} ms; first call (left out) ${figures.first.toFixed(0)} ms`,
		target: { stat: "p95", op: "<=", value: limit === "wall" ? WALL_TARGET : CPU_TARGET },
		chart: { group: "overshoot", label: `${limit === "wall" ? "wall" : "CPU"}, ${kind}, serial` },
		whyMissed: limit === "wall" ? WALL_WHY : CPU_WHY,
	};
}

/** The text of the first `count` TypeScript files of src/, in path order. */
function sources(count: number): string[] {
	const root = new URL("../../src/", import.meta.url);
	const files = readdirSync(root, { recursive: true, encoding: "utf8" })
		.filter((file) => file.endsWith(".ts"))
		.sort()
		.slice(0, count);
	return files.map((file) => readFileSync(new URL(file, root), "utf8"));
}

/** A run on one process, with or without an RSS limit on its transpile task. */
interface Side {
	readonly session: Session;
	readonly task: Task<[string[]], number>;
	/** Milliseconds per call, one figure per round. */
	readonly perCall: number[];
	/** The first call: a fork, and the compiler loaded. */
	firstMs: number;
	/** The resident memory each call reached, in bytes. */
	readonly peak: number[];
	/** The pool processes seen after the timed calls: more than one means the process was replaced. */
	readonly pids: Set<number>;
}

async function openSide(limited: boolean): Promise<Side> {
	const session = await open(Scheduler.withProcesses({ maxWorkers: 1 }));
	const plugins = limited ? [new PynisherPlugin({ memoryLimit: "512mb", memoryKind: "rss" })] : [];
	const task = new Task<[string[]], number>({ module: new URL("./transpile.mjs", import.meta.url), name: "transpile" }, session.scheduler, { plugins });
	return { session, task, perCall: [], firstMs: Number.NaN, peak: [], pids: new Set() };
}

/** Times `count` awaited calls; returns the milliseconds per call. */
async function transpileCalls(side: Side, input: string[], count: number, expected: number): Promise<number> {
	const start = performance.now();
	for (let i = 0; i < count; i++) {
		const future = side.task.submit(input)!;
		const length = await withTimeout(future, 60_000, "a transpile call");
		if (length !== expected) {
			throw new Error(`transpile returned ${length}, expected ${expected}`);
		}
		side.peak.push(future.usage?.peakMemoryBytes ?? Number.NaN);
		for (const pid of processIds(side.session.scheduler)) {
			side.pids.add(pid);
		}
	}
	return (performance.now() - start) / count;
}

async function transpileRows(plan: UserPlan): Promise<Row[]> {
	const files = sources(SOURCE_FILES);
	const input = [...files, ...files];
	const sides = { limited: await openSide(true), unlimited: await openSide(false) };
	const ratios: number[] = [];
	let expected = 0;
	try {
		for (const side of [sides.unlimited, sides.limited]) {
			const start = performance.now();
			const length = await withTimeout(side.task.submit(input)!, 60_000, "the first transpile call");
			side.firstMs = performance.now() - start;
			expected = length;
			await transpileCalls(side, input, 2, expected);
			side.peak.length = 0;
			side.pids.clear();
		}
		await alternate(plan.rounds, ["limited", "unlimited"] as const, async (name, round) => {
			sides[name].perCall[round] = await transpileCalls(sides[name], input, plan.transpileCalls, expected);
			const limited = sides.limited.perCall[round];
			const unlimited = sides.unlimited.perCall[round];
			if (limited !== undefined && unlimited !== undefined) {
				ratios.push(limited / unlimited);
				plan.log(`  transpile round ${round + 1}/${plan.rounds}: limited ${limited.toFixed(0)} ms/call, unlimited ${unlimited.toFixed(0)} ms/call`);
			}
		});
	} finally {
		await sides.limited.session.close();
		await sides.unlimited.session.close();
	}
	const ms = (side: Side): string => `${summarize(side.perCall).median.toFixed(1)} ms/call`;
	const peak = (side: Side): string => `${(summarize(side.peak).median / MiB).toFixed(0)} MB`;
	const timed = plan.rounds * plan.transpileCalls;
	return [
		{
			section: SECTION,
			measure: `a job that loads the TypeScript compiler and transpiles ${files.length} files of src/ twice, ${plan.transpileCalls} awaited calls on 1 process: RSS limit 512 MB ÷ no limit, time`,
			value: summarize(ratios),
			shape: "range",
			unit: "×",
			digits: 2,
			reference: `limited ${ms(sides.limited)}, unlimited ${ms(sides.unlimited)}; first call (fork + compiler loaded) ${sides.limited.firstMs.toFixed(0)} / ${sides.unlimited.firstMs.toFixed(0)} ms; processes used for ${timed} timed calls: ${sides.limited.pids.size} / ${sides.unlimited.pids.size}; RSS reached per call ${peak(sides.limited)} / ${peak(sides.unlimited)}`,
			target: { stat: "median", op: "<=", value: 1.3 },
			whyMissed:
				"Look at the processes used, in the reference column: more than one on the limited side means the process was replaced after a memory-limited call, and each replacement costs a fork and the compiler loaded again (the first call's figure). A process pool takes a process back after a memory-limited call only if its resident memory is less than the reuse allowance above its baseline (`#releaseProcess` in `src/executors/processes/executor.ts`: a tenth of the limit, at least 64 MB and at most 256 MB, checked by `PoolProcess.reusable` against what the process held once it had loaded the job's module); the compiler's work grows the resident memory past that after a few calls (V8 keeps the heap it has grown into), so the process is killed and the next call forks a new one. The RSS reached per call shows how far it grew. With one process throughout, the gap is the memory limit's own cost: the process starts with `--max-old-space-size` (V8 may collect more often in a heap capped at the limit) and is sampled by the watchdog.",
		},
	];
}

export async function userLimitsSection(plan: UserPlan): Promise<Row[]> {
	const rows: Row[] = [];
	for (const kind of ["thread", "process"] as const) {
		for (const limit of ["wall", "cpu"] as const) {
			const figures = await series(kind, limit, plan.userCalls);
			plan.log(`  ${limit} limit, ${PLURAL[kind]}: ${figures.outside.map((ms) => ms.toFixed(0)).join(", ")} ms past the limit (first call ${figures.first.toFixed(0)})`);
			rows.push(seriesRow(kind, limit, figures));
		}
	}
	plan.log("  TypeScript compiler job on a process, RSS limit against none");
	rows.push(...(await transpileRows(plan)));
	return rows;
}
