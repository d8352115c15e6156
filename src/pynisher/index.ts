export { PynisherPlugin, type PynisherOptions } from "./plugin.ts";
export { limit, type LimitOptions } from "./limit.ts";
export { LimitExceededError, WallTimeLimitError, CpuTimeLimitError, MemoryLimitError, type LimitKind, type MemoryKind } from "./errors.ts";
