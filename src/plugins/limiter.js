import { defineEvent } from "../events.js";
import { describeExpected, parseCount } from "../units.js";
/**
 * Vetoes calls past a total count, past a number running at once, or while other tasks run.
 * A vetoed `submit()` returns `undefined` and the task emits the matching event.
 */
export class Limiter {
    /** A call was refused because `maxCalls` were made: `(task, ...args)`. */
    static CALL_LIMIT_REACHED = defineEvent("limiter:call-limit-reached");
    /** A call was refused because `maxConcurrent` calls are in flight: `(task, ...args)`. */
    static CONCURRENT_LIMIT_REACHED = defineEvent("limiter:concurrent-limit-reached");
    /** A call was refused because a task in `notWhileRunning` is running: `(task, ...args)`. */
    static DISABLED_DUE_TO_RUNNING_TASK = defineEvent("limiter:disabled-due-to-running-task");
    CALL_LIMIT_REACHED = Limiter.CALL_LIMIT_REACHED;
    CONCURRENT_LIMIT_REACHED = Limiter.CONCURRENT_LIMIT_REACHED;
    DISABLED_DUE_TO_RUNNING_TASK = Limiter.DISABLED_DUE_TO_RUNNING_TASK;
    name = "limiter";
    events = [Limiter.CALL_LIMIT_REACHED, Limiter.CONCURRENT_LIMIT_REACHED, Limiter.DISABLED_DUE_TO_RUNNING_TASK];
    maxCalls;
    maxConcurrent;
    notWhileRunning;
    #calls = 0;
    #inFlight = new Set();
    constructor(options = {}) {
        if (typeof options !== "object" || options === null) {
            throw new TypeError(describeExpected("options", "an object", options));
        }
        const { maxCalls, maxConcurrent, notWhileRunning = [] } = options;
        this.maxCalls = maxCalls === undefined ? undefined : parseCount("maxCalls", maxCalls);
        this.maxConcurrent = maxConcurrent === undefined ? undefined : parseCount("maxConcurrent", maxConcurrent);
        const tasks = Array.isArray(notWhileRunning) ? notWhileRunning : [notWhileRunning];
        for (const [index, task] of tasks.entries()) {
            if (typeof task !== "object" || task === null || !Array.isArray(task.running)) {
                throw new TypeError(describeExpected(`notWhileRunning[${index}]`, "a Task", task));
            }
        }
        this.notWhileRunning = tasks;
    }
    /** Calls let through so far. */
    get calls() {
        return this.#calls;
    }
    /** Calls let through that are queued or running now. */
    get concurrent() {
        return this.#inFlight.size;
    }
    preSubmit(call, task) {
        if (this.maxCalls !== undefined && this.#calls >= this.maxCalls) {
            task.emit(Limiter.CALL_LIMIT_REACHED, task, ...call.args);
            return false;
        }
        if (this.maxConcurrent !== undefined && this.#inFlight.size >= this.maxConcurrent) {
            task.emit(Limiter.CONCURRENT_LIMIT_REACHED, task, ...call.args);
            return false;
        }
        if (this.notWhileRunning.some((other) => other.running.length > 0)) {
            task.emit(Limiter.DISABLED_DUE_TO_RUNNING_TASK, task, ...call.args);
            return false;
        }
        this.#calls++;
        this.#inFlight.add(call.future);
        return true;
    }
    settled(future) {
        this.#inFlight.delete(future);
    }
}
