import type { CancelledError } from "../errors.ts";
import type { Future, Outcome, Where } from "../future.ts";
import type { MemoryKind } from "../pynisher/errors.ts";
import type { ResolvedRef } from "../ref.ts";

/** The limits of one call, in milliseconds and bytes. Set by `PynisherPlugin`. */
export interface Limits {
	readonly wallMs: number | undefined;
	readonly cpuMs: number | undefined;
	readonly memoryBytes: number | undefined;
	readonly memoryKind: MemoryKind;
	/** How long a call that is being stopped gets to end on its own. */
	readonly graceMs: number;
	/** Whether an `"auto"` call may be re-run in a process when its memory outside the heap passes the limit. */
	readonly escalate: boolean;
	/** How often CPU time and memory are sampled. */
	readonly sampleMs: number;
}

/** One call on its way to an executor. Plugins may change `args` and `limits` before it is queued. */
export interface Call {
	readonly id: number;
	readonly ref: ResolvedRef;
	args: unknown[];
	limits: Limits | undefined;
	readonly taskName: string;
	readonly future: Future;
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

/** How an executor tells the scheduler that a call has really started running. */
export interface Execution {
	readonly call: Call;
	/** Cancels the call; the reason is a `CancelledError`. */
	readonly cancellation: Cancellation;
	/** Called once when the call starts running in its thread or process. */
	started(): void;
}

/**
 * Where calls run. The scheduler queues calls and hands one to `execute` only when there is
 * room, so an executor runs what it is given at once.
 */
export interface Executor {
	readonly where: Where;
	/** Runs one call to its end. Never rejects: failures are outcomes. */
	execute(execution: Execution): Promise<Outcome>;
	/** Ends every thread or process; calls still running end as cancelled. */
	close(): Promise<void>;
}

/** The reason a thread call is stopped when it has to move to a process (memory outside its heap). */
export class EscalationSignal extends Error {
	override name = "EscalationSignal";
}
