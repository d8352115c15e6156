import { availableParallelism } from "node:os";
import type { ParseArgsConfig } from "node:util";
import { parseDuration, parseMemory, Scheduler } from "../index.ts";
import { type MemoryKind, PynisherPlugin } from "../pynisher/index.ts";
import { quote, UsageError } from "./usage-error.ts";

/** The options that `byop run` and `byop map` share: the limits and the executor. */
export const SHARED_OPTIONS = {
	"wall-time": { type: "string" },
	"cpu-time": { type: "string" },
	memory: { type: "string" },
	"memory-kind": { type: "string" },
	grace: { type: "string" },
	executor: { type: "string" },
	help: { type: "boolean", short: "h" },
} as const satisfies NonNullable<ParseArgsConfig["options"]>;

/** Where the calls of a command run. */
export type Executor = "threads" | "processes" | "sequential";

/** The shared options, checked and in the units of the library. */
export interface SharedOptions {
	/** The limits as one plugin, or `undefined` when no limit was given. */
	readonly plugin: PynisherPlugin | undefined;
	readonly executor: Executor;
}

const EXECUTORS: readonly string[] = ["threads", "processes", "sequential"];
const MEMORY_KINDS: readonly string[] = ["heap", "rss", "auto"];

/** The values `util.parseArgs` gives for the shared options. */
export interface SharedValues {
	readonly "wall-time"?: string | undefined;
	readonly "cpu-time"?: string | undefined;
	readonly memory?: string | undefined;
	readonly "memory-kind"?: string | undefined;
	readonly grace?: string | undefined;
	readonly executor?: string | undefined;
}

/**
 * Runs `fn`, turning a `TypeError`/`RangeError` about an option into a usage error: the library's
 * checks of a value, and `util.parseArgs`'s unknown options and missing values.
 */
export function checked<T>(fn: () => T): T {
	try {
		return fn();
	} catch (error) {
		if (error instanceof TypeError || error instanceof RangeError) {
			throw new UsageError(error.message);
		}
		throw error;
	}
}

/**
 * Checks the limits and the executor with the library's own unit parsing: a bad value is a
 * `UsageError` naming the option and the value.
 */
export function parseShared(values: SharedValues): SharedOptions {
	const executor = values.executor ?? "threads";
	if (!EXECUTORS.includes(executor)) {
		throw new UsageError(`Expected \`--executor\` to be threads, processes or sequential, got ${quote(executor)}`);
	}
	const memoryKind = values["memory-kind"];
	if (memoryKind !== undefined && !MEMORY_KINDS.includes(memoryKind)) {
		throw new UsageError(`Expected \`--memory-kind\` to be heap, rss or auto, got ${quote(memoryKind)}`);
	}
	const wallMs = values["wall-time"] === undefined ? undefined : checked(() => parseDuration("--wall-time", values["wall-time"]));
	const cpuMs = values["cpu-time"] === undefined ? undefined : checked(() => parseDuration("--cpu-time", values["cpu-time"]));
	const memoryBytes = values.memory === undefined ? undefined : checked(() => parseMemory("--memory", values.memory));
	const grace = values.grace;
	const graceMs = grace === undefined || /^\s*0+(\.0*)?\s*(ms|s|m|h)?\s*$/.test(grace) ? 0 : checked(() => parseDuration("--grace", grace));
	if (wallMs === undefined && cpuMs === undefined && memoryBytes === undefined) {
		if (memoryKind !== undefined || grace !== undefined) {
			throw new UsageError(`\`--${memoryKind !== undefined ? "memory-kind" : "grace"}\` needs a limit: give --wall-time, --cpu-time or --memory`);
		}
		return { plugin: undefined, executor: executor as Executor };
	}
	const plugin = checked(
		() =>
			new PynisherPlugin({
				...(wallMs === undefined ? {} : { wallTimeLimit: [wallMs, "ms"] as const }),
				...(cpuMs === undefined ? {} : { cpuTimeLimit: [cpuMs, "ms"] as const }),
				...(memoryBytes === undefined ? {} : { memoryLimit: memoryBytes }),
				...(memoryKind === undefined ? {} : { memoryKind: memoryKind as MemoryKind }),
				...(graceMs === 0 ? {} : { gracePeriod: [graceMs, "ms"] as const }),
			}),
	);
	return { plugin, executor: executor as Executor };
}

/** Checks `--concurrency`: a positive integer, by default the machine's available parallelism. */
export function parseConcurrency(value: string | undefined): number {
	if (value === undefined) {
		return availableParallelism();
	}
	if (!/^\s*\d+\s*$/.test(value) || Number(value) < 1) {
		throw new UsageError(`Expected \`--concurrency\` to be a positive integer, got ${quote(value)}`);
	}
	return Number(value);
}

/** A scheduler on `executor`, running `maxWorkers` calls at once. */
export function createScheduler(executor: Executor, maxWorkers: number): Scheduler {
	if (executor === "sequential") {
		return Scheduler.withSequential();
	}
	return executor === "threads" ? Scheduler.withThreads({ maxWorkers }) : Scheduler.withProcesses({ maxWorkers });
}
