// Shared pieces of the benchmark: statistics, clocks, a byop run kept open between measurements,
// and a counter of task events.
import { openSync, readSync } from "node:fs";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { type Future, type Plugin, Scheduler, Task } from "./byop.ts";

/** The median, spread and size of a set of measurements. */
export interface Summary {
	readonly median: number;
	readonly p95: number;
	readonly min: number;
	readonly max: number;
	readonly n: number;
}

/** The value at rank `ceil(p * n)` of the sorted values (nearest rank). */
export function percentile(values: readonly number[], p: number): number {
	const sorted = [...values].sort((a, b) => a - b);
	if (sorted.length === 0) {
		return Number.NaN;
	}
	const rank = Math.min(sorted.length, Math.max(1, Math.ceil(p * sorted.length)));
	return sorted[rank - 1]!;
}

export function summarize(values: readonly number[]): Summary {
	const finite = values.filter((value) => Number.isFinite(value));
	if (finite.length === 0) {
		return { median: Number.NaN, p95: Number.NaN, min: Number.NaN, max: Number.NaN, n: 0 };
	}
	const sorted = [...finite].sort((a, b) => a - b);
	const middle = sorted.length >> 1;
	const median = sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
	return { median, p95: percentile(sorted, 0.95), min: sorted[0]!, max: sorted[sorted.length - 1]!, n: sorted.length };
}

export function delay(ms: number): Promise<void> {
	return new Promise((resolve) => setTimeout(resolve, ms));
}

/** `promise`, or a rejection naming `what` after `ms`: a benchmark must fail, never hang. */
export async function withTimeout<T>(promise: PromiseLike<T>, ms: number, what: string): Promise<T> {
	let timer: NodeJS.Timeout | undefined;
	const timeout = new Promise<never>((_, reject) => {
		timer = setTimeout(() => reject(new Error(`Timed out after ${ms} ms: ${what}`)), ms);
	});
	try {
		return await Promise.race([promise, timeout]);
	} finally {
		clearTimeout(timer);
	}
}

/** Runs `count` rounds; even rounds visit `items` in order, odd rounds in reverse, so drift hits every item alike. */
export async function alternate<T>(count: number, items: readonly T[], visit: (item: T, round: number) => Promise<void>): Promise<void> {
	for (let round = 0; round < count; round++) {
		const order = round % 2 === 0 ? items : [...items].reverse();
		for (const item of order) {
			await visit(item, round);
		}
	}
}

const schedstatScratch = Buffer.alloc(128);
let ownSchedstat = -2;

/** CPU time of the calling thread in milliseconds (Linux `schedstat`), or -1 where it cannot be read. */
export function threadCpuMs(): number {
	if (ownSchedstat === -2) {
		try {
			ownSchedstat = openSync("/proc/thread-self/schedstat", "r");
		} catch {
			ownSchedstat = -1;
		}
	}
	if (ownSchedstat < 0) {
		return -1;
	}
	const length = readSync(ownSchedstat, schedstatScratch, 0, schedstatScratch.length, 0);
	return Number(schedstatScratch.toString("latin1", 0, length).split(" ")[0]) / 1e6;
}

/** CPU time of the whole process (every thread) in milliseconds. */
export function processCpuMs(): number {
	const usage = process.cpuUsage();
	return (usage.user + usage.system) / 1000;
}

let collect: (() => void) | undefined;

/** A full garbage collection (the flag is turned on at run time, so `npm run bench` needs none). */
export function gc(): void {
	if (collect === undefined) {
		setFlagsFromString("--expose-gc");
		collect = runInNewContext("gc") as () => void;
	}
	collect();
}

/** The bench's job module, for byop. */
export function job(name: string): { module: URL; name: string } {
	return { module: new URL("./jobs.mjs", import.meta.url), name };
}

/** A byop run that stays open (`endOnEmpty: false`) until `close()`. */
export interface Session {
	readonly scheduler: Scheduler;
	close(): Promise<void>;
}

/** Starts a run of `scheduler` and resolves once it has started. */
export async function open(scheduler: Scheduler): Promise<Session> {
	let started!: () => void;
	const ready = new Promise<void>((resolve) => {
		started = resolve;
	});
	const off = scheduler.on(Scheduler.STARTED, () => started());
	const running = scheduler.run({ endOnEmpty: false, onException: "continue", onCancelled: "continue" });
	await Promise.race([ready, running]);
	off();
	return {
		scheduler,
		async close() {
			scheduler.stop("benchmark done");
			await running;
		},
	};
}

export function threads(): Scheduler {
	return Scheduler.withThreads({ maxWorkers: 2 });
}

export function processes(): Scheduler {
	return Scheduler.withProcesses({ maxWorkers: 2 });
}

/** Counts how a task's calls end, and resolves when a batch of them has. */
export class Completions {
	#target = 0;
	#count = 0;
	#failures = 0;
	#lastError: unknown;
	#resolve: (() => void) | undefined;

	constructor(task: Task) {
		task.on(Task.RESULT, (_future: Future, _result: unknown) => this.#done());
		task.on(Task.EXCEPTION, (_future: Future, error: unknown) => {
			this.#failures++;
			this.#lastError = error;
			this.#done();
		});
		task.on(Task.CANCELLED, (_future: Future) => this.#done());
	}

	/** Failures since the last `expect`. */
	get failures(): number {
		return this.#failures;
	}

	/** Resolves after `count` more results or exceptions. */
	expect(count: number): Promise<void> {
		this.#count = 0;
		this.#target = count;
		this.#failures = 0;
		return new Promise<void>((resolve) => {
			this.#resolve = resolve;
		});
	}

	/** Throws when the batch had a failure: a no-op must never fail. */
	check(what: string): void {
		if (this.#failures > 0) {
			throw new Error(`${what}: ${this.#failures} calls failed`, { cause: this.#lastError });
		}
	}

	#done(): void {
		if (++this.#count === this.#target) {
			this.#resolve?.();
		}
	}
}

/** Submits `count` no-op calls at once and resolves when every one has ended; returns the milliseconds. */
export async function burst(task: Task<[number, number]>, completions: Completions, count: number): Promise<number> {
	const done = completions.expect(count);
	const start = performance.now();
	for (let i = 0; i < count; i++) {
		task.submit(i, 1);
	}
	await withTimeout(done, 120_000, `${count} calls of ${task.name}`);
	const ms = performance.now() - start;
	completions.check(task.name);
	return ms;
}

/** A plugin that records when each call started running. */
export class StartProbe implements Plugin {
	readonly name = "bench-start-probe";
	readonly #started = new WeakMap<Future, number>();

	started(future: Future): void {
		this.#started.set(future, performance.now());
	}

	/** When `future` started, in `performance.now()` milliseconds. */
	at(future: Future): number | undefined {
		return this.#started.get(future);
	}
}
