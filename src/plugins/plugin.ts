import type { Call } from "../executors/executor.ts";
import type { Future, Outcome } from "../future.ts";
import type { Task } from "../task.ts";

/**
 * Changes how a task submits its calls. A plugin is attached to each task it is given to, sees
 * every call before it is queued (and may change or veto it), and sees every outcome before the
 * task's events are emitted.
 */
export interface Plugin {
	/** A name for messages. */
	readonly name: string;
	/** The events this plugin emits on the tasks it is attached to. */
	readonly events?: readonly string[];
	/** Called once per task this plugin is given to. */
	attach?(task: Task): void;
	/**
	 * Called before a call is queued. Return `false` to veto it (`submit()` then returns
	 * `undefined`), or change `call.args` / `call.limits` in place.
	 */
	preSubmit?(call: Call, task: Task): boolean | void;
	/** Called when a call of the task has started running. */
	started?(future: Future, task: Task): void;
	/** Called when a call has ended, before the task's `DONE`/`RESULT`/`EXCEPTION`/`CANCELLED`. */
	settled?(future: Future, outcome: Outcome, task: Task): void;
}
