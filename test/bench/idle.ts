// Section 6: what watching limits costs the main process while the limited tasks do nothing.
import { readFileSync } from "node:fs";
import { processIds, PynisherPlugin, Task, watchdogTicks } from "./byop.ts";
import type { Plan } from "./dispatch.ts";
import { delay, job, open, processCpuMs, processes, type Session, summarize, threadCpuMs, threads } from "./harness.ts";
import { portableRows } from "./portable.ts";
import type { Row } from "./report.ts";

const SECTION = "6. Watchdog idle cost";
const WINDOW_MS = 1000;
const SETTLE_MS = 500;

interface Idle {
	readonly mainPct: number[];
	readonly processPct: number[];
	/** The CPU time of the pool processes (their watcher threads, on the portable path), % of one core. */
	readonly poolPct: number[];
	readonly ticksPerSecond: number[];
}

async function measure(make: () => Session | Promise<Session>, limited: boolean, windows: number): Promise<Idle> {
	const session = await make();
	const figures: Idle = { mainPct: [], processPct: [], poolPct: [], ticksPerSecond: [] };
	try {
		const plugins = limited ? [new PynisherPlugin({ wallTimeLimit: "5m", cpuTimeLimit: "5m", memoryLimit: "512mb" })] : [];
		const task = new Task<[number]>(job("sleep"), session.scheduler, { plugins });
		const warm = new Task<[number]>(job("sleep"), session.scheduler, { plugins });
		await Promise.all([warm.submit(1), warm.submit(1)]);
		const sleepMs = SETTLE_MS + windows * WINDOW_MS + 1000;
		const calls = [task.submit(sleepMs), task.submit(sleepMs)];
		await delay(SETTLE_MS);
		for (let i = 0; i < windows; i++) {
			const main0 = threadCpuMs();
			const process0 = processCpuMs();
			const ticks0 = watchdogTicks(session.scheduler);
			const pids = processIds(session.scheduler);
			const pool0 = poolCpuMs(pids);
			const start = performance.now();
			await delay(WINDOW_MS);
			const elapsed = performance.now() - start;
			figures.poolPct.push(((poolCpuMs(pids) - pool0) / elapsed) * 100);
			figures.mainPct.push(((threadCpuMs() - main0) / elapsed) * 100);
			figures.processPct.push(((processCpuMs() - process0) / elapsed) * 100);
			figures.ticksPerSecond.push(((watchdogTicks(session.scheduler) - ticks0) / elapsed) * 1000);
		}
		await Promise.all(calls);
	} finally {
		await session.close();
	}
	return figures;
}

export async function idleSection(plan: Plan): Promise<Row[]> {
	const windows = plan.rounds;
	plan.log("  threads, limited");
	const limitedThreads = await measure(() => open(threads()), true, windows);
	plan.log("  threads, no limits");
	const plain = await measure(() => open(threads()), false, windows);
	plan.log("  processes, limited");
	const limitedProcesses = await measure(() => open(processes()), true, windows);
	const row = (label: string, idle: Idle, target: boolean): Row => ({
		section: SECTION,
		measure: `${label}: main-thread CPU, % of one core`,
		value: summarize(idle.mainPct),
		shape: "range",
		unit: "%",
		digits: 2,
		reference: `whole process ${summarize(idle.processPct).median.toFixed(2)} %; watchdog ${summarize(idle.ticksPerSecond).median.toFixed(0)} ticks/s${label.includes("processes") ? `; pool processes ${summarize(idle.poolPct).median.toFixed(2)} %` : ""}`,
		...(target
			? {
					target: { stat: "median", op: "<=", value: 1 } as const,
					whyMissed:
						"The watchdog checks a call when it could first have passed a limit (CPU time at wall speed, memory at 4 GB/s) and at least once a second; each check reads `/proc` (`schedstat`, `statm` and the `children` files of a process) or the process's RSS, and on this machine one timer wake-up alone costs about 0.1 ms of a core.",
				}
			: {}),
	});
	return [
		row("2 calls sleeping on threads, wall + CPU + memory limits", limitedThreads, true),
		row("2 calls sleeping on threads, no limits (baseline)", plain, false),
		row("2 calls sleeping in processes, wall + CPU + memory limits", limitedProcesses, true),
		...(await portableRows("idle", plan)),
	];
}

/**
 * Section 6 on the portable path (no /proc, see `portable.ts`): 2 sleeping calls in processes,
 * whose watcher threads read them and report to the parent.
 */
export async function portableIdle(plan: Plan): Promise<Row[]> {
	plan.log("  portable: processes, limited");
	const idle = await measure(() => open(processes()), true, plan.rounds);
	return [
		{
			section: SECTION,
			measure: "portable, 2 calls sleeping in processes, wall + CPU + memory limits: main-thread CPU, % of one core",
			value: summarize(idle.mainPct),
			shape: "range",
			unit: "%",
			digits: 2,
			reference: `whole process ${summarize(idle.processPct).median.toFixed(2)} %; watchdog ${summarize(idle.ticksPerSecond).median.toFixed(0)} ticks/s; pool processes ${summarize(idle.poolPct).median.toFixed(2)} %`,
			target: { stat: "median", op: "<=", value: 1 },
			whyMissed:
				"Without /proc each pool process's watcher thread reads the process's CPU time and RSS when the call could first have passed a limit, and at least once a second, and writes each reading to the parent, which parses it; the parent's watchdog checks each call as on the /proc path.",
		},
	];
}

/** The CPU time of these processes so far, in ms, from `/proc/<pid>/stat` (the benchmark runs on Linux). */
function poolCpuMs(pids: readonly number[]): number {
	let total = 0;
	for (const pid of pids) {
		try {
			const text = readFileSync(`/proc/${pid}/stat`, "latin1");
			const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
			total += ((Number(fields[11]) || 0) + (Number(fields[12]) || 0)) * 10;
		} catch {
			// Gone.
		}
	}
	return total;
}
