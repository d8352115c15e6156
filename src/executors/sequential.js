import { closeSync } from "node:fs";
import { openOwnSchedstat, readSchedstat } from "../control.js";
import { CancelledError } from "../errors.js";
import { HeapSampler, invoke } from "../invoke.js";
/**
 * Runs calls one at a time in the main thread. A call that is cancelled while it runs cannot be
 * interrupted: its signal aborts and its result is dropped. Calls with limits never run here;
 * the scheduler sends them to a process.
 */
export class SequentialExecutor {
    where = "main";
    #schedstat = -2;
    #cpuNs() {
        if (this.#schedstat === -2) {
            this.#schedstat = openOwnSchedstat();
        }
        if (this.#schedstat >= 0) {
            return readSchedstat(this.#schedstat);
        }
        const usage = process.cpuUsage();
        return (usage.user + usage.system) * 1000;
    }
    async execute(execution) {
        const { call, signal } = execution;
        if (signal.aborted) {
            return { kind: "cancelled", error: cancelReason(signal), usage: undefined };
        }
        execution.started();
        const startCpu = this.#cpuNs();
        const started = performance.now();
        const sampler = new HeapSampler();
        const cancelled = new Promise((resolve) => signal.addEventListener("abort", () => resolve("cancelled"), { once: true }));
        const result = await Promise.race([invoke(call.ref, call.args, call.id, signal, sampler, false), cancelled]);
        const usage = {
            wallMs: performance.now() - started,
            cpuMs: (this.#cpuNs() - startCpu) / 1e6,
            peakMemoryBytes: sampler.stop(),
            where: "main",
        };
        if (result === "cancelled" || signal.aborted) {
            return { kind: "cancelled", error: cancelReason(signal), usage };
        }
        return result.ok ? { kind: "result", value: result.value, usage } : { kind: "exception", error: result.error, usage };
    }
    async close() {
        if (this.#schedstat >= 0) {
            closeSync(this.#schedstat);
        }
        this.#schedstat = -2;
    }
}
function cancelReason(signal) {
    return signal.reason instanceof CancelledError ? signal.reason : new CancelledError();
}
