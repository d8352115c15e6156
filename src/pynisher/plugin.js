import { defineEvent } from "../events.js";
import { describeExpected, parseDuration, parseGrace, parseOptionalDuration, parseOptionalMemory } from "../units.js";
import { CpuTimeLimitError, LimitExceededError, MemoryLimitError, WallTimeLimitError } from "./errors.js";
const MEMORY_KINDS = ["heap", "rss", "auto"];
function parseOptions(options) {
    if (typeof options !== "object" || options === null) {
        throw new TypeError(describeExpected("options", "an object", options));
    }
    const { wallTimeLimit, cpuTimeLimit, memoryLimit, memoryKind = "auto", gracePeriod = 0, sampleInterval = "10ms", escalate = true } = options;
    if (typeof memoryKind !== "string" || !MEMORY_KINDS.includes(memoryKind)) {
        throw new TypeError(describeExpected("memoryKind", '"heap", "rss" or "auto"', memoryKind));
    }
    if (typeof escalate !== "boolean") {
        throw new TypeError(describeExpected("escalate", "a boolean", escalate));
    }
    return {
        wallMs: parseOptionalDuration("wallTimeLimit", wallTimeLimit),
        cpuMs: parseOptionalDuration("cpuTimeLimit", cpuTimeLimit),
        memoryBytes: parseOptionalMemory("memoryLimit", memoryLimit),
        memoryKind,
        graceMs: parseGrace("gracePeriod", gracePeriod),
        sampleMs: Math.max(1, parseDuration("sampleInterval", sampleInterval)),
        escalate,
    };
}
function min(a, b) {
    return a === undefined ? b : b === undefined ? a : Math.min(a, b);
}
/** Combines the limits of two plugins on one call: the tighter of each wins. */
export function mergeLimits(current, added) {
    if (current === undefined) {
        return added;
    }
    return {
        wallMs: min(current.wallMs, added.wallMs),
        cpuMs: min(current.cpuMs, added.cpuMs),
        memoryBytes: min(current.memoryBytes, added.memoryBytes),
        memoryKind: current.memoryKind === "rss" || added.memoryKind === "rss" ? "rss" : current.memoryKind === "heap" || added.memoryKind === "heap" ? "heap" : "auto",
        graceMs: Math.max(current.graceMs, added.graceMs),
        sampleMs: Math.min(current.sampleMs, added.sampleMs),
        escalate: current.escalate && added.escalate,
    };
}
/**
 * Puts wall-time, CPU-time and memory limits on every call of the tasks it is given to, and
 * emits an event on the task when one is passed, before the task's `EXCEPTION`.
 *
 * @example
 * const pynisher = new PynisherPlugin({ wallTimeLimit: [5, "m"], memoryLimit: [2, "gb"] });
 * const task = scheduler.task(ref, { plugins: [pynisher] });
 * task.on(pynisher.WALL_TIME_LIMIT_REACHED, (error) => console.log(`Failed with ${error}`));
 */
export class PynisherPlugin {
    /** A wall or CPU time limit was passed: `(error)`. */
    static TIMEOUT = defineEvent("pynisher:timeout");
    /** The wall time limit was passed: `(error)`. */
    static WALL_TIME_LIMIT_REACHED = defineEvent("pynisher:wall-time-limit-reached");
    /** The CPU time limit was passed: `(error)`. */
    static CPU_TIME_LIMIT_REACHED = defineEvent("pynisher:cpu-time-limit-reached");
    /** The memory limit was passed: `(error)`. */
    static MEMORY_LIMIT_REACHED = defineEvent("pynisher:memory-limit-reached");
    TIMEOUT = PynisherPlugin.TIMEOUT;
    WALL_TIME_LIMIT_REACHED = PynisherPlugin.WALL_TIME_LIMIT_REACHED;
    CPU_TIME_LIMIT_REACHED = PynisherPlugin.CPU_TIME_LIMIT_REACHED;
    MEMORY_LIMIT_REACHED = PynisherPlugin.MEMORY_LIMIT_REACHED;
    name = "pynisher";
    events = [PynisherPlugin.TIMEOUT, PynisherPlugin.WALL_TIME_LIMIT_REACHED, PynisherPlugin.CPU_TIME_LIMIT_REACHED, PynisherPlugin.MEMORY_LIMIT_REACHED];
    #limits;
    /**
     * @throws {TypeError} When an option has the wrong type or an unknown unit.
     * @throws {RangeError} When a limit is zero, negative or not finite.
     */
    constructor(options = {}) {
        this.#limits = parseOptions(options);
    }
    /** The limits, in milliseconds and bytes. */
    get limits() {
        return this.#limits;
    }
    preSubmit(call) {
        call.limits = mergeLimits(call.limits, this.#limits);
    }
    settled(_future, outcome, task) {
        if (outcome.kind !== "exception" || !(outcome.error instanceof LimitExceededError)) {
            return;
        }
        const error = outcome.error;
        if (error instanceof WallTimeLimitError && this.#limits.wallMs !== undefined) {
            task.emit(PynisherPlugin.TIMEOUT, error);
            task.emit(PynisherPlugin.WALL_TIME_LIMIT_REACHED, error);
        }
        else if (error instanceof CpuTimeLimitError && this.#limits.cpuMs !== undefined) {
            task.emit(PynisherPlugin.TIMEOUT, error);
            task.emit(PynisherPlugin.CPU_TIME_LIMIT_REACHED, error);
        }
        else if (error instanceof MemoryLimitError && this.#limits.memoryBytes !== undefined) {
            task.emit(PynisherPlugin.MEMORY_LIMIT_REACHED, error);
        }
    }
}
