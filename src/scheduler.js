var _a;
import { availableParallelism } from "node:os";
import { Dispatcher } from "./dispatcher.js";
import { CancelledError, SchedulerStateError } from "./errors.js";
import { Emitter, defineEvent } from "./events.js";
import { Task } from "./task.js";
import { describeExpected, parseCount, parseDuration } from "./units.js";
const ACTIONS = ["raise", "end", "continue"];
function parseAction(option, value) {
    if (typeof value !== "string" || !ACTIONS.includes(value)) {
        throw new TypeError(describeExpected(option, '"raise", "end" or "continue"', value));
    }
    return value;
}
function parseRunOptions(options) {
    if (typeof options !== "object" || options === null) {
        throw new TypeError(describeExpected("options", "an object", options));
    }
    const { timeout, endOnEmpty = true, wait = true, onException = "raise", onCancelled = "raise" } = options;
    for (const [name, value] of [["endOnEmpty", endOnEmpty], ["wait", wait]]) {
        if (typeof value !== "boolean") {
            throw new TypeError(describeExpected(name, "a boolean", value));
        }
    }
    let policy;
    if (Array.isArray(onException)) {
        policy = onException.map((pair, index) => {
            if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== "function") {
                throw new TypeError(describeExpected(`onException[${index}]`, "an [ErrorClass, action] pair", pair));
            }
            return [pair[0], parseAction(`onException[${index}][1]`, pair[1])];
        });
    }
    else {
        policy = parseAction("onException", onException);
    }
    return {
        timeoutMs: timeout === undefined ? undefined : parseDuration("timeout", timeout),
        endOnEmpty,
        wait,
        onException: policy,
        onCancelled: parseAction("onCancelled", onCancelled),
    };
}
/**
 * Runs tasks on an executor (the main thread, a worker-thread pool, or a pool of processes) and
 * emits events as they go.
 *
 * @example
 * const scheduler = Scheduler.withThreads({ maxWorkers: 2 });
 * scheduler.on(Scheduler.STARTED, () => task.submit(42));
 * const exit = await scheduler.run({ timeout: "1h" });
 */
export class Scheduler {
    /** The run has started; submit the first calls here. */
    static STARTED = defineEvent("scheduler:started");
    /** The run is ending: calls are being waited for or cancelled. */
    static FINISHING = defineEvent("scheduler:finishing");
    /** The run has ended, with its exit state. */
    static FINISHED = defineEvent("scheduler:finished");
    /** The run was stopped by `stop()` or by the exception policy: `(reason, error?)`. */
    static STOP = defineEvent("scheduler:stop");
    /** The run's `timeout` ended it. */
    static TIMEOUT = defineEvent("scheduler:timeout");
    /** Nothing is queued or running. */
    static EMPTY = defineEvent("scheduler:empty");
    static FUTURE_SUBMITTED = defineEvent("scheduler:future-submitted");
    static FUTURE_DONE = defineEvent("scheduler:future-done");
    static FUTURE_CANCELLED = defineEvent("scheduler:future-cancelled");
    static FUTURE_RESULT = defineEvent("scheduler:future-result");
    static FUTURE_EXCEPTION = defineEvent("scheduler:future-exception");
    STARTED = _a.STARTED;
    FINISHING = _a.FINISHING;
    FINISHED = _a.FINISHED;
    STOP = _a.STOP;
    TIMEOUT = _a.TIMEOUT;
    EMPTY = _a.EMPTY;
    FUTURE_SUBMITTED = _a.FUTURE_SUBMITTED;
    FUTURE_DONE = _a.FUTURE_DONE;
    FUTURE_CANCELLED = _a.FUTURE_CANCELLED;
    FUTURE_RESULT = _a.FUTURE_RESULT;
    FUTURE_EXCEPTION = _a.FUTURE_EXCEPTION;
    #dispatcher;
    #emitter;
    #state = "idle";
    #options;
    #ending;
    #endRun;
    #drainWaiters = [];
    #timers = new Set();
    #tickets = new Map();
    /** Use `Scheduler.withSequential()`, `withThreads()` or `withProcesses()`. */
    constructor(executor, options = {}) {
        if (executor !== "sequential" && executor !== "threads" && executor !== "processes") {
            throw new TypeError(describeExpected("executor", '"sequential", "threads" or "processes"', executor));
        }
        if (typeof options !== "object" || options === null) {
            throw new TypeError(describeExpected("options", "an object", options));
        }
        const maxWorkers = options.maxWorkers === undefined ? availableParallelism() : parseCount("maxWorkers", options.maxWorkers);
        this.#dispatcher = new Dispatcher(executor, maxWorkers);
        this.#emitter = new Emitter((error, event) => this._handlerError(error, event));
    }
    /** Runs each call in the main thread, one at a time. Calls with limits run in a forked process. */
    static withSequential() {
        return new _a("sequential");
    }
    /** Runs calls on a piscina pool of worker threads. */
    static withThreads(options = {}) {
        return new _a("threads", options);
    }
    /** Runs calls in a pool of forked Node processes, kept warm and reused. */
    static withProcesses(options = {}) {
        return new _a("processes", options);
    }
    /** The executor calls run on. */
    get executor() {
        return this.#dispatcher.kind;
    }
    /** How many calls run at once. */
    get maxWorkers() {
        return this.#dispatcher.maxWorkers;
    }
    /** Whether a run is under way (including while it finishes). */
    get running() {
        return this.#state !== "idle";
    }
    /** Calls queued or running now. */
    get pending() {
        return this.#dispatcher.size;
    }
    /** @internal For tests and benchmarks. */
    get _dispatcher() {
        return this.#dispatcher;
    }
    /** Creates a task that submits to this scheduler. */
    task(ref, options = {}) {
        return new Task(ref, this, options);
    }
    /** Subscribes to a scheduler event; returns a function that unsubscribes. */
    on(event, handler) {
        return this.#emitter.on(event, handler);
    }
    /** Unsubscribes a handler. */
    off(event, handler) {
        this.#emitter.off(event, handler);
    }
    /**
     * Runs until the queue is empty (`endOnEmpty`), the `timeout` passes, `stop()` is called, or
     * the exception policy ends it. Resolves to the exit state; rejects with the error when the
     * policy is `"raise"`, after shutting down.
     */
    async run(options = {}) {
        const filled = parseRunOptions(options);
        if (this.#state !== "idle") {
            throw new SchedulerStateError("The scheduler is already running");
        }
        this.#options = filled;
        this.#ending = undefined;
        const ended = new Promise((resolve) => {
            this.#endRun = resolve;
        });
        this.#state = "running";
        // A run keeps the process alive until it ends, whatever its calls are waiting on.
        const keepAlive = setInterval(() => { }, 1 << 30);
        this.#dispatcher.open();
        if (filled.timeoutMs !== undefined) {
            this.#timer(filled.timeoutMs, () => {
                if (this.#end({ code: "timeout", raise: false })) {
                    this.#emitter.emit(_a.TIMEOUT);
                }
            });
        }
        this.#emitter.emit(_a.STARTED);
        this.#checkEmpty();
        const ending = await ended;
        this.#state = "finishing";
        for (const timer of this.#timers) {
            clearTimeout(timer);
        }
        this.#timers.clear();
        this.#emitter.emit(_a.FINISHING);
        if (!filled.wait) {
            this.#dispatcher.cancelAll(() => new CancelledError("The run ended before the task finished"));
        }
        if (this.#dispatcher.size > 0) {
            await new Promise((resolve) => this.#drainWaiters.push(resolve));
        }
        await this.#dispatcher.close();
        const final = this.#ending ?? ending;
        const exit = final.exception === undefined ? { code: final.code } : { code: final.code, exception: final.exception };
        this.#emitter.emit(_a.FINISHED, exit);
        this.#state = "idle";
        this.#endRun = undefined;
        clearInterval(keepAlive);
        if (final.raise) {
            throw final.exception;
        }
        return exit;
    }
    /** Ends the run with code `"stopped"`; what is running is waited for or cancelled as `run({ wait })` says. */
    stop(reason = "stop() was called") {
        if (this.#state === "running" && this.#end({ code: "stopped", raise: false })) {
            this.#emitter.emit(_a.STOP, reason, undefined);
        }
    }
    /**
     * Calls `fn` after `delay` while the run lasts. A pending call keeps an `endOnEmpty` run
     * going. Returns a function that cancels it.
     */
    callLater(delay, fn) {
        const ms = parseDuration("delay", delay);
        if (typeof fn !== "function") {
            throw new TypeError(describeExpected("fn", "a function", fn));
        }
        this._assertAccepting();
        const timer = this.#timer(ms, () => {
            try {
                const returned = fn();
                if (returned instanceof Promise) {
                    returned.catch((error) => this._handlerError(error, "callLater"));
                }
            }
            catch (error) {
                this._handlerError(error, "callLater");
            }
            this.#checkEmpty();
        });
        return () => {
            clearTimeout(timer);
            this.#timers.delete(timer);
            this.#checkEmpty();
        };
    }
    #timer(ms, fn) {
        const timer = setTimeout(() => {
            this.#timers.delete(timer);
            fn();
        }, ms);
        this.#timers.add(timer);
        return timer;
    }
    /** Ends the run with `ending` unless it is already ending; returns whether it did. */
    #end(ending) {
        if (this.#ending !== undefined || this.#endRun === undefined || this.#state !== "running") {
            return false;
        }
        this.#ending = ending;
        this.#endRun(ending);
        return true;
    }
    #checkEmpty() {
        if (this.#state !== "running" || this.#dispatcher.size > 0) {
            return;
        }
        this.#emitter.emit(_a.EMPTY);
        // A pending callLater keeps an endOnEmpty run alone (the timeout timer does not count).
        const scheduled = this.#timers.size - (this.#options?.timeoutMs === undefined ? 0 : 1);
        if (this.#options?.endOnEmpty && this.#dispatcher.size === 0 && scheduled <= 0) {
            this.#end({ code: "exhausted", raise: false });
        }
    }
    /** @internal */
    _assertAccepting() {
        if (this.#state === "idle") {
            throw new SchedulerStateError("Cannot submit: the scheduler is not running; call task.submit() from a Scheduler.STARTED handler or while run() is under way");
        }
    }
    /** @internal Whether new calls are taken (not while a run finishes). */
    get _accepting() {
        return this.#state === "running";
    }
    /** @internal */
    _submit(call, task) {
        const future = call.future;
        const ticket = this.#dispatcher.submit(call, () => task._started(future), (outcome) => this.#settled(task, future, outcome));
        future._bind((reason) => this.#tickets.get(future)?.cancel(reason));
        if (!future.done) {
            this.#tickets.set(future, ticket);
        }
        this.#emitter.emit(_a.FUTURE_SUBMITTED, future);
    }
    #settled(task, future, outcome) {
        this.#tickets.delete(future);
        task._settled(future, outcome);
        this.#emitter.emit(_a.FUTURE_DONE, future);
        if (outcome.kind === "result") {
            this.#emitter.emit(_a.FUTURE_RESULT, future, outcome.value);
        }
        else if (outcome.kind === "exception") {
            this.#emitter.emit(_a.FUTURE_EXCEPTION, future, outcome.error);
            this.#apply(this.#exceptionAction(outcome.error), "exception", outcome.error, `${future.taskName} raised an exception`);
        }
        else {
            this.#emitter.emit(_a.FUTURE_CANCELLED, future);
            // Cancellations made by the run's own ending are not a reason to raise.
            if (this.#state === "running") {
                this.#apply(this.#options?.onCancelled ?? "raise", "cancelled", outcome.error, `${future.taskName} was cancelled`);
            }
        }
        future._release();
        if (this.#dispatcher.size === 0 && this.#drainWaiters.length > 0) {
            for (const resolve of this.#drainWaiters.splice(0)) {
                resolve();
            }
        }
        this.#checkEmpty();
    }
    #exceptionAction(error) {
        const policy = this.#options?.onException ?? "raise";
        if (typeof policy === "string") {
            return policy;
        }
        for (const [ErrorClass, action] of policy) {
            if (error instanceof ErrorClass) {
                return action;
            }
        }
        return "raise";
    }
    #apply(action, code, error, reason) {
        if (action === "continue") {
            return;
        }
        const raise = action === "raise";
        if (this.#state === "running" && this.#ending === undefined) {
            if (this.#end({ code, exception: error, raise })) {
                this.#emitter.emit(_a.STOP, reason, error);
            }
            return;
        }
        // An error while the run ends is not lost: under "raise" run() rejects with it, under
        // "end" a run that was merely exhausted ends with it.
        const ending = this.#ending;
        if (ending !== undefined && ((raise && !ending.raise) || (!raise && ending.code === "exhausted"))) {
            this.#ending = { code, exception: error, raise };
        }
    }
    /** @internal An event handler, a plugin hook or a callLater function threw. */
    _handlerError(error, event) {
        if (this.#state === "idle") {
            process.emitWarning(`A handler of "${event}" failed after the run ended: ${error instanceof Error ? error.message : String(error)}`, {
                code: "BYOP_HANDLER_ERROR",
            });
            return;
        }
        this.#apply(this.#exceptionAction(error), "exception", error, `A handler of "${event}" threw`);
    }
}
_a = Scheduler;
