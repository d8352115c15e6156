export { PynisherPlugin } from "./plugin.js";
export { limit } from "./limit.js";
export { LimitExceededError, WallTimeLimitError, CpuTimeLimitError, MemoryLimitError } from "./errors.js";
