/**
 * A task was stopped because it passed one of its limits. `limit` and `observed` are in
 * milliseconds for time limits and in bytes for memory limits.
 */
export class LimitExceededError extends Error {
    name = "LimitExceededError";
    code = "ERR_LIMIT_EXCEEDED";
    /** Which limit was passed. */
    kind;
    /** The limit, in milliseconds or bytes. */
    limit;
    /** What was measured when the task was stopped, in milliseconds or bytes. */
    observed;
    constructor(kind, limit, observed, message, options) {
        super(message, options);
        this.kind = kind;
        this.limit = limit;
        this.observed = observed;
    }
}
/** The task ran longer than its `wallTimeLimit` (milliseconds). */
export class WallTimeLimitError extends LimitExceededError {
    name = "WallTimeLimitError";
    code = "ERR_WALL_TIME_LIMIT";
    constructor(limit, observed, options) {
        super("wall", limit, observed, `Wall time limit of ${limit} ms reached after ${Math.round(observed)} ms`, options);
    }
}
/** The task used more CPU time than its `cpuTimeLimit` (milliseconds). */
export class CpuTimeLimitError extends LimitExceededError {
    name = "CpuTimeLimitError";
    code = "ERR_CPU_TIME_LIMIT";
    constructor(limit, observed, options) {
        super("cpu", limit, observed, `CPU time limit of ${limit} ms reached after ${Math.round(observed)} ms of CPU time`, options);
    }
}
/** The task used more memory than its `memoryLimit` (bytes); `memoryKind` says which memory was capped. */
export class MemoryLimitError extends LimitExceededError {
    name = "MemoryLimitError";
    code = "ERR_MEMORY_LIMIT";
    /** `"heap"` when the V8 heap cap was hit, `"rss"` when resident memory passed the limit. */
    memoryKind;
    constructor(limit, observed, memoryKind, options) {
        super("memory", limit, observed, `Memory limit of ${formatBytes(limit)} (${memoryKind}) reached at ${formatBytes(observed)}`, options);
        this.memoryKind = memoryKind;
    }
}
function formatBytes(value) {
    return `${(value / 1024 / 1024).toFixed(1)} MB`;
}
