import type { Usage } from "../future.ts";
import type { Watchers } from "../limits/monitor.ts";
import type { StopReason } from "../limits/stopper.ts";
import { deserializeError, serializeError } from "../serialize.ts";
import { ThreadClock } from "../worker/clocks.ts";
import { TaskComm } from "../worker/comm.ts";
import { CallControl } from "../worker/context.ts";
import { HeapSampler } from "../worker/heap-sampler.ts";
import { invoke } from "../worker/invoke.ts";
import { findUncloneable } from "../worker/uncloneable.ts";
import { DataCloneError } from "../errors.ts";
import { type CallAdapter, type Ending, runCall } from "./call.ts";
import { MainComm } from "./comm.ts";
import type { Call, Execution, Executor, Settled } from "./executor.ts";

/**
 * Runs calls one at a time in the main thread. A call that is cancelled while it runs cannot be
 * interrupted: its signal aborts and its result is dropped. Calls with limits never run here;
 * the dispatcher sends them to a process.
 */
export class SequentialExecutor implements Executor {
	readonly where = "main" as const;
	readonly #clock = new ThreadClock();
	readonly #watchers: Watchers;

	constructor(watchers: Watchers) {
		this.#watchers = watchers;
	}

	execute(execution: Execution): Promise<Settled> {
		return runCall(execution, new MainCall(execution.call, this.#clock), this.#watchers);
	}

	async close(): Promise<void> {
		this.#clock.close();
	}
}

/**
 * One call in the main thread. It gets the same values the other executors would give it: its
 * arguments and result must be copyable, and a thrown non-Error arrives as an Error holding it.
 */
class MainCall implements CallAdapter {
	readonly where = "main" as const;
	readonly #call: Call;
	readonly #clock: ThreadClock;
	readonly #context: CallControl;
	/** The call's channel, both ends in this thread: what crosses it is copied, as it would be between threads. */
	readonly #comm: { readonly task: TaskComm; readonly main: MainComm } | undefined;
	#startedAt: number | undefined;
	#startCpu = -1;
	#drop: (() => void) | undefined;

	constructor(call: Call, clock: ThreadClock) {
		this.#call = call;
		this.#clock = clock;
		if (call.comm === undefined) {
			this.#comm = undefined;
		} else {
			const main: MainComm = new MainComm(call.comm, (message) => task.receive(structuredClone(message)));
			const task: TaskComm = new TaskComm((message) => main.receive(structuredClone(message)));
			this.#comm = { task, main };
		}
		this.#context = new CallControl(call.id, this.#comm?.task);
	}

	startedAt(): number | undefined {
		return this.#startedAt;
	}

	cpuMs(): number {
		return this.#startedAt === undefined ? -1 : this.#clock.spent(this.#startCpu, performance.now() - this.#startedAt);
	}

	async run(): Promise<Ending> {
		const { ref, args } = this.#call;
		this.#startCpu = this.#clock.start();
		const started = performance.now();
		this.#startedAt = started;
		const sampler = new HeapSampler();
		const uncloneable = findUncloneable(args);
		const invoked =
			uncloneable === undefined
				? invoke(ref, args, this.#context, sampler)
				: Promise.resolve({ ok: false as const, error: new DataCloneError(`The call's arguments hold ${uncloneable}, which cannot be copied to the task`) });
		// A cancel drops the call: the main thread cannot be interrupted, so what it still does is ignored.
		const dropped = new Promise<"dropped">((resolve) => {
			this.#drop = () => resolve("dropped");
		});
		const result = await Promise.race([invoked, dropped]);
		await this.#comm?.task.flush();
		this.#comm?.task.close();
		const wallMs = performance.now() - started;
		const usage: Usage = { wallMs, cpuMs: this.#clock.spent(this.#startCpu, wallMs), peakMemoryBytes: sampler.stop(), where: "main" };
		if (result === "dropped") {
			return { kind: "exception", error: new Error("The call was dropped"), usage };
		}
		if (result.ok) {
			return { kind: "result", value: result.value, usage };
		}
		// As it would arrive from a thread or a process: a thrown non-Error becomes an Error holding the value.
		const error = result.error instanceof Error ? result.error : deserializeError(serializeError(result.error));
		return { kind: "exception", error, usage };
	}

	notify(reason: StopReason): void {
		this.#context.abort(reason);
	}

	kill(reason: StopReason): void {
		this.#context.abort(reason);
		this.#drop?.();
	}

	release(): void {
		this.#comm?.task.close();
		this.#comm?.main.close();
	}
}
