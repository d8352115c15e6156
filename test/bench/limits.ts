// Section 3: how far past each limit a task gets before it is stopped.
import { CpuTimeLimitError, type Future, LimitExceededError, MemoryLimitError, type PynisherOptions, PynisherPlugin, Task, WallTimeLimitError, warmProcesses } from "./byop.ts";
import type { Plan } from "./dispatch.ts";
import { delay, job, open, processes, type Session, StartProbe, summarize, threads, withTimeout } from "./harness.ts";
import { portableRows } from "./portable.ts";
import type { Row } from "./report.ts";

const SECTION = "3. Limit precision";
const MiB = 1024 * 1024;

/** The limits of the time trials, in milliseconds. */
const WALL_MS = 100;
const CPU_MS = 100;
/** The memory limits, in bytes. */
const HEAP_BYTES = 64 * MiB;
const RSS_BYTES = 256 * MiB;

interface Trial {
	readonly error: unknown;
	readonly future: Future;
	/** From `submit()` to the task's EXCEPTION event, in milliseconds. */
	readonly outsideMs: number;
	/** From `submit()` to the call's start, in milliseconds. */
	readonly startDelayMs: number;
}

/** Runs one call of `name` under `options` and waits for its exception. */
async function trial(session: Session, name: string, options: PynisherOptions, args: unknown[]): Promise<Trial> {
	const probe = new StartProbe();
	const task = new Task(job(name), session.scheduler, { plugins: [probe, new PynisherPlugin(options)] });
	const ended = new Promise<{ error: unknown; at: number }>((resolve) => {
		task.on(Task.EXCEPTION, (_future: Future, error: unknown) => resolve({ error, at: performance.now() }));
		task.on(Task.RESULT, (_future: Future, _result: unknown) => resolve({ error: new Error(`${name} returned instead of being stopped`), at: performance.now() }));
	});
	const submitted = performance.now();
	const future = task.submit(...args)!;
	const { error, at } = await withTimeout(ended, 60_000, `${name} under ${JSON.stringify(options)}`);
	return { error, future, outsideMs: at - submitted, startDelayMs: (probe.at(future) ?? Number.NaN) - submitted };
}

/** Makes sure two warm, idle workers wait for the next trial. */
async function rewarm(session: Session): Promise<void> {
	warmProcesses(session.scheduler);
	const task = new Task(job("add"), session.scheduler);
	await withTimeout(Promise.all([task.submit(1, 1), task.submit(2, 1)]), 60_000, "warming up");
	await delay(30);
}

function expectError<T extends LimitExceededError>(error: unknown, kind: abstract new (...args: never[]) => T): T {
	if (!(error instanceof kind)) {
		throw new Error(`Expected a ${kind.name}, got ${String(error)}`, { cause: error });
	}
	return error;
}

interface TimeFigures {
	/** Where each trial's call ran. */
	readonly where: string[];
	readonly reported: number[];
	readonly outside: number[];
	readonly atKill: number[];
	readonly startDelay: number[];
}

async function timeTrials(session: Session, kind: "wall" | "cpu", trials: number): Promise<TimeFigures> {
	const figures: TimeFigures = { where: [], reported: [], outside: [], atKill: [], startDelay: [] };
	await rewarm(session);
	for (let i = 0; i < trials; i++) {
		const options: PynisherOptions = kind === "wall" ? { wallTimeLimit: [WALL_MS / 1000, "s"] } : { cpuTimeLimit: [CPU_MS / 1000, "s"] };
		const result = await trial(session, "spinForever", options, []);
		const error: LimitExceededError = kind === "wall" ? expectError(result.error, WallTimeLimitError) : expectError(result.error, CpuTimeLimitError);
		figures.reported.push(error.observed - error.limit);
		figures.outside.push(result.outsideMs - error.limit);
		figures.startDelay.push(result.startDelayMs);
		const usage = result.future.usage;
		figures.where.push(usage?.where ?? "");
		if (kind === "cpu" && usage !== undefined && usage.cpuMs >= 0) {
			figures.atKill.push(usage.cpuMs - error.limit);
		}
		await rewarm(session);
	}
	return figures;
}

function timeRows(label: string, figures: TimeFigures, kind: "wall" | "cpu", target: number, chartLabel: string, why = kind === "wall" ? WALL_WHY : CPU_WHY): Row[] {
	const python = kind === "wall" ? "pynisher 1.0.10: 5,005 ms late; Node pools: abort signal only" : "pynisher 1.0.10: 12–13 ms late; Node pools: no CPU limit";
	const delayNote = `call started ${summarize(figures.startDelay).median.toFixed(1)} ms after submit()`;
	const rows: Row[] = [
		{
			section: SECTION,
			measure: `${label}: reported overshoot (observed − limit)`,
			value: summarize(figures.reported),
			shape: "p95",
			unit: "ms",
			digits: 1,
			reference: python,
			target: { stat: "p95", op: "<=", value: target },
			chart: { group: "overshoot", label: `${chartLabel} (reported)` },
			whyMissed: why,
		},
		kind === "wall"
			? {
					section: SECTION,
					measure: `${label}: submit() → EXCEPTION event, minus the limit`,
					value: summarize(figures.outside),
					shape: "p95",
					unit: "ms",
					digits: 1,
					reference: delayNote,
					target: { stat: "p95", op: "<=", value: target },
					chart: { group: "overshoot", label: `${chartLabel} (outside)` },
					whyMissed: why,
				}
			: {
					section: SECTION,
					measure: `${label}: submit() → EXCEPTION event, minus the limit (wall time: includes any wait of the busy thread for a core)`,
					value: summarize(figures.outside),
					shape: "p95",
					unit: "ms",
					digits: 1,
					reference: delayNote,
				},
	];
	if (figures.atKill.length > 0 && label.endsWith("thread")) {
		rows.push({
			section: SECTION,
			measure: `${label}: CPU time of the call after it ended (usage.cpuMs − limit)`,
			value: summarize(figures.atKill),
			shape: "p95",
			unit: "ms",
			digits: 1,
			reference: "read from the thread's schedstat after piscina terminated it",
			target: { stat: "p95", op: "<=", value: target },
			whyMissed: why,
		});
	}
	return rows;
}

const WALL_WHY =
	"The wall limit is a timer on the main thread's event loop (`CallMonitor.start`), so it fires late by however long the main thread is busy or waits for a core; the late trials are the ones where the machine had other work.";
const CPU_WHY =
	"CPU time is sampled by the watchdog every `sampleInterval` (10 ms), so a call can pass its limit by up to one interval plus however late the tick runs on a busy main thread.";
const WALL_TARGET = 25;
const CPU_TARGET = 15;

/**
 * The rows of the portable path (no `/proc`, taken with `BYOP_PORTABLE=1`; see `portable.ts`):
 * wall, CPU and RSS overshoot in processes, and a CPU-limited call on the threads executor, which
 * runs on its thread where Node has `worker.cpuUsage()` and in a process elsewhere.
 */
export async function portableLimits(plan: Plan & { readonly trials: number }): Promise<Row[]> {
	const onThreads = await open(threads());
	const onProcesses = await open(processes());
	try {
		plan.log("  portable: wall and CPU time, processes; CPU time, threads executor");
		const wall = await timeTrials(onProcesses, "wall", plan.trials);
		const cpu = await timeTrials(onProcesses, "cpu", plan.trials);
		const cpuThreads = await timeTrials(onThreads, "cpu", plan.trials);
		const where = cpuThreads.where.length > 0 && cpuThreads.where.every((w) => w === "thread") ? "on its thread (worker.cpuUsage())" : "moved to a process (no worker.cpuUsage() before Node 24.6)";
		return [
			...timeRows(`portable, wall ${WALL_MS} ms, busy loop, process`, wall, "wall", WALL_TARGET, "wall, process, portable", PORTABLE_WHY),
			...timeRows(`portable, CPU ${CPU_MS} ms, busy loop, process`, cpu, "cpu", CPU_TARGET, "CPU, process, portable", PORTABLE_WHY),
			...timeRows(`portable, CPU ${CPU_MS} ms, busy loop, threads executor: ${where}`, cpuThreads, "cpu", CPU_TARGET, "CPU, threads executor, portable", PORTABLE_WHY),
			await rssRow(onProcesses, plan, "portable, ", PORTABLE_WHY),
		];
	} finally {
		await onThreads.close();
		await onProcesses.close();
	}
}

const PORTABLE_WHY =
	"Without /proc, a pool process's watcher thread reads the process's CPU time and RSS every `sampleInterval` near a limit and writes each reading on a pipe to the parent, whose check runs at once on a reading past a limit; the overshoot adds the watcher's sampling gap to the pipe's latency and the parent's event loop, and CPU time is that of the whole process (V8's helper threads, the watcher) rather than the call's thread.";

export async function limitsSection(plan: Plan & { readonly trials: number }): Promise<Row[]> {
	const rows: Row[] = [];
	const onThreads = await open(threads());
	const onProcesses = await open(processes());
	try {
		plan.log("  wall time, threads and processes");
		const wallThreads = await timeTrials(onThreads, "wall", plan.trials);
		const wallProcesses = await timeTrials(onProcesses, "wall", plan.trials);
		plan.log("  CPU time, threads and processes");
		const cpuThreads = await timeTrials(onThreads, "cpu", plan.trials);
		const cpuProcesses = await timeTrials(onProcesses, "cpu", plan.trials);
		rows.push(
			...timeRows(`wall ${WALL_MS} ms, busy loop, thread`, wallThreads, "wall", WALL_TARGET, "wall, thread"),
			...timeRows(`wall ${WALL_MS} ms, busy loop, process`, wallProcesses, "wall", WALL_TARGET, "wall, process"),
			...timeRows(`CPU ${CPU_MS} ms, busy loop, thread`, cpuThreads, "cpu", CPU_TARGET, "CPU, thread"),
			...timeRows(`CPU ${CPU_MS} ms, busy loop, process`, cpuProcesses, "cpu", CPU_TARGET, "CPU, process"),
		);

		plan.log("  heap limit, threads");
		const heapUsed: number[] = [];
		const heapReported: number[] = [];
		let heapSizeLimit = 0;
		for (let i = 0; i < plan.trials; i++) {
			const shared = new SharedArrayBuffer(3 * 8);
			const result = await trial(onThreads, "growHeap", { memoryLimit: HEAP_BYTES, memoryKind: "heap" }, [shared]);
			const error = expectError(result.error, MemoryLimitError);
			const seen = new Float64Array(shared);
			heapUsed.push(((seen[0] ?? 0) / error.limit - 1) * 100);
			heapReported.push((error.observed / error.limit - 1) * 100);
			heapSizeLimit = Math.max(heapSizeLimit, seen[2] ?? 0);
		}
		rows.push(
			{
				section: SECTION,
				measure: `heap ${HEAP_BYTES / MiB} MB (memoryKind "heap"), thread: V8 heap in use at the kill, past the limit`,
				value: summarize(heapUsed),
				shape: "p95",
				unit: "%",
				digits: 1,
				reference: `the thread's V8 heap_size_limit: ${(heapSizeLimit / MiB).toFixed(0)} MB; Node pools: resourceLimits only`,
				target: { stat: "p95", op: "<=", value: 10 },
				chart: { group: "overshoot", label: "heap, thread (%)" },
				whyMissed:
					"The cap is V8's own (`resourceLimits`), set in `heapCapMb()` of `src/executors/threads.ts`: old generation = limit − young generation, and V8 adds its young-generation semi-spaces and code space on top of that, so the heap can pass the limit before V8 gives up.",
			},
			{
				section: SECTION,
				measure: "heap, thread: reported observed − limit",
				value: summarize(heapReported),
				shape: "p95",
				unit: "%",
				digits: 1,
				reference: "a heap-cap kill reports the cap itself, not a measurement",
			},
		);

		rows.push(await rssRow(onProcesses, plan, "", RSS_WHY));
	} finally {
		await onThreads.close();
		await onProcesses.close();
	}
	rows.push(...(await portableRows("limits", plan)));
	return rows;
}

/** The RSS trials in processes: RSS at the kill past the limit, for a call filling memory as fast as it can. */
async function rssRow(onProcesses: Session, plan: Plan & { readonly trials: number }, prefix: string, why: string): Promise<Row> {
	plan.log(`  ${prefix}RSS limit, processes`);
	const rssTask = new Task(job("allocationRate"), onProcesses.scheduler);
	const rates: number[] = [];
	for (let i = 0; i < 3; i++) {
		rates.push((await withTimeout(rssTask.submit(RSS_BYTES / MiB)!, 60_000, "allocationRate")) as number);
	}
	const overshoot: number[] = [];
	for (let i = 0; i < plan.trials; i++) {
		const result = await trial(onProcesses, "allocate", { memoryLimit: RSS_BYTES, memoryKind: "rss" }, []);
		const memory = expectError(result.error, MemoryLimitError);
		overshoot.push((memory.observed / memory.limit - 1) * 100);
	}
	return {
		section: SECTION,
		measure: `${prefix}RSS ${RSS_BYTES / MiB} MB (memoryKind "rss"), process, filling memory as fast as it can: RSS at the kill, past the limit`,
		value: summarize(overshoot),
		shape: "p95",
		unit: "%",
		digits: 1,
		reference: `allocation rate ${(summarize(rates).median / 1024).toFixed(2)} GB/s (this machine's most); Node pools: no RSS limit`,
		target: { stat: "p95", op: "<=", value: 10 },
		chart: { group: "overshoot", label: `RSS, process${prefix === "" ? "" : ", portable"} (%)` },
		whyMissed: why,
	};
}

const RSS_WHY =
	"RSS is sampled every `sampleInterval` (10 ms) by the watchdog: at N GB/s a process grows N × 10 MB between two samples, so the overshoot is the allocation rate times the sampling interval (and `ProcReader.rssBytes()` also lists the process's children on every tick).";
