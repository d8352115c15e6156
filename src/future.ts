import { CancelledError } from "./errors.ts";

/** Where a call ran: the main thread, a worker thread or a forked process. */
export type Where = "main" | "thread" | "process";

/** What a finished call used, as measured while it ran. */
export interface Usage {
	/** Wall time from the moment the call started running (queue wait excluded), in milliseconds. */
	readonly wallMs: number;
	/** CPU time of the thread or process that ran the call, in milliseconds (-1 where it cannot be read). */
	readonly cpuMs: number;
	/** The highest memory seen: heap + external in a thread or the main thread, resident memory in a process, in bytes. */
	readonly peakMemoryBytes: number;
	/** Where the call finally ran (on a worker host, for a remote call: see `host`). */
	readonly where: Where;
	/** The worker host that ran a remote call (`Scheduler.withBullMQ`): its `--name`, by default `hostname:pid`. Set only for remote calls. */
	readonly host?: string;
}

/** The state of a future. */
export type FutureState = "queued" | "running" | "result" | "exception" | "cancelled";

let nextId = 1;

/** Set by the class itself, in its static block (see `FutureControl`). */
export let futureControl: FutureControl;

/**
 * An awaitable handle on one submitted call. `await future` gives the result, or throws the
 * task's error (a `CancelledError` when it was cancelled).
 */
export class Future<R = unknown> implements PromiseLike<R> {
	/** A unique id. */
	readonly id = nextId++;
	/** The arguments of the call. */
	readonly args: readonly unknown[];
	/** The name of the task that submitted it. */
	readonly taskName: string;
	#state: FutureState = "queued";
	#value: R | undefined;
	#error: unknown;
	#usage: Usage | undefined;
	#canceller: { cancel(reason: CancelledError): void } | undefined;
	/** Made when the future is first awaited: most futures of a large batch never are. */
	#promise: Promise<R> | undefined;
	#resolve: ((value: unknown) => void) | undefined;
	#reject: ((error: unknown) => void) | undefined;
	#released = false;

	/** @internal Futures are made by `task.submit()`. */
	constructor(taskName: string, args: readonly unknown[]) {
		this.taskName = taskName;
		this.args = args;
	}

	#settled(): Promise<R> {
		if (this.#promise === undefined) {
			if (this.#released) {
				this.#promise = this.#state === "result" ? Promise.resolve(this.#value as R) : Promise.reject(this.#error);
			} else {
				this.#promise = new Promise<R>((resolve, reject) => {
					this.#resolve = resolve as (value: unknown) => void;
					this.#reject = reject;
				});
			}
			// Awaiting is optional: an exception reaches the task's events either way.
			this.#promise.catch(() => {});
		}
		return this.#promise;
	}

	/** `"queued"`, `"running"`, or how it ended. */
	get state(): FutureState {
		return this.#state;
	}

	/** Whether it has ended, in a result, an exception or a cancellation. */
	get done(): boolean {
		return this.#state === "result" || this.#state === "exception" || this.#state === "cancelled";
	}

	/** Whether it was cancelled. */
	get cancelled(): boolean {
		return this.#state === "cancelled";
	}

	/** Whether it is running now. */
	get running(): boolean {
		return this.#state === "running";
	}

	/** The result, once it ended in one. */
	get result(): R | undefined {
		return this.#value;
	}

	/** The error, once it ended in one (the `CancelledError` when cancelled). */
	get exception(): unknown {
		return this.#error;
	}

	/** What the call used, once it finished; `undefined` before, or when it never started. */
	get usage(): Usage | undefined {
		return this.#usage;
	}

	/**
	 * Cancels the call: a queued call is removed from the queue, a running one is stopped (its
	 * thread is terminated and replaced, its process killed). Returns `false` when it had already ended.
	 */
	cancel(reason = "The task was cancelled"): boolean {
		return this.#cancel(new CancelledError(reason));
	}

	#cancel(reason: CancelledError): boolean {
		if (this.done) {
			return false;
		}
		this.#canceller?.cancel(reason);
		return true;
	}

	then<A = R, B = never>(onResult?: ((value: R) => A | PromiseLike<A>) | null, onError?: ((error: unknown) => B | PromiseLike<B>) | null): Promise<A | B> {
		return this.#settled().then(onResult, onError);
	}

	catch<B = never>(onError?: ((error: unknown) => B | PromiseLike<B>) | null): Promise<R | B> {
		return this.#settled().catch(onError);
	}

	finally(onFinally?: (() => void) | null): Promise<R> {
		return this.#settled().finally(onFinally);
	}

	static {
		futureControl = {
			bind: (future, canceller) => {
				future.#canceller = canceller;
			},
			cancel: (future, reason) => future.#cancel(reason),
			start: (future) => {
				if (future.#state === "queued") {
					future.#state = "running";
				}
			},
			settle: (future, outcome) => {
				future.#usage = outcome.usage;
				if (outcome.kind === "result") {
					future.#state = "result";
					future.#value = outcome.value;
				} else {
					future.#state = outcome.kind;
					future.#error = outcome.error;
				}
			},
			release: (future) => {
				future.#released = true;
				if (future.#state === "result") {
					future.#resolve?.(future.#value);
				} else {
					future.#reject?.(future.#error);
				}
			},
		};
	}
}

/** The scheduler's and the task's hold on a future: the private seam, not exported by the package. */
export interface FutureControl {
	/** Gives the future what cancels its call. */
	bind(future: Future, canceller: { cancel(reason: CancelledError): void }): void;
	/** Cancels its call with `reason`, as `future.cancel()` does; `false` when it had ended. */
	cancel(future: Future, reason: CancelledError): boolean;
	/** Its call started running. */
	start(future: Future): void;
	/** Records how it ended; its promise settles in `release`, after the events. */
	settle(future: Future, outcome: Outcome): void;
	release(future: Future): void;
}



/** How a call ended, as an executor reports it. */
export type Outcome<R = unknown> =
	| { readonly kind: "result"; readonly value: R; readonly usage: Usage | undefined }
	| { readonly kind: "exception"; readonly error: unknown; readonly usage: Usage | undefined }
	| { readonly kind: "cancelled"; readonly error: CancelledError; readonly usage: Usage | undefined };
