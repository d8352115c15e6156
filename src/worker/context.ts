import { AsyncLocalStorage } from "node:async_hooks";
import type { TaskComm } from "./comm.ts";

/** The key of a context's channel: the same for every copy of this module. */
export const COMM: unique symbol = Symbol.for("byop.comm");

/** What a running task can learn about its own call. */
export interface CallContext {
	/** The call's id, unique within its scheduler. */
	readonly id: number;
	/**
	 * Aborted when the call is being stopped: cancelled, or past one of its limits. The reason is
	 * the `CancelledError` or the limit's error. The task has its plugin's `gracePeriod` to end.
	 */
	readonly signal: AbortSignal;
}

const KEY = Symbol.for("byop.callContext");
type Global = typeof globalThis & { [KEY]?: AsyncLocalStorage<CallContext> };

/** One store per thread, shared by every copy of this module loaded in it. */
export function contextStorage(): AsyncLocalStorage<CallContext> {
	const global = globalThis as Global;
	global[KEY] ??= new AsyncLocalStorage<CallContext>();
	return global[KEY];
}

const NEVER = new AbortController().signal;

/**
 * The context of one call where it runs. Its `AbortSignal` is made only when the task asks for
 * it: most calls never do, and an `AbortController` per call is a cost every call would pay.
 */
export class CallControl implements CallContext {
	readonly id: number;
	/** The call's channel to the main side, for a task with a `CommPlugin` (see `comm.ts`). */
	[COMM]: TaskComm | undefined;
	#controller: AbortController | undefined;
	#reason: unknown;
	#aborted = false;

	constructor(id: number, comm?: TaskComm) {
		this.id = id;
		this[COMM] = comm;
	}

	get signal(): AbortSignal {
		if (this.#controller === undefined) {
			this.#controller = new AbortController();
			if (this.#aborted) {
				this.#controller.abort(this.#reason);
			}
		}
		return this.#controller.signal;
	}

	/** Aborts the call's signal (now, or when the task first asks for it). */
	abort(reason: unknown): void {
		if (this.#aborted) {
			return;
		}
		this.#aborted = true;
		this.#reason = reason;
		// Requests waiting for an answer reject: the task learns of the stop where it waits.
		this[COMM]?.close(reason);
		this.#controller?.abort(reason);
	}
}

/**
 * The context of the call running now, for code inside a task (in a worker thread, a process or
 * the main thread). Outside a task it returns `undefined`.
 *
 * @example
 * export async function train(epochs) {
 *   const { signal } = currentCall() ?? {};
 *   for (let i = 0; i < epochs && !signal?.aborted; i++) await step();
 * }
 */
export function currentCall(): CallContext | undefined {
	return contextStorage().getStore();
}

/** The abort signal of the call running now; outside a task, a signal that never aborts. */
export function taskSignal(): AbortSignal {
	return currentCall()?.signal ?? NEVER;
}

/** How many stop notices for calls not yet registered are kept (they arrive while a call loads its loader hooks). */
const EARLY_NOTICES = 16;

/** The calls running in this thread or process, by id, so that a stop's notice reaches each one. */
export class RunningCalls {
	readonly #calls = new Map<number, CallControl>();
	/** Notices that came before their call was registered (while its worker registered loader hooks). */
	readonly #early = new Map<number, unknown>();

	/** Registers call `id` and returns its context, with its channel if it has one; a notice that came for it already aborts it. */
	add(id: number, comm?: TaskComm): CallControl {
		const context = new CallControl(id, comm);
		this.#calls.set(id, context);
		if (this.#early.has(id)) {
			context.abort(this.#early.get(id));
			this.#early.delete(id);
		}
		return context;
	}

	delete(id: number): void {
		this.#calls.delete(id);
	}

	/** How many calls run now. */
	get size(): number {
		return this.#calls.size;
	}

	/** Aborts call `id`'s signal with `reason`; for a call not registered yet, when it is. */
	abort(id: number, reason: unknown): void {
		const context = this.#calls.get(id);
		if (context !== undefined) {
			context.abort(reason);
			return;
		}
		this.#early.set(id, reason);
		if (this.#early.size > EARLY_NOTICES) {
			// The oldest notices are for calls that ended (or never ran here).
			this.#early.delete(this.#early.keys().next().value as number);
		}
	}
}
