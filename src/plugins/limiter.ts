import { defineEvent } from "../events.ts";
import type { Call } from "../executors/executor.ts";
import type { Future } from "../future.ts";
import type { Task } from "../task.ts";
import { describeExpected, parseCount } from "../units.ts";
import type { Plugin } from "./plugin.ts";

/** Options of `Limiter`. */
export interface LimiterOptions {
	/** The most calls the task may submit in total. @default no limit */
	readonly maxCalls?: number;
	/** The most calls of the task queued or running at once. @default no limit */
	readonly maxConcurrent?: number;
	/** Refuse calls while any of these tasks has a call queued or running. @default [] */
	readonly notWhileRunning?: Task | readonly Task[];
}

/**
 * Vetoes calls past a total count, past a number running at once, or while other tasks run.
 * A vetoed `submit()` returns `undefined` and the task emits the matching event.
 */
export class Limiter implements Plugin {
	/** A call was refused because `maxCalls` were made: `(task, ...args)`. */
	static readonly CALL_LIMIT_REACHED = defineEvent<[Task, ...unknown[]]>("limiter:call-limit-reached");
	/** A call was refused because `maxConcurrent` calls are in flight: `(task, ...args)`. */
	static readonly CONCURRENT_LIMIT_REACHED = defineEvent<[Task, ...unknown[]]>("limiter:concurrent-limit-reached");
	/** A call was refused because a task in `notWhileRunning` is running: `(task, ...args)`. */
	static readonly DISABLED_DUE_TO_RUNNING_TASK = defineEvent<[Task, ...unknown[]]>("limiter:disabled-due-to-running-task");

	readonly CALL_LIMIT_REACHED = Limiter.CALL_LIMIT_REACHED;
	readonly CONCURRENT_LIMIT_REACHED = Limiter.CONCURRENT_LIMIT_REACHED;
	readonly DISABLED_DUE_TO_RUNNING_TASK = Limiter.DISABLED_DUE_TO_RUNNING_TASK;

	readonly name = "limiter";
	readonly events: readonly string[] = [Limiter.CALL_LIMIT_REACHED, Limiter.CONCURRENT_LIMIT_REACHED, Limiter.DISABLED_DUE_TO_RUNNING_TASK];
	readonly maxCalls: number | undefined;
	readonly maxConcurrent: number | undefined;
	readonly notWhileRunning: readonly Task[];
	#calls = 0;
	readonly #inFlight = new Set<Future>();

	constructor(options: LimiterOptions = {}) {
		if (typeof options !== "object" || options === null) {
			throw new TypeError(describeExpected("options", "an object", options));
		}
		const { maxCalls, maxConcurrent, notWhileRunning = [] } = options;
		this.maxCalls = maxCalls === undefined ? undefined : parseCount("maxCalls", maxCalls);
		this.maxConcurrent = maxConcurrent === undefined ? undefined : parseCount("maxConcurrent", maxConcurrent);
		const tasks = Array.isArray(notWhileRunning) ? notWhileRunning : [notWhileRunning];
		for (const [index, task] of tasks.entries()) {
			if (typeof task !== "object" || task === null || !Array.isArray((task as Task).running)) {
				throw new TypeError(describeExpected(`notWhileRunning[${index}]`, "a Task", task));
			}
		}
		this.notWhileRunning = tasks as readonly Task[];
	}

	/** Calls let through so far. */
	get calls(): number {
		return this.#calls;
	}

	/** Calls let through that are queued or running now. */
	get concurrent(): number {
		return this.#inFlight.size;
	}

	preSubmit(call: Call, task: Task): boolean {
		if (this.maxCalls !== undefined && this.#calls >= this.maxCalls) {
			task.emit(Limiter.CALL_LIMIT_REACHED, task, ...call.args);
			return false;
		}
		if (this.maxConcurrent !== undefined && this.#inFlight.size >= this.maxConcurrent) {
			task.emit(Limiter.CONCURRENT_LIMIT_REACHED, task, ...call.args);
			return false;
		}
		if (this.notWhileRunning.some((other) => other.running.length > 0)) {
			task.emit(Limiter.DISABLED_DUE_TO_RUNNING_TASK, task, ...call.args);
			return false;
		}
		this.#calls++;
		this.#inFlight.add(call.future);
		return true;
	}

	settled(future: Future): void {
		this.#inFlight.delete(future);
	}
}
