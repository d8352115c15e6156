import { clearLongTimeout, type LongTimeout, setLongTimeout } from "../long-timeout.ts";
import type { Escalation } from "./off-heap.ts";

/** Why a running call is stopped: a limit's error, a `CancelledError`, or a move to a process. */
export type StopReason = Error | Escalation;

/**
 * Stops a running call once: first tells the task (its `AbortSignal`), then, after the grace
 * period, ends it for good. The first reason wins.
 */
export class Stopper {
	#reason: StopReason | undefined;
	#timer: LongTimeout | undefined;
	readonly #graceMs: number;
	readonly #notify: (reason: StopReason) => void;
	readonly #kill: (reason: StopReason) => void;

	/** `notify` tells the task; `kill` ends its thread or process. */
	constructor(graceMs: number, notify: (reason: StopReason) => void, kill: (reason: StopReason) => void) {
		this.#graceMs = graceMs;
		this.#notify = notify;
		this.#kill = kill;
	}

	/** Why the call is being stopped, once it is. */
	get reason(): StopReason | undefined {
		return this.#reason;
	}

	/** Stops the call; `immediately` skips the grace period (the call has not started yet, or moves elsewhere). */
	stop(reason: StopReason, immediately = false): void {
		if (this.#reason !== undefined) {
			return;
		}
		this.#reason = reason;
		if (this.#graceMs > 0 && !immediately) {
			this.#notify(reason);
			// A grace period may be longer than one timer can wait (`[720, "h"]`).
			this.#timer = setLongTimeout(() => this.#kill(reason), this.#graceMs, { ref: false });
		} else {
			this.#kill(reason);
		}
	}

	/** Clears the grace timer once the call has ended. */
	dispose(): void {
		clearLongTimeout(this.#timer);
	}
}
