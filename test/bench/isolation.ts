// Section 8: what `isolate: "call"` (a fresh thread or process for every call, a spare started
// ahead) costs per call against `isolate: "none"` (workers reused), on threads and on processes.
import { Scheduler, Task } from "./byop.ts";
import { alternate, delay, job, open, type Session, summarize, withTimeout } from "./harness.ts";
import type { Plan } from "./dispatch.ts";
import type { Row } from "./report.ts";

/** Options of the section. */
export interface IsolationPlan extends Plan {
	/** Awaited calls back to back per run and round. */
	readonly isolationCalls: number;
	/** Calls spaced by `ISOLATION_GAP_MS` per run and round. */
	readonly spacedCalls: number;
}

export const ISOLATION = "8. Per-call isolation";
/** How far apart the spaced calls are: more than a thread or a process of the built JavaScript takes to start. */
export const ISOLATION_GAP_MS = 300;

type Kind = "threads" | "processes";
type Isolate = "none" | "call";

function scheduler(kind: Kind, isolate: Isolate): Scheduler {
	return kind === "threads" ? Scheduler.withThreads({ maxWorkers: 2, isolate }) : Scheduler.withProcesses({ maxWorkers: 2, isolate });
}

/** The mean time per call, in ms, of `count` calls awaited one after another, `gapMs` apart (the gaps not counted). */
async function perCall(task: Task<[number, number], number>, count: number, gapMs: number): Promise<number> {
	let total = 0;
	for (let i = 0; i < count; i++) {
		if (gapMs > 0) {
			await delay(gapMs);
		}
		const start = performance.now();
		await withTimeout(task.submit(i, 1)!, 60_000, "an isolation bench call");
		total += performance.now() - start;
	}
	return total / count;
}

export async function isolationSection(plan: IsolationPlan): Promise<Row[]> {
	const rows: Row[] = [];
	for (const kind of ["threads", "processes"] as const) {
		const sessions = new Map<Isolate, Session>();
		try {
			const tasks = new Map<Isolate, Task<[number, number], number>>();
			for (const isolate of ["none", "call"] as const) {
				const session = await open(scheduler(kind, isolate));
				sessions.set(isolate, session);
				const task = new Task<[number, number], number>(job("add"), session.scheduler);
				tasks.set(isolate, task);
				// The first call and a warm-up: the pool has started and the job module is loaded.
				await perCall(task, 3, 0);
			}
			const backToBack = new Map<Isolate, number[]>([
				["none", []],
				["call", []],
			]);
			const spaced = new Map<Isolate, number[]>([
				["none", []],
				["call", []],
			]);
			await alternate(plan.rounds, ["none", "call"] as const, async (isolate, round) => {
				const task = tasks.get(isolate)!;
				backToBack.get(isolate)![round] = await perCall(task, plan.isolationCalls, 0);
				spaced.get(isolate)![round] = await perCall(task, plan.spacedCalls, ISOLATION_GAP_MS);
			});
			const ratio = (figures: Map<Isolate, number[]>): number[] => figures.get("call")!.map((ms, round) => ms / figures.get("none")![round]!);
			const ms = (figures: Map<Isolate, number[]>, isolate: Isolate): string => `${summarize(figures.get(isolate)!).median.toFixed(2)} ms`;
			plan.log(
				`  ${kind}: back to back ${ms(backToBack, "call")} per isolated call against ${ms(backToBack, "none")} reused; ${ISOLATION_GAP_MS} ms apart ${ms(spaced, "call")} against ${ms(spaced, "none")}`,
			);
			rows.push(
				{
					section: ISOLATION,
					measure: `${kind}: time per call, isolate "call" ÷ "none", ${plan.isolationCalls} awaited calls back to back`,
					value: summarize(ratio(backToBack)),
					shape: "range",
					unit: "×",
					digits: 1,
					reference: `"call" ${ms(backToBack, "call")}, "none" ${ms(backToBack, "none")}`,
				},
				{
					section: ISOLATION,
					measure: `${kind}: time per call, isolate "call" ÷ "none", ${plan.spacedCalls} calls ${ISOLATION_GAP_MS} ms apart (a spare is ready)`,
					value: summarize(ratio(spaced)),
					shape: "range",
					unit: "×",
					digits: 1,
					reference: `"call" ${ms(spaced, "call")}, "none" ${ms(spaced, "none")}`,
				},
			);
		} finally {
			await Promise.all([...sessions.values()].map((session) => session.close()));
		}
	}
	return rows;
}
