import { type AnyEventKey, type ArgsOf, Emitter, defineEvent, type EventKey, type Handler } from "./events.ts";
import { CancelledError } from "./errors.ts";
import type { Call } from "./executors/executor.ts";
import { Future, futureControl, type Outcome } from "./future.ts";
import type { Plugin } from "./plugins/plugin.ts";
import { describeRef, type FunctionRef, type ResolvedRef, resolveRef } from "./ref.ts";
import type { Scheduler } from "./scheduler.ts";
import { portOf, type SchedulerPort } from "./scheduler-port.ts";
import { describeExpected } from "./units.ts";

/** What only one call can say, passed to `task.submitWith()`. */
export interface CallOptions {
	/** Aborting it cancels the call, as `future.cancel()` does; the `CancelledError`'s `cause` is the signal's reason. */
	readonly signal?: AbortSignal;
}

/** Options of a task. */
export interface TaskOptions {
	/** Plugins that see, change or veto each call, and may emit their own events on the task. @default [] */
	readonly plugins?: readonly Plugin[];
	/** A name for messages and events. @default the module file and export, e.g. `"jobs.js#train"` */
	readonly name?: string;
	/**
	 * On a remote executor (`Scheduler.withBullMQ`): whether a call whose worker host was lost
	 * mid-call (killed, its machine gone) runs again, once, on another host. Without it such a
	 * call ends with a `HostLostError` and never runs twice. Other executors ignore it. @default false
	 */
	readonly retryOnHostLoss?: boolean;
}

let nextCallId = 1;

/** Set by the class itself, in its static block (see `TaskControl`). */
export let taskControl: TaskControl;

/**
 * A function that a scheduler runs: `submit(...args)` queues one call of it and returns a
 * `Future`. Every submitted future ends in exactly one of `RESULT`, `EXCEPTION`, `CANCELLED`.
 *
 * @example
 * const task = new Task({ module: new URL("./jobs.js", import.meta.url), name: "train" }, scheduler);
 * task.on(Task.RESULT, (future, result) => console.log(result));
 */
export class Task<Args extends unknown[] = unknown[], R = unknown> {
	/** A call was queued: `(future, ...args)`. */
	static readonly SUBMITTED = defineEvent<[Future, ...unknown[]]>("task:submitted");
	/** A call ended, whichever way: `(future)`. */
	static readonly DONE = defineEvent<[Future]>("task:done");
	/** A call returned: `(future, result)`. */
	static readonly RESULT = defineEvent<[Future, unknown]>("task:result");
	/** A call threw, crashed or passed a limit: `(future, error)`. */
	static readonly EXCEPTION = defineEvent<[Future, unknown]>("task:exception");
	/** A call was cancelled: `(future)`. */
	static readonly CANCELLED = defineEvent<[Future]>("task:cancelled");

	readonly SUBMITTED = Task.SUBMITTED;
	readonly DONE = Task.DONE;
	readonly RESULT = Task.RESULT;
	readonly EXCEPTION = Task.EXCEPTION;
	readonly CANCELLED = Task.CANCELLED;

	/** The task's name. */
	readonly name: string;
	/** The function it runs. */
	readonly ref: ResolvedRef;
	/** The scheduler it submits to. */
	readonly scheduler: Scheduler;
	/** Its plugins, in order. */
	readonly plugins: readonly Plugin[];
	/** Whether a call whose remote worker host was lost runs again once on another host (see `TaskOptions.retryOnHostLoss`). */
	readonly retryOnHostLoss: boolean;
	readonly #emitter: Emitter;
	readonly #port: SchedulerPort;
	readonly #running = new Set<Future>();

	constructor(ref: FunctionRef, scheduler: Scheduler, options: TaskOptions = {}) {
		this.ref = resolveRef(ref);
		const port = portOf(scheduler);
		if (port === undefined) {
			throw new TypeError(describeExpected("scheduler", "a Scheduler", scheduler));
		}
		this.scheduler = scheduler;
		this.#port = port;
		if (typeof options !== "object" || options === null) {
			throw new TypeError(describeExpected("options", "an object", options));
		}
		const { plugins = [], name, retryOnHostLoss = false } = options;
		if (typeof retryOnHostLoss !== "boolean") {
			throw new TypeError(describeExpected("retryOnHostLoss", "a boolean", retryOnHostLoss));
		}
		this.retryOnHostLoss = retryOnHostLoss;
		if (!Array.isArray(plugins)) {
			throw new TypeError(describeExpected("plugins", "an array of plugins", plugins));
		}
		for (const [index, plugin] of plugins.entries()) {
			if (typeof plugin !== "object" || plugin === null || typeof (plugin as Plugin).name !== "string") {
				throw new TypeError(describeExpected(`plugins[${index}]`, "a plugin (an object with a `name`)", plugin));
			}
		}
		if (name !== undefined && (typeof name !== "string" || name === "")) {
			throw new TypeError(describeExpected("name", "a non-empty string", name));
		}
		this.name = name ?? describeRef(this.ref);
		this.plugins = [...plugins];
		this.#emitter = new Emitter((error, event) => port.handlerError(error, event));
		for (const plugin of this.plugins) {
			plugin.attach?.(this);
		}
	}

	/** The futures of this task that are queued or running. */
	get running(): readonly Future<R>[] {
		return [...this.#running] as Future<R>[];
	}

	/** Subscribes to one of the task's events, or a plugin's; returns a function that unsubscribes. */
	on<K extends AnyEventKey>(event: K, handler: Handler<ArgsOf<K>>): () => void {
		return this.#emitter.on(event, handler);
	}

	/** Unsubscribes a handler. */
	off<K extends AnyEventKey>(event: K, handler: Handler<ArgsOf<K>>): void {
		this.#emitter.off(event, handler);
	}

	/** Emits an event on this task. Plugins use it for their own events. */
	emit<E extends unknown[]>(event: EventKey<E>, ...args: E): void {
		this.#emitter.emit(event, ...args);
	}

	/**
	 * Queues one call with `args`. Returns its `Future`, or `undefined` when a plugin vetoed it or
	 * the scheduler's run is ending.
	 *
	 * @throws {SchedulerStateError} When the scheduler is not running.
	 */
	submit(...args: Args): Future<R> | undefined {
		return this.#submit(undefined, args);
	}

	/**
	 * Queues one call with `args`, with options that only this call has: aborting `signal`
	 * cancels the call like `future.cancel()`.
	 *
	 * @example
	 * const future = task.submitWith({ signal: AbortSignal.timeout(5000) }, data);
	 * @throws {SchedulerStateError} When the scheduler is not running.
	 * @throws {TypeError} When `options.signal` is not an `AbortSignal`.
	 */
	submitWith(options: CallOptions, ...args: Args): Future<R> | undefined {
		if (typeof options !== "object" || options === null) {
			throw new TypeError(describeExpected("options", "an object", options));
		}
		if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
			throw new TypeError(describeExpected("signal", "an AbortSignal", options.signal));
		}
		return this.#submit(options.signal, args);
	}

	#submit(signal: AbortSignal | undefined, args: Args): Future<R> | undefined {
		this.#port.assertAccepting();
		if (!this.#port.accepting()) {
			return undefined;
		}
		const future = new Future<R>(this.name, args);
		const call: Call = { id: nextCallId++, ref: this.ref, args, limits: undefined, taskName: this.name, future: future as Future, retryOnHostLoss: this.retryOnHostLoss };
		for (const plugin of this.plugins) {
			if (plugin.preSubmit?.(call, this as Task) === false) {
				return undefined;
			}
		}
		this.#running.add(future as Future);
		this.#emitter.emit(Task.SUBMITTED, future as Future, ...call.args);
		this.#port.submit(call, this as Task);
		if (signal !== undefined) {
			cancelOnAbort(future as Future, signal);
		}
		return future;
	}

	static {
		taskControl = {
			started: (task, future) => {
				futureControl.start(future);
				for (const plugin of task.plugins) {
					plugin.started?.(future, task);
				}
			},
			settled: (task, future, outcome) => {
				task.#running.delete(future);
				futureControl.settle(future, outcome);
				for (const plugin of task.plugins) {
					try {
						plugin.settled?.(future, outcome, task);
					} catch (error) {
						task.#port.handlerError(error, `${plugin.name}.settled`);
					}
				}
				task.#emitter.emit(Task.DONE, future);
				if (outcome.kind === "result") {
					task.#emitter.emit(Task.RESULT, future, outcome.value);
				} else if (outcome.kind === "exception") {
					task.#emitter.emit(Task.EXCEPTION, future, outcome.error);
				} else {
					task.#emitter.emit(Task.CANCELLED, future);
				}
			},
		};
	}
}

/** Cancels `future`'s call when `signal` aborts, until the future ends. */
function cancelOnAbort(future: Future, signal: AbortSignal): void {
	const cancel = (): void => {
		futureControl.cancel(future, new CancelledError("The call's signal was aborted", { cause: signal.reason }));
	};
	if (signal.aborted) {
		cancel();
		return;
	}
	signal.addEventListener("abort", cancel, { once: true });
	void future.then(
		() => signal.removeEventListener("abort", cancel),
		() => signal.removeEventListener("abort", cancel),
	);
}

/** What the scheduler tells a task of its calls: the private seam, not exported by the package. */
export interface TaskControl {
	/** A call of the task started running. */
	started(task: Task, future: Future): void;
	/** A call of the task ended; the task's events follow its plugins'. */
	settled(task: Task, future: Future, outcome: Outcome): void;
}
