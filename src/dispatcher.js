import { existsSync } from "node:fs";
import { CancelledError } from "./errors.js";
import { EscalationSignal } from "./executors/executor.js";
import { ProcessExecutor } from "./executors/processes.js";
import { SequentialExecutor } from "./executors/sequential.js";
import { capsHeap, ThreadExecutor } from "./executors/threads.js";
import { Watchdog } from "./pynisher/watchdog.js";
/** Whether `--max-old-space-size` is set for the whole process, which overrides every worker's heap cap. */
export function processHeapFlag() {
    const flags = [...process.execArgv, ...(process.env["NODE_OPTIONS"] ?? "").split(/\s+/)];
    return flags.find((flag) => /^--max[-_]old[-_]space[-_]size/.test(flag));
}
const threadCpuReadable = existsSync("/proc/thread-self/schedstat") || typeof process.threadCpuUsage === "function";
/**
 * Queues calls and runs at most `maxWorkers` at once, on the scheduler's executor or, when a
 * call's limits cannot be enforced there, in a forked process.
 */
export class Dispatcher {
    kind;
    maxWorkers;
    watchdog = new Watchdog();
    #primary;
    #processes;
    #queue = [];
    #head = 0;
    #queued = 0;
    #running = new Set();
    /** Functions whose calls escalated to a process once and go there from now on. */
    #escalated = new Set();
    #warnedHeapFlag = false;
    #open = false;
    constructor(kind, maxWorkers) {
        this.kind = kind;
        this.maxWorkers = kind === "sequential" ? 1 : maxWorkers;
    }
    /** Calls queued or running. */
    get size() {
        return this.#queued + this.#running.size;
    }
    /** Calls running now. */
    get running() {
        return this.#running.size;
    }
    /** The thread executor, when this dispatcher has one running. */
    get threads() {
        return this.#primary instanceof ThreadExecutor ? this.#primary : undefined;
    }
    /** The process executor, when one has been started. */
    get processes() {
        return this.#processes;
    }
    open() {
        if (this.#open) {
            return;
        }
        this.#open = true;
        if (this.kind === "threads") {
            const threads = new ThreadExecutor(this.maxWorkers, this.watchdog);
            threads.warm();
            this.#primary = threads;
        }
        else if (this.kind === "processes") {
            this.#processes = new ProcessExecutor(this.maxWorkers, this.watchdog);
            this.#processes.warm();
            this.#primary = this.#processes;
        }
        else {
            this.#primary = new SequentialExecutor();
        }
    }
    submit(call, onStart, onOutcome) {
        const entry = { call, abort: new AbortController(), onStart, onOutcome, state: "queued" };
        this.#queue.push(entry);
        this.#queued++;
        this.#pump();
        return { cancel: (reason) => this.#cancel(entry, reason) };
    }
    #cancel(entry, reason) {
        if (entry.state === "queued") {
            entry.state = "done";
            this.#queued--;
            entry.onOutcome({ kind: "cancelled", error: reason, usage: undefined });
        }
        else if (entry.state === "running") {
            entry.abort.abort(reason);
        }
    }
    /** Cancels every queued and running call. */
    cancelAll(reason) {
        for (let i = this.#head; i < this.#queue.length; i++) {
            const entry = this.#queue[i];
            if (entry !== undefined && entry.state === "queued") {
                this.#cancel(entry, reason());
            }
        }
        for (const entry of [...this.#running]) {
            this.#cancel(entry, reason());
        }
    }
    #next() {
        while (this.#head < this.#queue.length) {
            const entry = this.#queue[this.#head];
            this.#queue[this.#head] = undefined;
            this.#head++;
            if (entry !== undefined && entry.state === "queued") {
                return entry;
            }
        }
        if (this.#head > 0) {
            this.#queue = [];
            this.#head = 0;
        }
        return undefined;
    }
    #pump() {
        while (this.#running.size < this.maxWorkers && this.#queued > 0) {
            const entry = this.#next();
            if (entry === undefined) {
                break;
            }
            this.#queued--;
            entry.state = "running";
            this.#running.add(entry);
            void this.#execute(entry, this.#route(entry.call));
        }
        if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
            this.#queue = this.#queue.slice(this.#head);
            this.#head = 0;
        }
    }
    async #execute(entry, executor) {
        let outcome;
        try {
            outcome = await executor.execute({ call: entry.call, signal: entry.abort.signal, started: entry.onStart });
        }
        catch (error) {
            outcome = { kind: "exception", error, usage: undefined };
        }
        if (outcome.kind === "exception" && isEscalation(outcome.error) && !entry.abort.signal.aborted) {
            // Its memory outside the heap passed the limit in a thread: run it again in a process.
            this.#escalated.add(refKey(entry.call));
            entry.call.limits = { ...entry.call.limits, memoryKind: "rss" };
            void this.#execute(entry, this.#processExecutor());
            return;
        }
        entry.state = "done";
        this.#running.delete(entry);
        entry.onOutcome(outcome);
        this.#pump();
    }
    #route(call) {
        const primary = this.#primary;
        const limits = call.limits;
        if (limits === undefined || this.kind === "processes") {
            return primary;
        }
        if (this.kind === "sequential") {
            // A limited call never runs in the main thread.
            return this.#processExecutor();
        }
        if (limits.memoryBytes !== undefined && limits.memoryKind === "rss") {
            return this.#processExecutor();
        }
        if (limits.memoryKind === "auto" && limits.escalate && this.#escalated.has(refKey(call))) {
            call.limits = { ...limits, memoryKind: "rss" };
            return this.#processExecutor();
        }
        if (capsHeap(limits)) {
            const flag = processHeapFlag();
            if (flag !== undefined) {
                if (!this.#warnedHeapFlag) {
                    this.#warnedHeapFlag = true;
                    process.emitWarning(`${flag} is set for the whole process and overrides the heap cap of worker threads; memory-limited tasks run in processes instead`, { code: "BYOP_HEAP_FLAG" });
                }
                call.limits = { ...limits, memoryKind: "rss" };
                return this.#processExecutor();
            }
        }
        if (limits.cpuMs !== undefined && !threadCpuReadable) {
            return this.#processExecutor();
        }
        return primary;
    }
    #processExecutor() {
        this.#processes ??= new ProcessExecutor(this.maxWorkers, this.watchdog);
        return this.#processes;
    }
    /** Ends every thread and process. Calls still running end as cancelled. */
    async close() {
        this.#open = false;
        const executors = [this.#primary, this.#processes].filter((executor, i, all) => executor !== undefined && all.indexOf(executor) === i);
        this.#primary = undefined;
        this.#processes = undefined;
        await Promise.all(executors.map((executor) => executor?.close()));
    }
}
function refKey(call) {
    return `${call.ref.module}#${call.ref.name}`;
}
function isEscalation(error) {
    return error instanceof EscalationSignal;
}
