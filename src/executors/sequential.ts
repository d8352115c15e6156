import { closeSync } from "node:fs";
import { openOwnSchedstat, readSchedstat } from "../control.ts";
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
	#schedstat = -2;

	#cpuNs(): number {
		if (this.#schedstat === -2) {
			this.#schedstat = openOwnSchedstat();
		}
		if (this.#schedstat >= 0) {
			return readSchedstat(this.#schedstat);
		}
		const usage = process.cpuUsage();
		return (usage.user + usage.system) * 1000;
	}

	async execute(execution: Execution): Promise<Outcome> {
		const { call, cancellation } = execution;
		if (cancellation.reason !== undefined) {
			return { kind: "cancelled", error: cancellation.reason, usage: undefined };
		}
		// The call's own signal (taskSignal() inside it) aborts when it is cancelled.
		const abort = new AbortController();
		const signal = abort.signal;
		execution.started();
		const startCpu = this.#cpuNs();
		const started = performance.now();
		const sampler = new HeapSampler();
		const cancelled = new Promise<"cancelled">((resolve) =>
			cancellation.listen((reason) => {
				abort.abort(reason);
				resolve("cancelled");
			}),
		);
		const result = await Promise.race([invoke(call.ref, call.args, call.id, signal, sampler, false), cancelled]);
		const usage = {
			wallMs: performance.now() - started,
			cpuMs: (this.#cpuNs() - startCpu) / 1e6,
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
		if (this.#schedstat >= 0) {
			closeSync(this.#schedstat);
		}
		this.#schedstat = -2;
	}
}
