import { defineEvent } from "../events.ts";
import type { Call, Limits } from "../executors/executor.ts";
import type { Future, Outcome } from "../future.ts";
import type { Plugin } from "../plugins/plugin.ts";
import type { Task } from "../task.ts";
import { describeExpected, type Duration, type MemorySize, parseDuration, parseGrace, parseOptionalDuration, parseOptionalMemory } from "../units.ts";
import { CpuTimeLimitError, LimitExceededError, type MemoryKind, MemoryLimitError, WallTimeLimitError } from "./errors.ts";

/** Options of `PynisherPlugin`. Every limit is optional. */
export interface PynisherOptions {
	/** The most wall-clock time a call may run, counted from its start (queue wait excluded). `[5, "m"]`, `"90s"`, seconds. */
	readonly wallTimeLimit?: Duration;
	/** The most CPU time the thread or process running a call may spend on it. Sleeping and awaiting I/O do not count. */
	readonly cpuTimeLimit?: Duration;
	/** The most memory a call may use: `[2, "gb"]`, `"512mb"`, bytes. What it caps is `memoryKind`. */
	readonly memoryLimit?: MemorySize;
	/**
	 * What `memoryLimit` caps: `"heap"`, the V8 heap of the worker thread (Buffers are not counted);
	 * `"rss"`, all resident memory, with the call in a forked process; `"auto"`, the heap cap in the
	 * thread, and a call whose memory outside the heap passes the limit is re-run in a process.
	 * @default "auto"
	 */
	readonly memoryKind?: MemoryKind;
	/** How long a call that is being stopped gets to end on its own after its signal aborts. @default 0 */
	readonly gracePeriod?: Duration | 0;
	/**
	 * The shortest time between two samples of a call's CPU time and memory. A call far from its
	 * limits is sampled less often (at least once a second): CPU time cannot grow faster than wall
	 * time, and memory is taken to grow at most 4 GB/s per thread. @default "10ms"
	 */
	readonly sampleInterval?: Duration;
	/** Whether `"auto"` calls may move to a process; `false` makes `"auto"` behave as `"heap"`. @default true */
	readonly escalate?: boolean;
}

const MEMORY_KINDS: readonly string[] = ["heap", "rss", "auto"];

function parseOptions(options: unknown): Limits {
	if (typeof options !== "object" || options === null) {
		throw new TypeError(describeExpected("options", "an object", options));
	}
	const { wallTimeLimit, cpuTimeLimit, memoryLimit, memoryKind = "auto", gracePeriod = 0, sampleInterval = "10ms", escalate = true } = options as PynisherOptions;
	if (typeof memoryKind !== "string" || !MEMORY_KINDS.includes(memoryKind)) {
		throw new TypeError(describeExpected("memoryKind", '"heap", "rss" or "auto"', memoryKind));
	}
	if (typeof escalate !== "boolean") {
		throw new TypeError(describeExpected("escalate", "a boolean", escalate));
	}
	return {
		wallMs: parseOptionalDuration("wallTimeLimit", wallTimeLimit),
		cpuMs: parseOptionalDuration("cpuTimeLimit", cpuTimeLimit),
		memoryBytes: parseOptionalMemory("memoryLimit", memoryLimit),
		memoryKind,
		graceMs: parseGrace("gracePeriod", gracePeriod),
		sampleMs: Math.max(1, parseDuration("sampleInterval", sampleInterval)),
		escalate,
	};
}

function min(a: number | undefined, b: number | undefined): number | undefined {
	return a === undefined ? b : b === undefined ? a : Math.min(a, b);
}

/** Combines the limits of two plugins on one call: the tighter of each wins. */
export function mergeLimits(current: Limits | undefined, added: Limits): Limits {
	if (current === undefined) {
		return added;
	}
	return {
		wallMs: min(current.wallMs, added.wallMs),
		cpuMs: min(current.cpuMs, added.cpuMs),
		memoryBytes: min(current.memoryBytes, added.memoryBytes),
		memoryKind: current.memoryKind === "rss" || added.memoryKind === "rss" ? "rss" : current.memoryKind === "heap" || added.memoryKind === "heap" ? "heap" : "auto",
		graceMs: Math.max(current.graceMs, added.graceMs),
		sampleMs: Math.min(current.sampleMs, added.sampleMs),
		escalate: current.escalate && added.escalate,
	};
}

/**
 * Puts wall-time, CPU-time and memory limits on every call of the tasks it is given to, and
 * emits an event on the task when one is passed, before the task's `EXCEPTION`.
 *
 * @example
 * const pynisher = new PynisherPlugin({ wallTimeLimit: [5, "m"], memoryLimit: [2, "gb"] });
 * const task = scheduler.task(ref, { plugins: [pynisher] });
 * task.on(pynisher.WALL_TIME_LIMIT_REACHED, (error) => console.log(`Failed with ${error}`));
 */
export class PynisherPlugin implements Plugin {
	/** A wall or CPU time limit was passed: `(error)`. */
	static readonly TIMEOUT = defineEvent<[WallTimeLimitError | CpuTimeLimitError]>("pynisher:timeout");
	/** The wall time limit was passed: `(error)`. */
	static readonly WALL_TIME_LIMIT_REACHED = defineEvent<[WallTimeLimitError]>("pynisher:wall-time-limit-reached");
	/** The CPU time limit was passed: `(error)`. */
	static readonly CPU_TIME_LIMIT_REACHED = defineEvent<[CpuTimeLimitError]>("pynisher:cpu-time-limit-reached");
	/** The memory limit was passed: `(error)`. */
	static readonly MEMORY_LIMIT_REACHED = defineEvent<[MemoryLimitError]>("pynisher:memory-limit-reached");

	readonly TIMEOUT = PynisherPlugin.TIMEOUT;
	readonly WALL_TIME_LIMIT_REACHED = PynisherPlugin.WALL_TIME_LIMIT_REACHED;
	readonly CPU_TIME_LIMIT_REACHED = PynisherPlugin.CPU_TIME_LIMIT_REACHED;
	readonly MEMORY_LIMIT_REACHED = PynisherPlugin.MEMORY_LIMIT_REACHED;

	readonly name = "pynisher";
	readonly events: readonly string[] = [PynisherPlugin.TIMEOUT, PynisherPlugin.WALL_TIME_LIMIT_REACHED, PynisherPlugin.CPU_TIME_LIMIT_REACHED, PynisherPlugin.MEMORY_LIMIT_REACHED];
	readonly #limits: Limits;

	/**
	 * @throws {TypeError} When an option has the wrong type or an unknown unit.
	 * @throws {RangeError} When a limit is zero, negative or not finite.
	 */
	constructor(options: PynisherOptions = {}) {
		this.#limits = parseOptions(options);
	}

	/** The limits, in milliseconds and bytes. */
	get limits(): Limits {
		return this.#limits;
	}

	preSubmit(call: Call): void {
		call.limits = mergeLimits(call.limits, this.#limits);
	}

	settled(_future: Future, outcome: Outcome, task: Task): void {
		if (outcome.kind !== "exception" || !(outcome.error instanceof LimitExceededError)) {
			return;
		}
		const error = outcome.error;
		if (error instanceof WallTimeLimitError && this.#limits.wallMs !== undefined) {
			task.emit(PynisherPlugin.TIMEOUT, error);
			task.emit(PynisherPlugin.WALL_TIME_LIMIT_REACHED, error);
		} else if (error instanceof CpuTimeLimitError && this.#limits.cpuMs !== undefined) {
			task.emit(PynisherPlugin.TIMEOUT, error);
			task.emit(PynisherPlugin.CPU_TIME_LIMIT_REACHED, error);
		} else if (error instanceof MemoryLimitError && this.#limits.memoryBytes !== undefined) {
			task.emit(PynisherPlugin.MEMORY_LIMIT_REACHED, error);
		}
	}
}
