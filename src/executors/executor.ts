import type { CancelledError } from "../errors.ts";
import type { CallComm } from "./comm.ts";
import type { Future, Outcome, Usage, Where } from "../future.ts";
import type { Escalation } from "../limits/off-heap.ts";
import type { Limits } from "../limits/types.ts";
import type { ResolvedRef } from "../ref.ts";

/** One call on its way to an executor. Plugins may change `args` and `limits` before it is queued. */
export interface Call {
	readonly id: number;
	readonly ref: ResolvedRef;
	args: unknown[];
	limits: Limits | undefined;
	/** The main side's end of the call's channel, set by a plugin such as `CommPlugin`; without it, `comm` is unavailable to the task. */
	comm?: CallComm | undefined;
	readonly taskName: string;
	readonly future: Future;
	/** On a remote executor: whether the call runs again once on another host when its host is lost (see `TaskOptions.retryOnHostLoss`). */
	readonly retryOnHostLoss?: boolean;
}

/**
 * How a call is cancelled: lighter than an AbortController (which costs an EventTarget per
 * call), and only ever cancelled once.
 */
export class Cancellation {
	#reason: CancelledError | undefined;
	#listener: ((reason: CancelledError) => void) | undefined;

	/** The reason, once cancelled. */
	get reason(): CancelledError | undefined {
		return this.#reason;
	}

	cancel(reason: CancelledError): void {
		if (this.#reason === undefined) {
			this.#reason = reason;
			this.#listener?.(reason);
		}
	}

	/** Sets the one listener (the executor running the call); `undefined` removes it. */
	listen(listener: ((reason: CancelledError) => void) | undefined): void {
		this.#listener = listener;
	}
}

/** One call handed to an executor, with how it is cancelled and how its start is reported. */
export interface Execution {
	readonly call: Call;
	/** Cancels the call; the reason is a `CancelledError`. */
	readonly cancellation: Cancellation;
	/** Called once when the call starts running in its thread or process. */
	started(): void;
}

/**
 * How a call ended on an executor: its outcome, or, for a memory-limited thread call that its
 * thread cannot hold to its limit (see `Escalation`), that it must run again in a process.
 */
export type Settled = Outcome | { readonly kind: "escalate"; readonly escalation: Escalation; readonly usage: Usage };

/**
 * Where calls run. The dispatcher queues calls and hands one to `execute` only when there is
 * room, so an executor runs what it is given at once.
 */
export interface Executor {
	readonly where: Where;
	/** Runs one call to its end. Never rejects: failures are outcomes. */
	execute(execution: Execution): Promise<Settled>;
	/** Ends every thread or process; calls still running end as cancelled. */
	close(): Promise<void>;
}
