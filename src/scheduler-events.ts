import { defineEvent } from "./events.ts";
import type { Future } from "./future.ts";
import type { ExitState } from "./run-options.ts";

/** The events of a `Scheduler`, on the class and on its instances (`Scheduler.STARTED`, `scheduler.STARTED`). */
export class SchedulerEvents {
	/** The run has started; submit the first calls here. */
	static readonly STARTED = defineEvent<[]>("scheduler:started");
	/** The run is ending: calls are being waited for or cancelled. */
	static readonly FINISHING = defineEvent<[]>("scheduler:finishing");
	/** The run has ended, with its exit state. */
	static readonly FINISHED = defineEvent<[ExitState]>("scheduler:finished");
	/** The run was stopped by `stop()` or by the exception policy: `(reason, error?)`. */
	static readonly STOP = defineEvent<[string, unknown]>("scheduler:stop");
	/** The run's `timeout` ended it. */
	static readonly TIMEOUT = defineEvent<[]>("scheduler:timeout");
	/** Nothing is queued or running. */
	static readonly EMPTY = defineEvent<[]>("scheduler:empty");
	static readonly FUTURE_SUBMITTED = defineEvent<[Future]>("scheduler:future-submitted");
	static readonly FUTURE_DONE = defineEvent<[Future]>("scheduler:future-done");
	static readonly FUTURE_CANCELLED = defineEvent<[Future]>("scheduler:future-cancelled");
	static readonly FUTURE_RESULT = defineEvent<[Future, unknown]>("scheduler:future-result");
	static readonly FUTURE_EXCEPTION = defineEvent<[Future, unknown]>("scheduler:future-exception");

	readonly STARTED = SchedulerEvents.STARTED;
	readonly FINISHING = SchedulerEvents.FINISHING;
	readonly FINISHED = SchedulerEvents.FINISHED;
	readonly STOP = SchedulerEvents.STOP;
	readonly TIMEOUT = SchedulerEvents.TIMEOUT;
	readonly EMPTY = SchedulerEvents.EMPTY;
	readonly FUTURE_SUBMITTED = SchedulerEvents.FUTURE_SUBMITTED;
	readonly FUTURE_DONE = SchedulerEvents.FUTURE_DONE;
	readonly FUTURE_CANCELLED = SchedulerEvents.FUTURE_CANCELLED;
	readonly FUTURE_RESULT = SchedulerEvents.FUTURE_RESULT;
	readonly FUTURE_EXCEPTION = SchedulerEvents.FUTURE_EXCEPTION;
}
