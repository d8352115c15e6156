import { existsSync } from "node:fs";
import { CancelledError } from "./errors.ts";
import { type Call, Cancellation, EscalationSignal, type Executor, type Limits } from "./executors/executor.ts";
import { ProcessExecutor } from "./executors/processes.ts";
import { SequentialExecutor } from "./executors/sequential.ts";
import { capsHeap, ThreadExecutor } from "./executors/threads.ts";
import type { Future, Outcome } from "./future.ts";
import { Watchdog } from "./pynisher/watchdog.ts";
import type { Task } from "./task.ts";

/** The kind of executor a scheduler was made with. */
export type ExecutorKind = "sequential" | "threads" | "processes";

/** Where the dispatcher reports that a call started and how it ended. */
export interface DispatchSink {
	started(task: Task, future: Future): void;
	settled(task: Task, future: Future, outcome: Outcome): void;
}

/** A handle on a queued call. */
export interface Ticket {
	cancel(reason: CancelledError): void;
}

/** One submitted call, from the queue to its outcome; also its ticket. */
class Entry implements Ticket {
	readonly call: Call;
	readonly task: Task;
	readonly cancellation = new Cancellation();
	readonly #dispatcher: Dispatcher;
	state: "queued" | "running" | "done" = "queued";

	constructor(call: Call, task: Task, dispatcher: Dispatcher) {
		this.call = call;
		this.task = task;
		this.#dispatcher = dispatcher;
	}

	cancel(reason: CancelledError): void {
		this.#dispatcher._cancel(this, reason);
	}
}

/** Whether `--max-old-space-size` is set for the whole process, which overrides every worker's heap cap. */
export function processHeapFlag(): string | undefined {
	const flags = [...process.execArgv, ...(process.env["NODE_OPTIONS"] ?? "").split(/\s+/)];
	return flags.find((flag) => /^--max[-_]old[-_]space[-_]size/.test(flag));
}

const threadCpuReadable =
	existsSync("/proc/thread-self/schedstat") || typeof (process as { threadCpuUsage?: unknown }).threadCpuUsage === "function";

/**
 * Queues calls and runs at most `maxWorkers` at once, on the scheduler's executor or, when a
 * call's limits cannot be enforced there, in a forked process.
 */
export class Dispatcher {
	readonly kind: ExecutorKind;
	readonly maxWorkers: number;
	readonly watchdog = new Watchdog();
	#primary: Executor | undefined;
	#processes: ProcessExecutor | undefined;
	#queue: (Entry | undefined)[] = [];
	#head = 0;
	#queued = 0;
	readonly #running = new Set<Entry>();
	/** Functions whose calls escalated to a process once and go there from now on. */
	readonly #escalated = new Set<string>();
	#warnedHeapFlag = false;
	/** Read once: the process's flags do not change while it runs. */
	readonly #heapFlag = processHeapFlag();
	/** While set, start notices are held back (see `#execute`). */
	#deferStarts: Entry[] | undefined;
	#open = false;
	readonly #sink: DispatchSink;

	constructor(kind: ExecutorKind, maxWorkers: number, sink: DispatchSink) {
		this.kind = kind;
		this.#sink = sink;
		this.maxWorkers = kind === "sequential" ? 1 : maxWorkers;
	}

	/** Calls queued or running. */
	get size(): number {
		return this.#queued + this.#running.size;
	}

	/** Calls running now. */
	get running(): number {
		return this.#running.size;
	}

	/** The thread executor, when this dispatcher has one running. */
	get threads(): ThreadExecutor | undefined {
		return this.#primary instanceof ThreadExecutor ? this.#primary : undefined;
	}

	/** The process executor, when one has been started. */
	get processes(): ProcessExecutor | undefined {
		return this.#processes;
	}

	open(): void {
		if (this.#open) {
			return;
		}
		this.#open = true;
		if (this.kind === "threads") {
			const threads = new ThreadExecutor(this.maxWorkers, this.watchdog);
			threads.warm();
			this.#primary = threads;
		} else if (this.kind === "processes") {
			this.#processes = new ProcessExecutor(this.maxWorkers, this.watchdog);
			this.#processes.warm();
			this.#primary = this.#processes;
		} else {
			this.#primary = new SequentialExecutor();
		}
	}

	/** Queues a call of `task`; the sink hears when it starts and how it ends. */
	submit(call: Call, task: Task): Ticket {
		const entry = new Entry(call, task, this);
		this.#queue.push(entry);
		this.#queued++;
		this.#pump();
		return entry;
	}

	/** @internal Cancels a queued call, or stops a running one. */
	_cancel(entry: Entry, reason: CancelledError): void {
		if (entry.state === "queued") {
			entry.state = "done";
			this.#queued--;
			this.#sink.settled(entry.task, entry.call.future, { kind: "cancelled", error: reason, usage: undefined });
		} else if (entry.state === "running") {
			entry.cancellation.cancel(reason);
		}
	}

	/** Cancels every queued and running call. */
	cancelAll(reason: () => CancelledError): void {
		for (let i = this.#head; i < this.#queue.length; i++) {
			const entry = this.#queue[i];
			if (entry !== undefined && entry.state === "queued") {
				this._cancel(entry, reason());
			}
		}
		for (const entry of [...this.#running]) {
			this._cancel(entry, reason());
		}
	}

	#next(): Entry | undefined {
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

	#pump(): void {
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

	async #execute(entry: Entry, executor: Executor): Promise<void> {
		let outcome: Outcome;
		try {
			outcome = await executor.execute({ call: entry.call, cancellation: entry.cancellation, started: () => this.#started(entry) });
		} catch (error) {
			outcome = { kind: "exception", error, usage: undefined };
		}
		if (outcome.kind === "exception" && isEscalation(outcome.error) && entry.cancellation.reason === undefined) {
			// Its memory outside the heap passed the limit in a thread: run it again in a process.
			this.#escalated.add(refKey(entry.call));
			entry.call.limits = { ...(entry.call.limits as Limits), memoryKind: "rss" };
			void this.#execute(entry, this.#processExecutor());
			return;
		}
		entry.state = "done";
		this.#running.delete(entry);
		// The worker that just finished gets its next call before this call's events run; the next
		// call's start is reported after them, so that no one sees more than maxWorkers running.
		this.#deferStarts = [];
		this.#pump();
		const deferred = this.#deferStarts;
		this.#deferStarts = undefined;
		this.#sink.settled(entry.task, entry.call.future, outcome);
		for (const next of deferred) {
			this.#started(next);
		}
	}

	#started(entry: Entry): void {
		if (this.#deferStarts !== undefined) {
			this.#deferStarts.push(entry);
		} else if (entry.state === "running") {
			this.#sink.started(entry.task, entry.call.future);
		}
	}

	#route(call: Call): Executor {
		const primary = this.#primary as Executor;
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
			const flag = this.#heapFlag;
			if (flag !== undefined) {
				if (!this.#warnedHeapFlag) {
					this.#warnedHeapFlag = true;
					process.emitWarning(
						`${flag} is set for the whole process and overrides the heap cap of worker threads; memory-limited tasks run in processes instead`,
						{ code: "BYOP_HEAP_FLAG" },
					);
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

	#processExecutor(): ProcessExecutor {
		this.#processes ??= new ProcessExecutor(this.maxWorkers, this.watchdog);
		return this.#processes;
	}

	/** Ends every thread and process. Calls still running end as cancelled. */
	async close(): Promise<void> {
		this.#open = false;
		const executors = [this.#primary, this.#processes].filter((executor, i, all) => executor !== undefined && all.indexOf(executor) === i);
		this.#primary = undefined;
		this.#processes = undefined;
		await Promise.all(executors.map((executor) => executor?.close()));
	}
}

function refKey(call: Call): string {
	return `${call.ref.module}#${call.ref.name}`;
}

function isEscalation(error: unknown): boolean {
	return error instanceof EscalationSignal;
}
