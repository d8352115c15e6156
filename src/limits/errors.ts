import { registerErrors } from "../serialize.ts";
import type { LimitKind } from "./types.ts";

/** Options of a limit's error: its cause, and a message to use instead of the usual one. */
export interface LimitErrorOptions extends ErrorOptions {
	/** Says more than the usual message can: a limit refused before the call started, a call that never started. */
	readonly message?: string;
}

/**
 * A task was stopped because it passed one of its limits. `limit` and `observed` are in
 * milliseconds for time limits and in bytes for memory limits.
 */
export class LimitExceededError extends Error {
	override name = "LimitExceededError";
	readonly code: string = "ERR_LIMIT_EXCEEDED";
	/** Which limit was passed. */
	readonly kind: LimitKind;
	/** The limit, in milliseconds or bytes. */
	readonly limit: number;
	/** What was measured when the task was stopped, in milliseconds or bytes. */
	readonly observed: number;

	constructor(kind: LimitKind, limit: number, observed: number, message: string, options?: ErrorOptions) {
		super(message, options);
		this.kind = kind;
		this.limit = limit;
		this.observed = observed;
	}
}

/** The task ran longer than its `wallTimeLimit` (milliseconds). */
export class WallTimeLimitError extends LimitExceededError {
	override name = "WallTimeLimitError";
	override readonly code = "ERR_WALL_TIME_LIMIT";

	constructor(limit: number, observed: number, options?: LimitErrorOptions) {
		super("wall", limit, observed, options?.message ?? `Wall time limit of ${limit} ms reached after ${Math.round(observed)} ms`, options);
	}
}

/** The task used more CPU time than its `cpuTimeLimit` (milliseconds). */
export class CpuTimeLimitError extends LimitExceededError {
	override name = "CpuTimeLimitError";
	override readonly code = "ERR_CPU_TIME_LIMIT";

	constructor(limit: number, observed: number, options?: LimitErrorOptions) {
		super("cpu", limit, observed, options?.message ?? `CPU time limit of ${limit} ms reached after ${Math.round(observed)} ms of CPU time`, options);
	}
}

/** The task used more memory than its `memoryLimit` (bytes); `memoryKind` says which memory was capped. */
export class MemoryLimitError extends LimitExceededError {
	override name = "MemoryLimitError";
	override readonly code = "ERR_MEMORY_LIMIT";
	/** `"heap"` when the V8 heap cap was hit, `"rss"` when resident memory passed the limit. */
	readonly memoryKind: "heap" | "rss";

	constructor(limit: number, observed: number, memoryKind: "heap" | "rss", options?: LimitErrorOptions) {
		super("memory", limit, observed, options?.message ?? `Memory limit of ${formatBytes(limit)} (${memoryKind}) reached at ${formatBytes(observed)}`, options);
		this.memoryKind = memoryKind;
	}
}

/** An amount of memory for messages: in MB, or in KB or bytes below a tenth of a megabyte (a limit of 1 KB is not "0.0 MB"). */
export function formatBytes(value: number): string {
	if (value < 1024) {
		return `${value} B`;
	}
	if (value < 0.1 * 1024 * 1024) {
		return `${(value / 1024).toFixed(1)} KB`;
	}
	return `${(value / 1024 / 1024).toFixed(1)} MB`;
}

registerErrors(LimitExceededError, WallTimeLimitError, CpuTimeLimitError, MemoryLimitError);
