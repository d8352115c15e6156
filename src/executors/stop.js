/**
 * Stops a running call once: first tells the task (its `AbortSignal`), then, after the grace
 * period, ends it for good. The first reason wins.
 */
export class Stopper {
    #reason;
    #timer;
    #graceMs;
    #notify;
    #kill;
    constructor(limits, notify, kill) {
        this.#graceMs = limits?.graceMs ?? 0;
        this.#notify = notify;
        this.#kill = kill;
    }
    /** Why the call is being stopped, once it is. */
    get reason() {
        return this.#reason;
    }
    /** Stops the call; `immediately` skips the grace period (the call has not started yet). */
    stop(reason, immediately = false) {
        if (this.#reason !== undefined) {
            return;
        }
        this.#reason = reason;
        if (this.#graceMs > 0 && !immediately) {
            this.#notify(reason);
            this.#timer = setTimeout(() => this.#kill(reason), this.#graceMs);
            this.#timer.unref();
        }
        else {
            this.#kill(reason);
        }
    }
    /** Clears the grace timer once the call has ended. */
    dispose() {
        clearTimeout(this.#timer);
    }
}
