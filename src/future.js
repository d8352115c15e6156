import { CancelledError } from "./errors.js";
let nextId = 1;
/**
 * An awaitable handle on one submitted call. `await future` gives the result, or throws the
 * task's error (a `CancelledError` when it was cancelled).
 */
export class Future {
    /** A unique id. */
    id = nextId++;
    /** The arguments of the call. */
    args;
    /** The name of the task that submitted it. */
    taskName;
    #state = "queued";
    #value;
    #error;
    #usage;
    #canceller;
    #promise;
    #resolve;
    #reject;
    /** @internal Futures are made by `task.submit()`. */
    constructor(taskName, args) {
        this.taskName = taskName;
        this.args = args;
        this.#promise = new Promise((resolve, reject) => {
            this.#resolve = resolve;
            this.#reject = reject;
        });
        // Awaiting is optional: an exception reaches the task's events either way.
        this.#promise.catch(() => { });
    }
    /** `"queued"`, `"running"`, or how it ended. */
    get state() {
        return this.#state;
    }
    /** Whether it has ended, in a result, an exception or a cancellation. */
    get done() {
        return this.#state === "result" || this.#state === "exception" || this.#state === "cancelled";
    }
    /** Whether it was cancelled. */
    get cancelled() {
        return this.#state === "cancelled";
    }
    /** Whether it is running now. */
    get running() {
        return this.#state === "running";
    }
    /** The result, once it ended in one. */
    get result() {
        return this.#value;
    }
    /** The error, once it ended in one (the `CancelledError` when cancelled). */
    get exception() {
        return this.#error;
    }
    /** What the call used, once it finished; `undefined` before, or when it never started. */
    get usage() {
        return this.#usage;
    }
    /**
     * Cancels the call: a queued call is removed from the queue, a running one is stopped (its
     * thread is terminated and replaced, its process killed). Returns `false` when it had already ended.
     */
    cancel(reason = "The task was cancelled") {
        if (this.done) {
            return false;
        }
        this.#canceller?.(new CancelledError(reason));
        return true;
    }
    then(onResult, onError) {
        return this.#promise.then(onResult, onError);
    }
    catch(onError) {
        return this.#promise.catch(onError);
    }
    finally(onFinally) {
        return this.#promise.finally(onFinally);
    }
    /** @internal */
    _bind(canceller) {
        this.#canceller = canceller;
    }
    /** @internal */
    _started() {
        if (this.#state === "queued") {
            this.#state = "running";
        }
    }
    /** @internal Records how it ended; the promise settles in `_release`, after the events. */
    _settle(outcome) {
        this.#usage = outcome.usage;
        if (outcome.kind === "result") {
            this.#state = "result";
            this.#value = outcome.value;
        }
        else if (outcome.kind === "exception") {
            this.#state = "exception";
            this.#error = outcome.error;
        }
        else {
            this.#state = "cancelled";
            this.#error = outcome.error;
        }
    }
    /** @internal */
    _release() {
        if (this.#state === "result") {
            this.#resolve(this.#value);
        }
        else {
            this.#reject(this.#error);
        }
    }
}
