import { describeExpected, type Duration, type MemorySize, parseDuration, parseGrace, parseOptionalDuration, parseOptionalMemory } from "../units.ts";
import type { Limits, MemoryKind } from "./types.ts";

/** The limits of a call as a user writes them (`PynisherPlugin`'s options). Every limit is optional. */
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

/**
 * Checks limit options and returns them in milliseconds and bytes.
 *
 * @throws {TypeError} When an option has the wrong type or an unknown unit.
 * @throws {RangeError} When a limit is zero, negative or not finite.
 */
export function parseLimits(options: unknown): Limits {
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
