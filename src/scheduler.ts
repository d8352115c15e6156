import { CancelledError, SchedulerStateError } from "./errors.ts";
import { type AnyEventKey, type ArgsOf, Emitter, type Handler } from "./events.ts";
import { Dispatcher, type ExecutorKind } from "./executors/dispatcher.ts";
import type { Call } from "./executors/executor.ts";
import { type Future, futureControl, type Outcome } from "./future.ts";
import type { FunctionRef } from "./ref.ts";
import { type Ending, type ExceptionAction, type ExitState, exceptionAction, type FilledRunOptions, laterEnding, parseRunOptions, type RunOptions } from "./run-options.ts";
import { SchedulerEvents } from "./scheduler-events.ts";
import { openPort } from "./scheduler-port.ts";
import { Task, taskControl, type TaskOptions } from "./task.ts";
import { exposeForTests } from "./test-hooks.ts";
import { TimerSet } from "./timer-set.ts";
import { describeExpected, type Duration, parseDuration } from "./units.ts";
import { parsePoolOptions, type PoolOptions } from "./pool-options.ts";
import { type BullMQOptions, parseBullMQOptions } from "./executors/bullmq/options.ts";

export type { PoolOptions, BullMQOptions };

/**
 * Runs tasks on an executor (the main thread, a worker-thread pool, or a pool of processes) and
 * emits events as they go.
 *
 * @example
 * const scheduler = Scheduler.withThreads({ maxWorkers: 2 });
 * scheduler.on(Scheduler.STARTED, () => task.submit(42));
 * const exit = await scheduler.run({ timeout: "1h" });
 */
export class Scheduler extends SchedulerEvents {
	readonly #dispatcher: Dispatcher<Task>;
	readonly #emitter: Emitter;
	#state: "idle" | "running" | "finishing" = "idle";
	#options: FilledRunOptions | undefined;
	#ending: Ending | undefined;
	#endRun: ((ending: Ending) => void) | undefined;
	#drainWaiters: (() => void)[] = [];
	readonly #timers = new TimerSet();

	/** Use `Scheduler.withSequential()`, `withThreads()`, `withProcesses()` or `withBullMQ()`. */
	constructor(executor: ExecutorKind, options: PoolOptions | BullMQOptions = {}) {
		super();
		const sink = {
			started: (task: Task, call: Call) => taskControl.started(task, call.future),
			settled: (task: Task, call: Call, outcome: Outcome) => this.#settled(task, call.future, outcome),
		};
		if (executor === "bullmq") {
			const remote = parseBullMQOptions(options);
			this.#dispatcher = new Dispatcher<Task>("bullmq", remote.maxWorkers, sink, 0, "none", remote);
		} else {
			const pool = parsePoolOptions(executor, options);
			this.#dispatcher = new Dispatcher<Task>(pool.executor, pool.maxWorkers, sink, pool.minWorkers, pool.isolate);
		}
		this.#emitter = new Emitter((error, event) => this.#handlerError(error, event));
		openPort(this, {
			assertAccepting: () => this.#assertAccepting(),
			accepting: () => this.#state === "running",
			submit: (call, task) => this.#submit(call, task),
			handlerError: (error, event) => this.#handlerError(error, event),
		});
		exposeForTests(this, { dispatcher: () => this.#dispatcher });
	}

	/** Runs each call in the main thread, one at a time. Calls with limits run in a forked process. */
	static withSequential(): Scheduler {
		return new Scheduler("sequential");
	}

	/** Runs calls on a piscina pool of worker threads. */
	static withThreads(options: PoolOptions = {}): Scheduler {
		return new Scheduler("threads", options);
	}

	/** Runs calls in a pool of forked Node processes, kept warm and reused. */
	static withProcesses(options: PoolOptions = {}): Scheduler {
		return new Scheduler("processes", options);
	}

	/**
	 * Sends each call as a BullMQ job to the worker hosts that take jobs from `queueName`
	 * (`byop worker --redis <url> --queue <name>`). Tasks, plugins, limits, events, futures and
	 * usage work as they do locally; each call runs on a host's own executor under its limits.
	 * BullMQ and ioredis are loaded when the first call is sent. Nothing connects before.
	 *
	 * @example
	 * const scheduler = Scheduler.withBullMQ({ connection: "redis://127.0.0.1:6379", queueName: "jobs" });
	 * @throws {TypeError} When an option has the wrong type (a password in it is masked).
	 * @throws {RangeError} When `maxWorkers` is not a positive integer or a port is out of range.
	 */
	static withBullMQ(options: BullMQOptions): Scheduler {
		return new Scheduler("bullmq", options);
	}

	/** The executor calls run on. */
	get executor(): ExecutorKind {
		return this.#dispatcher.kind;
	}

	/** How many calls run at once. */
	get maxWorkers(): number {
		return this.#dispatcher.maxWorkers;
	}

	/** Whether a run is under way (including while it finishes). */
	get running(): boolean {
		return this.#state !== "idle";
	}

	/** Calls queued or running now. */
	get pending(): number {
		return this.#dispatcher.size;
	}

	/** Creates a task that submits to this scheduler. */
	task<Args extends unknown[] = unknown[], R = unknown>(ref: FunctionRef, options: TaskOptions = {}): Task<Args, R> {
		return new Task<Args, R>(ref, this, options);
	}

	/** Subscribes to a scheduler event; returns a function that unsubscribes. */
	on<K extends AnyEventKey>(event: K, handler: Handler<ArgsOf<K>>): () => void {
		return this.#emitter.on(event, handler);
	}

	/** Unsubscribes a handler. */
	off<K extends AnyEventKey>(event: K, handler: Handler<ArgsOf<K>>): void {
		this.#emitter.off(event, handler);
	}

	/**
	 * Runs until the queue is empty (`endOnEmpty`), the `timeout` passes, `stop()` is called, or
	 * the exception policy ends it. Resolves to the exit state; rejects with the error when the
	 * policy is `"raise"`, after shutting down.
	 */
	async run(options: RunOptions = {}): Promise<ExitState> {
		const filled = parseRunOptions(options);
		if (this.#state !== "idle") {
			throw new SchedulerStateError("The scheduler is already running");
		}
		this.#options = filled;
		this.#ending = undefined;
		const ended = new Promise<Ending>((resolve) => {
			this.#endRun = resolve;
		});
		this.#state = "running";
		// A run keeps the process alive until it ends, whatever its calls are waiting on.
		const keepAlive = setInterval(() => {}, 1 << 30);
		this.#dispatcher.open();
		if (filled.timeoutMs !== undefined) {
			this.#timers.after(filled.timeoutMs, () => {
				if (this.#end({ code: "timeout", raise: false })) {
					this.#emitter.emit(Scheduler.TIMEOUT);
				}
			});
		}
		this.#emitter.emit(Scheduler.STARTED);
		this.#checkEmpty();
		const ending = await ended;
		this.#state = "finishing";
		this.#timers.clear();
		this.#emitter.emit(Scheduler.FINISHING);
		if (!filled.wait) {
			this.#dispatcher.cancelAll(() => new CancelledError("The run ended before the task finished"));
		}
		if (this.#dispatcher.size > 0) {
			await new Promise<void>((resolve) => this.#drainWaiters.push(resolve));
		}
		try {
			await this.#dispatcher.close();
		} catch (error) {
			this.#state = "idle";
			this.#endRun = undefined;
			throw error;
		} finally {
			clearInterval(keepAlive);
		}
		const final = this.#ending ?? ending;
		const exit: ExitState = final.exception === undefined ? { code: final.code } : { code: final.code, exception: final.exception };
		this.#emitter.emit(Scheduler.FINISHED, exit);
		this.#state = "idle";
		this.#endRun = undefined;
		if (final.raise) {
			throw final.exception;
		}
		return exit;
	}

	/** Ends the run with code `"stopped"`; what is running is waited for or cancelled as `run({ wait })` says. */
	stop(reason = "stop() was called"): void {
		if (this.#state === "running" && this.#end({ code: "stopped", raise: false })) {
			this.#emitter.emit(Scheduler.STOP, reason, undefined);
		}
	}

	/**
	 * Calls `fn` after `delay` while the run lasts. A pending call keeps an `endOnEmpty` run
	 * going. Returns a function that cancels it.
	 */
	callLater(delay: Duration, fn: () => unknown): () => void {
		const ms = parseDuration("delay", delay);
		if (typeof fn !== "function") {
			throw new TypeError(describeExpected("fn", "a function", fn));
		}
		this.#assertAccepting();
		const cancel = this.#timers.after(ms, () => {
			try {
				const returned = fn();
				if (returned instanceof Promise) {
					returned.catch((error: unknown) => this.#handlerError(error, "callLater"));
				}
			} catch (error) {
				this.#handlerError(error, "callLater");
			}
			this.#checkEmpty();
		});
		return () => {
			cancel();
			this.#checkEmpty();
		};
	}

	/** Ends the run with `ending` unless it is already ending; returns whether it did. */
	#end(ending: Ending): boolean {
		if (this.#ending !== undefined || this.#endRun === undefined || this.#state !== "running") {
			return false;
		}
		this.#ending = ending;
		this.#endRun(ending);
		return true;
	}

	#checkEmpty(): void {
		if (this.#state !== "running" || this.#dispatcher.size > 0) {
			return;
		}
		this.#emitter.emit(Scheduler.EMPTY);
		// A pending callLater keeps an endOnEmpty run alone (the timeout timer does not count).
		const scheduled = this.#timers.size - (this.#options?.timeoutMs === undefined ? 0 : 1);
		if (this.#options?.endOnEmpty && this.#dispatcher.size === 0 && scheduled <= 0) {
			this.#end({ code: "exhausted", raise: false });
		}
	}

	#assertAccepting(): void {
		if (this.#state === "idle") {
			throw new SchedulerStateError("Cannot submit: the scheduler is not running; call task.submit() from a Scheduler.STARTED handler or while run() is under way");
		}
	}

	#submit(call: Call, task: Task): void {
		const future = call.future;
		futureControl.bind(future, this.#dispatcher.submit(call, task));
		this.#emitter.emit(Scheduler.FUTURE_SUBMITTED, future);
	}

	#settled(task: Task, future: Future, outcome: Outcome): void {
		taskControl.settled(task, future, outcome);
		this.#emitter.emit(Scheduler.FUTURE_DONE, future);
		if (outcome.kind === "result") {
			this.#emitter.emit(Scheduler.FUTURE_RESULT, future, outcome.value);
		} else if (outcome.kind === "exception") {
			this.#emitter.emit(Scheduler.FUTURE_EXCEPTION, future, outcome.error);
			this.#apply(exceptionAction(this.#options?.onException ?? "raise", outcome.error), "exception", outcome.error, `${future.taskName} raised an exception`);
		} else {
			this.#emitter.emit(Scheduler.FUTURE_CANCELLED, future);
			// Cancellations made by the run's own ending are not a reason to raise.
			if (this.#state === "running") {
				this.#apply(this.#options?.onCancelled ?? "raise", "cancelled", outcome.error, `${future.taskName} was cancelled`);
			}
		}
		futureControl.release(future);
		if (this.#dispatcher.size === 0 && this.#drainWaiters.length > 0) {
			for (const resolve of this.#drainWaiters.splice(0)) {
				resolve();
			}
		}
		this.#checkEmpty();
	}

	#apply(action: ExceptionAction, code: "exception" | "cancelled", error: unknown, reason: string): void {
		if (action === "continue") {
			return;
		}
		const raise = action === "raise";
		if (this.#state === "running" && this.#ending === undefined) {
			if (this.#end({ code, exception: error, raise })) {
				this.#emitter.emit(Scheduler.STOP, reason, error);
			}
			return;
		}
		if (this.#ending !== undefined) {
			this.#ending = laterEnding(this.#ending, { code, exception: error, raise });
		}
	}

	/** An event handler, a plugin hook or a callLater function threw. */
	#handlerError(error: unknown, event: string): void {
		if (this.#state === "idle") {
			process.emitWarning(`A handler of "${event}" failed after the run ended: ${error instanceof Error ? error.message : String(error)}`, {
				code: "BYOP_HANDLER_ERROR",
			});
			return;
		}
		this.#apply(exceptionAction(this.#options?.onException ?? "raise", error), "exception", error, `A handler of "${event}" threw`);
	}
}
