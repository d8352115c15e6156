// Runs the workload section by section and keeps the state of every call, for the displays and
// the final table. Everything here goes through the public API: task events, a plugin's
// `started` hook, and each future's `usage`.
import { CommPlugin, type ExitCode, type Future, type Plugin, Task, type Usage, type Where } from "../index.ts";
import { CpuTimeLimitError, MemoryLimitError, PynisherPlugin, WallTimeLimitError } from "../pynisher/index.ts";
import { type CallSpec, type Ending, INTENTS, type Intent, type JobName, type Section } from "./workload.ts";

const jobs = new URL(`./jobs${import.meta.url.endsWith(".ts") ? ".ts" : ".js"}`, import.meta.url);

/** One call of the demo as it goes. */
export interface CallState {
	/** Its row number, from 1, across the whole demo. */
	readonly n: number;
	readonly section: Section;
	readonly spec: CallSpec;
	/** When it last started running (`performance.now()`); a call that moves to a process starts again. */
	startedAt: number | undefined;
	/** How many times it started: twice for a call that moved from its thread to a process mid-call. */
	starts: number;
	/** What the call last told of its progress, from inside (through the demo's `CommPlugin`). */
	progress: string | undefined;
	/** How many progress messages it sent. */
	messages: number;
	/** How it ended, once it has. */
	ending: Ending | undefined;
	/** The result, or the error. */
	value: unknown;
	usage: Usage | undefined;
}

/** Something that happened, for the displays. */
export type DemoEvent =
	| { readonly kind: "section"; readonly section: Section }
	| { readonly kind: "started" | "moved" | "done"; readonly call: CallState }
	| { readonly kind: "run-end"; readonly section: Section; readonly code: ExitCode; readonly ms: number };

/** The whole demo's state: every call of every section, and when it began. */
export interface DemoState {
	readonly calls: readonly CallState[];
	readonly startedAt: number;
	/** The section running now. */
	section: Section | undefined;
}

/** Whether an ending is a limit's. */
export function isLimit(ending: Ending | undefined): ending is "wall" | "cpu" | "heap" | "rss" {
	return ending === "wall" || ending === "cpu" || ending === "heap" || ending === "rss";
}

/** How a finished future ended. */
export function endingOf(future: Future): Ending {
	if (future.state === "result") {
		return "result";
	}
	if (future.state === "cancelled") {
		return "cancelled";
	}
	if (future.state !== "exception") {
		return "unfinished";
	}
	const error = future.exception;
	if (error instanceof WallTimeLimitError) {
		return "wall";
	}
	if (error instanceof CpuTimeLimitError) {
		return "cpu";
	}
	if (error instanceof MemoryLimitError) {
		return error.memoryKind;
	}
	return "error";
}

/**
 * Where a running call is: a thread scheduler's call runs in a process when its limits need one
 * (an RSS limit) or once it moved; a sequential scheduler's limited calls run in a process.
 * (A call sent to a process because an earlier call of its function moved shows "thread" until it ends.)
 */
export function whereNow(call: CallState): Where {
	if (call.usage !== undefined) {
		return call.usage.where;
	}
	switch (call.section.name) {
		case "processes":
			return "process";
		case "sequential":
			return call.spec.intent === "none" ? "main" : "process";
		case "threads":
			return call.starts > 1 || call.spec.intent === "rss" ? "process" : "thread";
	}
}

/** Whether a call submitted to threads ended in a process, and how it got there. */
export function escalation(call: CallState): "moved" | "sent" | undefined {
	if (call.section.name !== "threads" || call.usage?.where !== "process") {
		return undefined;
	}
	return call.starts > 1 ? "moved" : "sent";
}

/** Makes the state of every call of `sections`, numbered across them. */
export function prepare(sections: readonly Section[]): DemoState {
	const calls: CallState[] = [];
	for (const section of sections) {
		for (const spec of section.calls) {
			calls.push({ n: calls.length + 1, section, spec, startedAt: undefined, starts: 0, progress: undefined, messages: 0, ending: undefined, value: undefined, usage: undefined });
		}
	}
	return { calls, startedAt: performance.now(), section: undefined };
}

/** Runs every section in turn, telling `report` what happens. */
export async function runDemo(state: DemoState, report: (event: DemoEvent) => void): Promise<void> {
	const sections = [...new Set(state.calls.map((call) => call.section))];
	for (const section of sections) {
		state.section = section;
		report({ kind: "section", section });
		await runSection(
			section,
			state.calls.filter((call) => call.section === section),
			report,
		);
	}
	state.section = undefined;
}

async function runSection(section: Section, calls: readonly CallState[], report: (event: DemoEvent) => void): Promise<void> {
	const scheduler = section.scheduler();
	const plugins = new Map<Intent, PynisherPlugin>();
	const pluginFor = (intent: Exclude<Intent, "none">): PynisherPlugin => {
		let plugin = plugins.get(intent);
		if (plugin === undefined) {
			plugin = new PynisherPlugin(INTENTS[intent]);
			plugins.set(intent, plugin);
		}
		return plugin;
	};
	const byTask = new Map<Task, CallState>();
	// Sees each call start; a call that moves from its thread to a process starts a second time.
	const watch: Plugin = {
		name: "demo-watch",
		started: (_future, task) => {
			const call = byTask.get(task);
			if (call !== undefined) {
				call.starts++;
				call.startedAt = performance.now();
				report({ kind: call.starts > 1 ? "moved" : "started", call });
			}
		},
	};
	// Progress from inside the calls: each job tells how far it has come with comm.send().
	const comm = new CommPlugin();
	const tasks = calls.map((call) => {
		const { job, intent, label } = call.spec;
		const task = scheduler.task(ref(job), { name: label, plugins: intent === "none" ? [watch, comm] : [pluginFor(intent), watch, comm] });
		byTask.set(task, call);
		task.on(CommPlugin.MESSAGE, ({ data }) => {
			const text = (data as { progress?: unknown } | undefined)?.progress;
			if (typeof text === "string") {
				call.progress = text;
				call.messages++;
			}
		});
		task.on(Task.DONE, (future) => {
			call.ending = endingOf(future);
			call.value = future.state === "result" ? future.result : future.exception;
			call.usage = future.usage;
			report({ kind: "done", call });
		});
		return task;
	});
	scheduler.on(scheduler.STARTED, () => {
		for (const [i, task] of tasks.entries()) {
			task.submit(...(calls[i]?.spec.args ?? []));
		}
	});
	const started = performance.now();
	const exit = await scheduler.run({ timeout: "60s", wait: false, onException: "continue", onCancelled: "continue" });
	for (const call of calls) {
		call.ending ??= "unfinished";
	}
	report({ kind: "run-end", section, code: exit.code, ms: performance.now() - started });
}

function ref(job: JobName): { module: URL; name: string } {
	return { module: jobs, name: job };
}

/** The counts of the demo so far. */
export interface Tally {
	readonly total: number;
	readonly done: number;
	readonly running: number;
	readonly results: number;
	readonly errors: number;
	/** Calls stopped by each limit. */
	readonly limits: Readonly<Record<"wall" | "cpu" | "heap" | "rss", number>>;
	/** Calls that moved from their thread to a process mid-call (escalations). */
	readonly moved: number;
	/** Calls submitted to threads that ran in a process, moved or sent there at once. */
	readonly escalated: number;
}

/** Counts the calls of `state` by how far they got and how they ended. */
export function tally(state: DemoState): Tally {
	const limits = { wall: 0, cpu: 0, heap: 0, rss: 0 };
	let done = 0;
	let running = 0;
	let results = 0;
	let errors = 0;
	let moved = 0;
	let escalated = 0;
	for (const call of state.calls) {
		if (call.ending === undefined) {
			running += call.starts > 0 ? 1 : 0;
		} else {
			done++;
		}
		if (call.ending === "result") {
			results++;
		} else if (isLimit(call.ending)) {
			limits[call.ending]++;
		} else if (call.ending !== undefined) {
			errors++;
		}
		moved += call.starts > 1 ? 1 : 0;
		escalated += escalation(call) !== undefined ? 1 : 0;
	}
	return { total: state.calls.length, done, running, results, errors, limits, moved, escalated };
}
