/**
 * One timer for every running call that has a CPU or memory limit. It ticks only while there is
 * something to watch, at the shortest interval asked for, and never keeps the process alive.
 */
export class Watchdog {
    #watched = new Set();
    #timer;
    #interval = 0;
    #ticks = 0;
    /** How many times the timer has fired: for tests and benchmarks. */
    get ticks() {
        return this.#ticks;
    }
    /** Whether the timer is running. */
    get active() {
        return this.#timer !== undefined;
    }
    /** How many things are watched now. */
    get size() {
        return this.#watched.size;
    }
    add(watched) {
        this.#watched.add(watched);
        this.#schedule();
    }
    delete(watched) {
        if (this.#watched.delete(watched)) {
            this.#schedule();
        }
    }
    #schedule() {
        if (this.#watched.size === 0) {
            clearInterval(this.#timer);
            this.#timer = undefined;
            this.#interval = 0;
            return;
        }
        let interval = Number.POSITIVE_INFINITY;
        for (const watched of this.#watched) {
            interval = Math.min(interval, watched.intervalMs);
        }
        if (this.#timer !== undefined && interval === this.#interval) {
            return;
        }
        clearInterval(this.#timer);
        this.#interval = interval;
        this.#timer = setInterval(() => this.#tick(), interval);
        this.#timer.unref();
    }
    #tick() {
        this.#ticks++;
        for (const watched of [...this.#watched]) {
            watched.check();
        }
    }
}
