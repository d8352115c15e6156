import type { Call } from "./executors/executor.ts";
import type { Task } from "./task.ts";

/** What a task needs of its scheduler: the private seam between `Task` and `Scheduler`. */
export interface SchedulerPort {
	/** Throws a `SchedulerStateError` when the scheduler is not running. */
	assertAccepting(): void;
	/** Whether new calls are taken (not while a run finishes). */
	accepting(): boolean;
	/** Queues a call that the task's plugins let through. */
	submit(call: Call, task: Task): void;
	/** An event handler or plugin hook threw: the scheduler's exception policy decides. */
	handlerError(error: unknown, event: string): void;
}

const ports = new WeakMap<object, SchedulerPort>();

/** Opens the port of a scheduler; done once, by the scheduler itself. */
export function openPort(scheduler: object, port: SchedulerPort): void {
	ports.set(scheduler, port);
}

/** The port of `scheduler`, or `undefined` when it is not a scheduler. */
export function portOf(scheduler: unknown): SchedulerPort | undefined {
	return typeof scheduler === "object" && scheduler !== null ? ports.get(scheduler) : undefined;
}
