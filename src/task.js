import { Emitter, defineEvent } from "./events.js";
import { Future } from "./future.js";
import { describeRef, resolveRef } from "./ref.js";
import { describeExpected } from "./units.js";
let nextCallId = 1;
/**
 * A function that a scheduler runs: `submit(...args)` queues one call of it and returns a
 * `Future`. Every submitted future ends in exactly one of `RESULT`, `EXCEPTION`, `CANCELLED`.
 *
 * @example
 * const task = new Task({ module: new URL("./jobs.js", import.meta.url), name: "train" }, scheduler);
 * task.on(Task.RESULT, (future, result) => console.log(result));
 */
export class Task {
    /** A call was queued: `(future, ...args)`. */
    static SUBMITTED = defineEvent("task:submitted");
    /** A call ended, whichever way: `(future)`. */
    static DONE = defineEvent("task:done");
    /** A call returned: `(future, result)`. */
    static RESULT = defineEvent("task:result");
    /** A call threw, crashed or passed a limit: `(future, error)`. */
    static EXCEPTION = defineEvent("task:exception");
    /** A call was cancelled: `(future)`. */
    static CANCELLED = defineEvent("task:cancelled");
    SUBMITTED = Task.SUBMITTED;
    DONE = Task.DONE;
    RESULT = Task.RESULT;
    EXCEPTION = Task.EXCEPTION;
    CANCELLED = Task.CANCELLED;
    /** The task's name. */
    name;
    /** The function it runs. */
    ref;
    /** The scheduler it submits to. */
    scheduler;
    /** Its plugins, in order. */
    plugins;
    #emitter;
    #running = new Set();
    constructor(ref, scheduler, options = {}) {
        this.ref = resolveRef(ref);
        if (typeof scheduler !== "object" || scheduler === null || typeof scheduler._submit !== "function") {
            throw new TypeError(describeExpected("scheduler", "a Scheduler", scheduler));
        }
        this.scheduler = scheduler;
        if (typeof options !== "object" || options === null) {
            throw new TypeError(describeExpected("options", "an object", options));
        }
        const { plugins = [], name } = options;
        if (!Array.isArray(plugins)) {
            throw new TypeError(describeExpected("plugins", "an array of plugins", plugins));
        }
        for (const [index, plugin] of plugins.entries()) {
            if (typeof plugin !== "object" || plugin === null || typeof plugin.name !== "string") {
                throw new TypeError(describeExpected(`plugins[${index}]`, "a plugin (an object with a `name`)", plugin));
            }
        }
        if (name !== undefined && (typeof name !== "string" || name === "")) {
            throw new TypeError(describeExpected("name", "a non-empty string", name));
        }
        this.name = name ?? describeRef(this.ref);
        this.plugins = [...plugins];
        this.#emitter = new Emitter((error, event) => scheduler._handlerError(error, event));
        for (const plugin of this.plugins) {
            plugin.attach?.(this);
        }
    }
    /** The futures of this task that are queued or running. */
    get running() {
        return [...this.#running];
    }
    /** Subscribes to one of the task's events, or a plugin's; returns a function that unsubscribes. */
    on(event, handler) {
        return this.#emitter.on(event, handler);
    }
    /** Unsubscribes a handler. */
    off(event, handler) {
        this.#emitter.off(event, handler);
    }
    /** Emits an event on this task. Plugins use it for their own events. */
    emit(event, ...args) {
        this.#emitter.emit(event, ...args);
    }
    /**
     * Queues one call with `args`. Returns its `Future`, or `undefined` when a plugin vetoed it or
     * the scheduler's run is ending.
     *
     * @throws {SchedulerStateError} When the scheduler is not running.
     */
    submit(...args) {
        this.scheduler._assertAccepting();
        if (!this.scheduler._accepting) {
            return undefined;
        }
        const future = new Future(this.name, args);
        const call = { id: nextCallId++, ref: this.ref, args, limits: undefined, taskName: this.name, future: future };
        for (const plugin of this.plugins) {
            if (plugin.preSubmit?.(call, this) === false) {
                return undefined;
            }
        }
        this.#running.add(future);
        this.#emitter.emit(Task.SUBMITTED, future, ...call.args);
        this.scheduler._submit(call, this);
        return future;
    }
    /** @internal The scheduler reports that a call started. */
    _started(future) {
        future._started();
        for (const plugin of this.plugins) {
            plugin.started?.(future, this);
        }
    }
    /** @internal The scheduler reports how a call ended; the task's events follow the plugins'. */
    _settled(future, outcome) {
        this.#running.delete(future);
        future._settle(outcome);
        for (const plugin of this.plugins) {
            try {
                plugin.settled?.(future, outcome, this);
            }
            catch (error) {
                this.scheduler._handlerError(error, `${plugin.name}.settled`);
            }
        }
        this.#emitter.emit(Task.DONE, future);
        if (outcome.kind === "result") {
            this.#emitter.emit(Task.RESULT, future, outcome.value);
        }
        else if (outcome.kind === "exception") {
            this.#emitter.emit(Task.EXCEPTION, future, outcome.error);
        }
        else {
            this.#emitter.emit(Task.CANCELLED, future);
        }
    }
}
