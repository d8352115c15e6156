import { CallControl } from "../context.ts";
import { ThreadClock } from "../control.ts";
import { CancelledError } from "../errors.ts";
import type { Outcome } from "../future.ts";
import { HeapSampler, invoke } from "../invoke.ts";
import type { Execution, Executor } from "./executor.ts";

/**
 * Runs calls one at a time in the main thread. A call that is cancelled while it runs cannot be
 * interrupted: its signal aborts and its result is dropped. Calls with limits never run here;
 * the scheduler sends them to a process.
 */
export class SequentialExecutor implements Executor {
	readonly where = "main" as const;
	readonly #clock = new ThreadClock();

	async execute(execution: Execution): Promise<Outcome> {
		const { call, cancellation } = execution;
		if (cancellation.reason !== undefined) {
			return { kind: "cancelled", error: cancellation.reason, usage: undefined };
		}
		// The call's own signal (taskSignal() inside it) aborts when it is cancelled.
		const context = new CallControl(call.id);
		execution.started();
		const startCpu = this.#clock.start();
		const started = performance.now();
		const sampler = new HeapSampler();
		const cancelled = new Promise<"cancelled">((resolve) =>
			cancellation.listen((reason) => {
				context.abort(reason);
				resolve("cancelled");
			}),
		);
		const result = await Promise.race([invoke(call.ref, call.args, context, sampler, false), cancelled]);
		const wallMs = performance.now() - started;
		const usage = {
			wallMs,
			cpuMs: this.#clock.spent(startCpu, wallMs),
			peakMemoryBytes: sampler.stop(),
			where: "main" as const,
		};
		cancellation.listen(undefined);
		if (result === "cancelled" || cancellation.reason !== undefined) {
			return { kind: "cancelled", error: cancellation.reason ?? new CancelledError(), usage };
		}
		return result.ok ? { kind: "result", value: result.value, usage } : { kind: "exception", error: result.error, usage };
	}

	async close(): Promise<void> {
		this.#clock.close();
	}
}
