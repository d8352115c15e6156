import { CancelledError } from "../errors.ts";
import type { Outcome } from "../future.ts";
import type { Watchers } from "../limits/monitor.ts";
import { OffHeapWatch } from "../limits/off-heap.ts";
import { Placer } from "../limits/placement.ts";
import type { Isolation } from "../pool-options.ts";
import { Watchdog } from "../limits/watchdog.ts";
import { exposeForTests } from "../test-hooks.ts";
import { type Call, Cancellation, type Executor, type Settled } from "./executor.ts";
import { BullMQExecutor } from "./bullmq/executor.ts";
import type { BullMQSettings } from "./bullmq/options.ts";
import { ProcessExecutor } from "./processes/executor.ts";
import { SequentialExecutor } from "./sequential.ts";
import { ThreadExecutor } from "./threads/executor.ts";

/** The kind of executor a scheduler was made with. */
export type ExecutorKind = "sequential" | "threads" | "processes" | "bullmq";

/** Where the dispatcher reports that a call started and how it ended; `owner` is what submitted it. */
export interface DispatchSink<Owner> {
	started(owner: Owner, call: Call): void;
	settled(owner: Owner, call: Call, outcome: Outcome): void;
}

/** A handle on a queued call. */
export interface Ticket {
	cancel(reason: CancelledError): void;
}

/** One submitted call, from the queue to its outcome; also its ticket. */
class Entry<Owner> implements Ticket {
	readonly call: Call;
	readonly owner: Owner;
	readonly cancellation = new Cancellation();
	readonly #cancel: (entry: Entry<Owner>, reason: CancelledError) => void;
	state: "queued" | "running" | "done" = "queued";

	constructor(call: Call, owner: Owner, cancel: (entry: Entry<Owner>, reason: CancelledError) => void) {
		this.call = call;
		this.owner = owner;
		this.#cancel = cancel;
	}

	cancel(reason: CancelledError): void {
		this.#cancel(this, reason);
	}
}

/**
 * Queues calls and runs at most `maxWorkers` at once, on the scheduler's executor or, when a
 * call's limits cannot be enforced there (see `Placer`), in a forked process.
 */
export class Dispatcher<Owner> {
	readonly kind: ExecutorKind;
	readonly maxWorkers: number;
	readonly #watchers: Watchers;
	readonly #placer: Placer;
	#primary: Executor | undefined;
	#processes: ProcessExecutor | undefined;
	#queue: (Entry<Owner> | undefined)[] = [];
	#head = 0;
	#queued = 0;
	readonly #running = new Set<Entry<Owner>>();
	/** While set, start notices are held back (see `#execute`). */
	#deferStarts: Entry<Owner>[] | undefined;
	#open = false;
	readonly #sink: DispatchSink<Owner>;
	readonly #cancel = (entry: Entry<Owner>, reason: CancelledError): void => this.#cancelEntry(entry, reason);

	readonly #minWorkers: number;
	readonly #isolate: Isolation;
	readonly #remote: BullMQSettings | undefined;

	/**
	 * `minWorkers` threads start when it opens; `isolate` says whether a thread or process runs
	 * more than one call (see `PoolOptions`); `remote` is where a `"bullmq"` dispatcher sends its calls.
	 */
	constructor(kind: ExecutorKind, maxWorkers: number, sink: DispatchSink<Owner>, minWorkers = 0, isolate: Isolation = "none", remote?: BullMQSettings) {
		if (kind === "bullmq" && remote === undefined) {
			throw new TypeError("A bullmq dispatcher needs its queue's settings");
		}
		this.kind = kind;
		this.#remote = remote;
		this.#minWorkers = minWorkers;
		this.#isolate = isolate;
		this.#sink = sink;
		this.maxWorkers = kind === "sequential" ? 1 : maxWorkers;
		const watchdog = new Watchdog();
		this.#watchers = { watchdog, offHeap: new OffHeapWatch(watchdog) };
		this.#placer = new Placer(kind);
		exposeForTests(this, {
			watchdog: () => watchdog,
			threads: () => (this.#primary instanceof ThreadExecutor ? this.#primary : undefined),
			processes: () => this.#processes,
		});
	}

	/** Calls queued or running. */
	get size(): number {
		return this.#queued + this.#running.size;
	}

	/** Starts the executor's threads or processes, so that the first calls do not wait for them. */
	open(): void {
		if (this.#open) {
			return;
		}
		this.#open = true;
		if (this.kind === "threads") {
			const threads = new ThreadExecutor(this.maxWorkers, this.#watchers, this.#isolate);
			threads.warm(this.#minWorkers);
			this.#primary = threads;
		} else if (this.kind === "bullmq") {
			// Limits are enforced on the hosts, which place each call themselves.
			this.#primary = new BullMQExecutor(this.#remote as BullMQSettings);
		} else if (this.kind === "processes") {
			this.#processes = new ProcessExecutor(this.maxWorkers, this.#watchers, this.#isolate);
			this.#processes.warm();
			this.#primary = this.#processes;
		} else {
			this.#primary = new SequentialExecutor(this.#watchers);
		}
	}

	/** Queues a call; the sink hears when it starts and how it ends. */
	submit(call: Call, owner: Owner): Ticket {
		const entry = new Entry(call, owner, this.#cancel);
		this.#queue.push(entry);
		this.#queued++;
		this.#pump();
		return entry;
	}

	/** Cancels a queued call, or stops a running one. */
	#cancelEntry(entry: Entry<Owner>, reason: CancelledError): void {
		if (entry.state === "queued") {
			entry.state = "done";
			this.#queued--;
			this.#sink.settled(entry.owner, entry.call, { kind: "cancelled", error: reason, usage: undefined });
		} else if (entry.state === "running") {
			entry.cancellation.cancel(reason);
		}
	}

	/** Cancels every queued and running call. */
	cancelAll(reason: () => CancelledError): void {
		for (let i = this.#head; i < this.#queue.length; i++) {
			const entry = this.#queue[i];
			if (entry !== undefined && entry.state === "queued") {
				this.#cancelEntry(entry, reason());
			}
		}
		for (const entry of [...this.#running]) {
			this.#cancelEntry(entry, reason());
		}
	}

	#next(): Entry<Owner> | undefined {
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
			void this.#execute(entry, this.#place(entry.call));
		}
		if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
			this.#queue = this.#queue.slice(this.#head);
			this.#head = 0;
		}
	}

	async #execute(entry: Entry<Owner>, executor: Executor): Promise<void> {
		let settled: Settled;
		try {
			settled = await executor.execute({ call: entry.call, cancellation: entry.cancellation, started: () => this.#started(entry) });
		} catch (error) {
			settled = { kind: "exception", error, usage: undefined };
		}
		if (settled.kind === "escalate") {
			// Its thread could not hold it to its memory limit: run it again in a process, unless it
			// was cancelled while it moved (the process executor also checks, as it starts the call)
			// or the dispatcher closed meanwhile (a process executor made now would never be closed).
			const call = entry.call;
			call.limits = call.limits === undefined ? undefined : this.#placer.escalate(refKey(call), call.limits, settled.escalation);
			const cancelled = entry.cancellation.reason ?? (this.#open ? undefined : new CancelledError("The executor closed while the call moved to a process"));
			if (cancelled === undefined) {
				void this.#execute(entry, this.#processExecutor());
				return;
			}
			settled = { kind: "cancelled", error: cancelled, usage: settled.usage };
		}
		entry.state = "done";
		this.#running.delete(entry);
		// The worker that just finished gets its next call before this call's events run; the next
		// call's start is reported after them, so that no one sees more than maxWorkers running.
		this.#deferStarts = [];
		this.#pump();
		const deferred = this.#deferStarts;
		this.#deferStarts = undefined;
		this.#sink.settled(entry.owner, entry.call, settled);
		for (const next of deferred) {
			this.#started(next);
		}
	}

	#started(entry: Entry<Owner>): void {
		if (this.#deferStarts !== undefined) {
			this.#deferStarts.push(entry);
		} else if (entry.state === "running") {
			this.#sink.started(entry.owner, entry.call);
		}
	}

	#place(call: Call): Executor {
		const { placement, limits } = this.#placer.place(refKey(call), call.limits);
		call.limits = limits;
		return placement === "process" ? this.#processExecutor() : (this.#primary as Executor);
	}

	#processExecutor(): ProcessExecutor {
		this.#processes ??= new ProcessExecutor(this.maxWorkers, this.#watchers, this.#isolate);
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
