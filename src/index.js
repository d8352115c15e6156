export { Scheduler } from "./scheduler.js";
export { Task } from "./task.js";
export { Future } from "./future.js";
export { defineEvent } from "./events.js";
export { Limiter } from "./plugins/limiter.js";
export { CancelledError, SchedulerStateError, TaskLoadError, DataCloneError, WorkerCrashedError } from "./errors.js";
export { currentCall, taskSignal } from "./context.js";
export { parseDuration, parseMemory } from "./units.js";
