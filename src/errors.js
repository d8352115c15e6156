/** A future that was cancelled before it produced a result. `await future` rejects with it. */
export class CancelledError extends Error {
    code = "ERR_CANCELLED";
    name = "CancelledError";
    constructor(message = "The task was cancelled", options) {
        super(message, options);
    }
}
/** `task.submit()` while the scheduler is not running, or a second `run()` while one is under way. */
export class SchedulerStateError extends Error {
    code = "ERR_SCHEDULER_STATE";
    name = "SchedulerStateError";
}
/** The function a task refers to could not be loaded: a missing module, a missing export or one that is not a function. */
export class TaskLoadError extends Error {
    code = "ERR_TASK_LOAD";
    name = "TaskLoadError";
    module;
    export;
    constructor(message, module, exportName, options) {
        super(message, options);
        this.module = module;
        this.export = exportName;
    }
}
/** The arguments or the result of a call could not be copied between threads or processes. */
export class DataCloneError extends Error {
    code = "ERR_DATA_CLONE";
    name = "DataCloneError";
}
/**
 * The thread or process that ran a task ended without answering: `process.exit()`, a fatal
 * signal, an uncaught error outside the task, or a worker that failed to start.
 */
export class WorkerCrashedError extends Error {
    code = "ERR_WORKER_CRASHED";
    name = "WorkerCrashedError";
    /** The exit code of the process or thread, when it exited. */
    exitCode;
    /** The signal that ended the process, when one did. */
    signal;
    constructor(message, details, options) {
        super(message, options);
        this.exitCode = details.exitCode ?? null;
        this.signal = details.signal ?? null;
    }
}
