import { defineEvent } from "../events.ts";
import type { Call } from "../executors/executor.ts";
import type { Future, Outcome } from "../future.ts";
import { CpuTimeLimitError, LimitExceededError, MemoryLimitError, WallTimeLimitError } from "../limits/errors.ts";
import { mergeLimits, parseLimits, type PynisherOptions } from "../limits/options.ts";
import type { Limits } from "../limits/types.ts";
import type { Plugin } from "../plugins/plugin.ts";
import type { Task } from "../task.ts";

export type { PynisherOptions };

/**
 * Puts wall-time, CPU-time and memory limits on every call of the tasks it is given to, and
 * emits an event on the task when one is passed, before the task's `EXCEPTION`. The limits are
 * enforced by the executors (see `src/limits/`); the plugin sets them and names the events.
 *
 * @example
 * const pynisher = new PynisherPlugin({ wallTimeLimit: [5, "m"], memoryLimit: [2, "gb"] });
 * const task = scheduler.task(ref, { plugins: [pynisher] });
 * task.on(pynisher.WALL_TIME_LIMIT_REACHED, (error) => console.log(`Failed with ${error}`));
 */
export class PynisherPlugin implements Plugin {
	/** A wall or CPU time limit was passed: `(error)`. */
	static readonly TIMEOUT = defineEvent<[WallTimeLimitError | CpuTimeLimitError]>("pynisher:timeout");
	/** The wall time limit was passed: `(error)`. */
	static readonly WALL_TIME_LIMIT_REACHED = defineEvent<[WallTimeLimitError]>("pynisher:wall-time-limit-reached");
	/** The CPU time limit was passed: `(error)`. */
	static readonly CPU_TIME_LIMIT_REACHED = defineEvent<[CpuTimeLimitError]>("pynisher:cpu-time-limit-reached");
	/** The memory limit was passed: `(error)`. */
	static readonly MEMORY_LIMIT_REACHED = defineEvent<[MemoryLimitError]>("pynisher:memory-limit-reached");

	readonly TIMEOUT = PynisherPlugin.TIMEOUT;
	readonly WALL_TIME_LIMIT_REACHED = PynisherPlugin.WALL_TIME_LIMIT_REACHED;
	readonly CPU_TIME_LIMIT_REACHED = PynisherPlugin.CPU_TIME_LIMIT_REACHED;
	readonly MEMORY_LIMIT_REACHED = PynisherPlugin.MEMORY_LIMIT_REACHED;

	readonly name = "pynisher";
	readonly events: readonly string[] = [PynisherPlugin.TIMEOUT, PynisherPlugin.WALL_TIME_LIMIT_REACHED, PynisherPlugin.CPU_TIME_LIMIT_REACHED, PynisherPlugin.MEMORY_LIMIT_REACHED];
	readonly #limits: Limits;

	/**
	 * @throws {TypeError} When an option has the wrong type or an unknown unit.
	 * @throws {RangeError} When a limit is zero, negative or not finite.
	 */
	constructor(options: PynisherOptions = {}) {
		this.#limits = parseLimits(options);
	}

	/** The limits, in milliseconds and bytes. */
	get limits(): Limits {
		return this.#limits;
	}

	preSubmit(call: Call): void {
		call.limits = mergeLimits(call.limits, this.#limits);
	}

	settled(_future: Future, outcome: Outcome, task: Task): void {
		if (outcome.kind !== "exception" || !(outcome.error instanceof LimitExceededError)) {
			return;
		}
		const error = outcome.error;
		if (error instanceof WallTimeLimitError && this.#limits.wallMs !== undefined) {
			task.emit(PynisherPlugin.TIMEOUT, error);
			task.emit(PynisherPlugin.WALL_TIME_LIMIT_REACHED, error);
		} else if (error instanceof CpuTimeLimitError && this.#limits.cpuMs !== undefined) {
			task.emit(PynisherPlugin.TIMEOUT, error);
			task.emit(PynisherPlugin.CPU_TIME_LIMIT_REACHED, error);
		} else if (error instanceof MemoryLimitError && this.#limits.memoryBytes !== undefined) {
			task.emit(PynisherPlugin.MEMORY_LIMIT_REACHED, error);
		}
	}
}
