import { closeSync, openSync } from "node:fs";
import { BroadcastChannel } from "node:worker_threads";
import { fileURLToPath } from "node:url";
import { Piscina } from "piscina";
import { threadLoaders } from "../loaders.ts";
import { ControlView, createControl, readSchedstat, RUNNING } from "../control.ts";
import { CancelledError, DataCloneError, WorkerCrashedError } from "../errors.ts";
import type { Outcome, Usage } from "../future.ts";
import { LimitExceededError, MemoryLimitError } from "../pynisher/errors.ts";
import { Guard, type Probe } from "../pynisher/guard.ts";
import type { Watchdog } from "../pynisher/watchdog.ts";
import type { AbortMessage, CallPayload, CallReply, ThreadWorkerData } from "../protocol.ts";
import { deserializeError, serializeError } from "../serialize.ts";
import { EscalationSignal, type Execution, type Executor, type Limits } from "./executor.ts";
import { Stopper } from "./stop.ts";

const extension = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
/** The file each worker thread runs. */
export const THREAD_ENTRY = fileURLToPath(new URL(`../../workers/thread${extension}`, import.meta.url));

const MiB = 1024 * 1024;
let channels = 0;

/** The V8 heap cap, in whole megabytes, that a pool uses for a heap limit in bytes. */
export function heapCapMb(bytes: number): { old: number; young: number } {
	const total = Math.max(2, Math.ceil(bytes / MiB));
	const young = Math.max(1, Math.min(16, Math.floor(total / 8)));
	return { old: Math.max(1, total - young), young };
}

/** Whether the call's memory limit is a heap cap in the thread that runs it. */
export function capsHeap(limits: Limits | undefined): limits is Limits & { memoryBytes: number } {
	return limits?.memoryBytes !== undefined && limits.memoryKind !== "rss";
}

/**
 * Runs calls on piscina worker-thread pools: one pool for calls without a heap cap, and one per
 * distinct heap cap. Wall and CPU limits abort the call, which terminates its thread; piscina
 * replaces it.
 */
export class ThreadExecutor implements Executor {
	readonly where = "thread" as const;
	readonly #maxWorkers: number;
	readonly #watchdog: Watchdog;
	readonly #pools = new Map<number, Piscina<CallPayload, CallReply>>();
	readonly #buffer: SharedArrayBuffer;
	readonly #control: ControlView;
	readonly #freeSlots: number[];
	readonly #channelName = `byop-threads-${process.pid}-${++channels}`;
	#channel: BroadcastChannel | undefined;
	readonly #auto: AutoWatch;

	constructor(maxWorkers: number, watchdog: Watchdog) {
		this.#maxWorkers = maxWorkers;
		this.#watchdog = watchdog;
		this.#buffer = createControl(maxWorkers);
		this.#control = new ControlView(this.#buffer);
		this.#auto = new AutoWatch(watchdog);
		this.#freeSlots = Array.from({ length: maxWorkers }, (_, i) => maxWorkers - 1 - i);
	}

	/** The worker threads alive now, across every pool. */
	get threadCount(): number {
		let count = 0;
		for (const pool of this.#pools.values()) {
			count += pool.threads.length;
		}
		return count;
	}

	/** Starts the default pool's threads now, so the first calls do not wait for them. */
	warm(): void {
		this.#pool(0);
	}

	#pool(capBytes: number): Piscina<CallPayload, CallReply> {
		let pool = this.#pools.get(capBytes);
		if (pool === undefined) {
			const workerData: ThreadWorkerData = { control: this.#buffer, channel: this.#channelName, loaders: threadLoaders() };
			const cap = capBytes > 0 ? heapCapMb(capBytes) : undefined;
			pool = new Piscina<CallPayload, CallReply>({
				filename: THREAD_ENTRY,
				// With minThreads above 0, piscina replaces a terminated thread when its exit event
				// arrives, even after destroy() has returned: threads would outlive the run.
				minThreads: 0,
				maxThreads: this.#maxWorkers,
				idleTimeout: cap === undefined ? 60_000 : 5_000,
				workerData,
				...(cap === undefined ? {} : { resourceLimits: { maxOldGenerationSizeMb: cap.old, maxYoungGenerationSizeMb: cap.young } }),
			});
			// A worker that dies between calls is replaced by piscina; nothing is lost.
			pool.on("error", () => {});
			this.#pools.set(capBytes, pool);
		}
		return pool;
	}

	async execute(execution: Execution): Promise<Outcome> {
		const { call, cancellation } = execution;
		const slot = this.#freeSlots.pop();
		if (slot === undefined) {
			throw new Error("byop: more calls dispatched to the thread pool than it has room for");
		}
		this.#control.reset(slot);
		const limits = call.limits;
		const abort = new AbortController();
		const stopper = new Stopper(
			limits,
			(reason) => {
				this.#channel ??= this.#openChannel();
				const message: AbortMessage = { abort: call.id, reason: serializeError(reason) };
				this.#channel.postMessage(message);
			},
			(reason) => abort.abort(reason),
		);
		let started = false;
		let finished = false;
		let cpuFd = -1;
		let baseline = 0;
		const probe: Probe = {
			cpuMs: () => (cpuFd < 0 ? -1 : (readSchedstat(cpuFd) - baseline) / 1e6),
		};
		const guard = limits === undefined ? undefined : new Guard(limits, probe, this.#watchdog, (error) => stopper.stop(error));
		const onStart = (): void => {
			// A start notice that arrives after the call ended belongs to the next call in this
			// slot: acting on it would open a descriptor that is never closed and re-arm this
			// call's guard.
			if (started || finished || this.#control.state(slot) !== RUNNING) {
				return;
			}
			started = true;
			const tid = this.#control.tid(slot);
			baseline = this.#control.cpuBaseline(slot);
			if (tid > 0) {
				try {
					cpuFd = openSync(`/proc/self/task/${tid}/schedstat`, "r");
				} catch {
					cpuFd = -1;
				}
			}
			guard?.start(false);
			execution.started();
		};
		if (cancellation.reason !== undefined) {
			stopper.stop(cancellation.reason, true);
		} else {
			cancellation.listen((reason) => stopper.stop(reason, !started));
		}
		if (guard === undefined) {
			// Unlimited calls need no start notice to be exact; mark them running now.
			execution.started();
		} else {
			void this.#control.started(slot).then(onStart);
		}
		const capBytes = capsHeap(limits) ? limits.memoryBytes : 0;
		const auto = limits?.memoryKind === "auto" && limits.escalate && capBytes > 0 ? { budget: capBytes, stopper, external: () => this.#control.externalMemory(slot) } : undefined;
		if (auto !== undefined) {
			this.#auto.add(auto);
		}
		const payload: CallPayload = { id: call.id, ref: call.ref, args: call.args, slot };
		let reply: CallReply | undefined;
		let failure: unknown;
		try {
			reply = await this.#pool(capBytes).run(payload, { signal: abort.signal });
		} catch (error) {
			failure = error;
		}
		cancellation.listen(undefined);
		if (guard !== undefined && !started) {
			onStart();
		}
		finished = true;
		const cpuAtEnd = probe.cpuMs();
		guard?.dispose();
		stopper.dispose();
		if (cpuFd >= 0) {
			closeSync(cpuFd);
		}
		if (!started) {
			// Wakes a start notice that never came (the call failed before it began).
			Atomics.notify(this.#control.ints, slot * 8);
		}
		const usage: Usage =
			reply !== undefined
				? { ...reply.stats, where: "thread" }
				: { wallMs: guard?.elapsed() ?? 0, cpuMs: cpuAtEnd, peakMemoryBytes: Math.max(this.#control.peakMemory(slot), capBytes > 0 && isOutOfMemory(failure) ? capBytes : 0), where: "thread" };
		this.#freeSlots.push(slot);
		if (auto !== undefined) {
			this.#auto.delete(auto);
		}
		const reason = guard?.fired ?? stopper.reason;
		if (reason instanceof EscalationSignal) {
			return { kind: "exception", error: reason, usage };
		}
		if (reason instanceof LimitExceededError) {
			return { kind: "exception", error: reason, usage };
		}
		if (reason instanceof CancelledError) {
			return { kind: "cancelled", error: reason, usage };
		}
		if (reply !== undefined) {
			return reply.ok ? { kind: "result", value: reply.value, usage } : { kind: "exception", error: deserializeError(reply.error), usage };
		}
		return { kind: "exception", error: translateFailure(failure, limits, capBytes, usage.cpuMs), usage };
	}

	#openChannel(): BroadcastChannel {
		const channel = new BroadcastChannel(this.#channelName);
		channel.unref();
		return channel;
	}

	async close(): Promise<void> {
		const pools = [...this.#pools.values()];
		this.#pools.clear();
		this.#channel?.close();
		this.#channel = undefined;
		await Promise.all(pools.map((pool) => pool.destroy()));
	}
}

function isOutOfMemory(error: unknown): boolean {
	return typeof error === "object" && error !== null && (error as { code?: unknown }).code === "ERR_WORKER_OUT_OF_MEMORY";
}

/** Turns a piscina rejection into the error the task reports. */
function translateFailure(error: unknown, limits: Limits | undefined, capBytes: number, _cpuMs: number): Error {
	if (isOutOfMemory(error)) {
		if (capBytes > 0 && limits?.memoryBytes !== undefined) {
			return new MemoryLimitError(limits.memoryBytes, capBytes, "heap", { cause: error });
		}
		return new WorkerCrashedError("The worker thread ran out of memory", { exitCode: 1 }, { cause: error });
	}
	if (error instanceof Error && (error.name === "DataCloneError" || (error as { code?: unknown }).code === "ERR_DATA_CLONE")) {
		return new DataCloneError(`A value of the call could not be copied between threads: ${error.message}`, { cause: error });
	}
	const message = error instanceof Error ? error.message : String(error);
	// piscina says "worker exited with code: 3" (with a colon): the exit code of process.exit() in the task.
	const exit = /exited with code:? (\d+)|exit code:? (\d+)/i.exec(message);
	const exitCode = exit === null ? null : Number(exit[1] ?? exit[2]);
	return new WorkerCrashedError(`The worker thread running the task ended without answering: ${message}`, { exitCode }, { cause: error });
}

interface AutoCall {
	readonly budget: number;
	readonly stopper: Stopper;
	/** The memory outside the heap that the call's thread last reported. */
	external(): number;
}

/** Slack for the memory of the threads themselves, per running auto call. */
const THREAD_SLACK_BYTES = 24 * MiB;

/**
 * Watches the memory of the whole process while calls with `memoryKind: "auto"` run. Their heaps
 * are capped, so when the process grows past the sum of their limits, the growth is outside the
 * heaps (Buffers, ArrayBuffers, native memory): those calls are stopped and re-run in processes,
 * under a true RSS limit.
 */
class AutoWatch {
	readonly intervalMs = 10;
	readonly #watchdog: Watchdog;
	readonly #calls = new Set<AutoCall>();
	#baseline = 0;
	#budget = 0;

	constructor(watchdog: Watchdog) {
		this.#watchdog = watchdog;
	}

	add(call: AutoCall): void {
		if (this.#calls.size === 0) {
			this.#baseline = process.memoryUsage.rss();
			this.#watchdog.add(this);
		}
		this.#calls.add(call);
		this.#budget += call.budget + THREAD_SLACK_BYTES;
	}

	delete(call: AutoCall): void {
		if (this.#calls.delete(call)) {
			this.#budget -= call.budget + THREAD_SLACK_BYTES;
			if (this.#calls.size === 0) {
				this.#watchdog.delete(this);
			}
		}
	}

	check(): void {
		const growth = process.memoryUsage.rss() - this.#baseline;
		if (growth <= this.#budget) {
			return;
		}
		// The calls whose threads report more memory outside the heap than their limit are the
		// cause; when none has reported (a synchronous call cannot), all of them move.
		const over = [...this.#calls].filter((call) => call.external() > call.budget);
		for (const call of over.length > 0 ? over : [...this.#calls]) {
			this.delete(call);
			call.stopper.stop(new EscalationSignal(`Memory outside the heap passed the limit (process grew by ${Math.round(growth / MiB)} MB)`), true);
		}
	}
}
