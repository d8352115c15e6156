export { PynisherPlugin, type PynisherOptions } from "./plugin.ts";
export { limit, type LimitOptions, type LimitedFunction } from "./limit.ts";
export { LimitExceededError, WallTimeLimitError, CpuTimeLimitError, MemoryLimitError } from "../limits/errors.ts";
export type { LimitKind, MemoryKind } from "../limits/types.ts";
