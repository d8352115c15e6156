// Section 10: how fast a task's messages reach the main side through `CommPlugin`, and how long
// the main thread is kept from other work while they pour in.
import { monitorEventLoopDelay } from "node:perf_hooks";
import { CommPlugin, Task } from "./byop.ts";
import type { Plan } from "./dispatch.ts";
import { open, processes, type Session, summarize, threads } from "./harness.ts";
import type { Row } from "./report.ts";

const SECTION = "10. Comm flood";
/** How many messages one call sends. */
export const FLOOD = 100_000;

/** One call's flood: messages per second and the main thread's longest pause, in ms. */
interface Flood {
	readonly perSecond: number;
	readonly pauseMs: number;
}

async function flood(session: Session): Promise<Flood> {
	const comm = new CommPlugin();
	const task = new Task<[number]>({ module: new URL("./comm-jobs.mjs", import.meta.url), name: "flood" }, session.scheduler, { plugins: [comm] });
	let received = 0;
	task.on(CommPlugin.MESSAGE, () => received++);
	// A first call starts the worker and loads the module.
	await task.submit(1);
	received = 0;
	const delay = monitorEventLoopDelay({ resolution: 1 });
	delay.enable();
	const start = performance.now();
	await task.submit(FLOOD);
	const elapsed = performance.now() - start;
	delay.disable();
	if (received !== FLOOD) {
		throw new Error(`the flood lost messages: ${received} of ${FLOOD} arrived`);
	}
	return { perSecond: (FLOOD / elapsed) * 1000, pauseMs: delay.max / 1e6 };
}

async function measure(make: () => ReturnType<typeof threads>, rounds: number): Promise<Flood[]> {
	const figures: Flood[] = [];
	for (let round = 0; round < rounds; round++) {
		const session = await open(make());
		try {
			figures.push(await flood(session));
		} finally {
			await session.close();
		}
	}
	return figures;
}

export async function commSection(plan: Plan): Promise<Row[]> {
	const rows: Row[] = [];
	for (const [label, make] of [
		["threads", threads],
		["processes", processes],
	] as const) {
		plan.log(`  ${label}`);
		const figures = await measure(make, plan.rounds);
		rows.push(
			{
				section: SECTION,
				measure: `${FLOOD.toLocaleString("en")} messages from one call on ${label}: messages/s`,
				value: summarize(figures.map((figure) => figure.perSecond)),
				shape: "range",
				unit: "/s",
				digits: 0,
			},
			{
				section: SECTION,
				measure: `${FLOOD.toLocaleString("en")} messages from one call on ${label}: the main thread's longest pause`,
				value: summarize(figures.map((figure) => figure.pauseMs)),
				shape: "range",
				unit: "ms",
				digits: 1,
				target: { stat: "median", op: "<=", value: 50 },
				whyMissed: "The main side takes a thread's messages in the batches Node delivers on its port (up to the window of 1,024), and a process's as its IPC channel delivers them; each MESSAGE handler runs in the main thread.",
			},
		);
	}
	return rows;
}
