import { CpuTimeLimitError, MemoryLimitError, WallTimeLimitError } from "./errors.js";
/**
 * Watches one running call against its limits: a timer for wall time, the shared watchdog for
 * CPU time and resident memory. The first limit passed calls `onLimit` once with its error.
 */
export class Guard {
    intervalMs;
    #limits;
    #probe;
    #watchdog;
    #onLimit;
    #wallTimer;
    #startedAt = 0;
    #cpuMs = -1;
    #peakRss = 0;
    #fired;
    #watching = false;
    constructor(limits, probe, watchdog, onLimit) {
        this.#limits = limits;
        this.#probe = probe;
        this.#watchdog = watchdog;
        this.#onLimit = onLimit;
        this.intervalMs = limits.sampleMs;
    }
    /** The limit error, once one fired. */
    get fired() {
        return this.#fired;
    }
    /** The last CPU time read, in milliseconds. */
    get cpuMs() {
        return this.#cpuMs;
    }
    /** The highest resident memory read, in bytes (0 when not read). */
    get peakRss() {
        return this.#peakRss;
    }
    /** Starts watching; wall time counts from now. */
    start(watchRss) {
        this.#startedAt = performance.now();
        const { wallMs, cpuMs } = this.#limits;
        if (wallMs !== undefined) {
            this.#armWall(wallMs, wallMs);
        }
        if (cpuMs !== undefined || (watchRss && this.#probe.rssBytes !== undefined)) {
            this.#watching = true;
            this.#watchdog.add(this);
        }
    }
    #armWall(limit, delay) {
        this.#wallTimer = setTimeout(() => {
            const elapsed = performance.now() - this.#startedAt;
            // Timers round to whole milliseconds and may fire a fraction early.
            if (elapsed < limit) {
                this.#armWall(limit, Math.max(1, Math.ceil(limit - elapsed)));
            }
            else {
                this.#fire(new WallTimeLimitError(limit, elapsed));
            }
        }, delay);
        this.#wallTimer.unref();
    }
    /** Milliseconds since `start`. */
    elapsed() {
        return this.#startedAt === 0 ? 0 : performance.now() - this.#startedAt;
    }
    check() {
        if (this.#fired !== undefined) {
            return;
        }
        const { cpuMs, memoryBytes } = this.#limits;
        const cpu = this.#probe.cpuMs();
        if (cpu >= 0) {
            this.#cpuMs = cpu;
            if (cpuMs !== undefined && cpu >= cpuMs) {
                this.#fire(new CpuTimeLimitError(cpuMs, cpu));
                return;
            }
        }
        if (this.#probe.rssBytes !== undefined) {
            const rss = this.#probe.rssBytes();
            this.#peakRss = Math.max(this.#peakRss, rss);
            if (memoryBytes !== undefined && rss > memoryBytes) {
                this.#fire(new MemoryLimitError(memoryBytes, rss, "rss"));
            }
        }
    }
    #fire(error) {
        if (this.#fired !== undefined) {
            return;
        }
        this.#fired = error;
        this.dispose();
        this.#onLimit(error);
    }
    /** Stops every timer of this call. */
    dispose() {
        clearTimeout(this.#wallTimer);
        this.#wallTimer = undefined;
        if (this.#watching) {
            this.#watching = false;
            this.#watchdog.delete(this);
        }
    }
}
