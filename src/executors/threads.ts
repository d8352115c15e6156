import { closeSync, openSync } from "node:fs";
import { BroadcastChannel } from "node:worker_threads";
import { fileURLToPath } from "node:url";
import { Piscina } from "piscina";
import { threadLoaders } from "../loaders.ts";
import { ControlView, createControl, ENDED_OK, readSchedstat } from "../control.ts";
import { CancelledError, DataCloneError, WorkerCrashedError } from "../errors.ts";
import type { Outcome, Usage } from "../future.ts";
import { LimitExceededError, MemoryLimitError } from "../pynisher/errors.ts";
import { Guard, type Probe } from "../pynisher/guard.ts";
import { CORES, MEMORY_GROWTH_BYTES_PER_MS, type Watchdog } from "../pynisher/watchdog.ts";
import type { AbortMessage, CallPayload, ThreadWorkerData } from "../protocol.ts";
import { deserializeError, type SerializedError, serializeError } from "../serialize.ts";
import { EscalationSignal, type Execution, type Executor, type Limits } from "./executor.ts";
import { Stopper } from "./stop.ts";

const extension = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
/** The file each worker thread runs. */
export const THREAD_ENTRY = fileURLToPath(new URL(`../../workers/thread${extension}`, import.meta.url));

const MiB = 1024 * 1024;
/** How long a stop waits for the thread to finish loading a module before it terminates the thread. */
const LOAD_WAIT_MS = 1000;

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
 * starts a new one for the next call.
 */
export class ThreadExecutor implements Executor {
	readonly where = "thread" as const;
	readonly #maxWorkers: number;
	readonly #watchdog: Watchdog;
	readonly #pools = new Map<number, Piscina<CallPayload, unknown>>();
	/** The ids of the threads of each pool that have started (loaded their modules). */
	readonly #ready = new WeakMap<Piscina<CallPayload, unknown>, Set<number>>();
	readonly #buffer: SharedArrayBuffer;
	readonly #control: ControlView;
	readonly #freeSlots: number[];
	readonly #channelName = `byop-threads-${process.pid}-${++channels}`;
	#channel: BroadcastChannel | undefined;
	readonly #auto: AutoWatch;
	/** Counts the calls given a slot: each call's records carry its number. */
	#generation = 0;

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

	/** The threads, across every pool, known to have started (what `close()` waits for is the rest). */
	get startedThreads(): number {
		let count = 0;
		for (const pool of this.#pools.values()) {
			count += this.#ready.get(pool)?.size ?? 0;
		}
		return count;
	}

	/** Starts the default pool's threads now, so the first calls do not wait for them. */
	warm(): void {
		this.#pool(0);
	}

	#pool(capBytes: number): Piscina<CallPayload, unknown> {
		let pool = this.#pools.get(capBytes);
		if (pool === undefined) {
			const workerData: ThreadWorkerData = { control: this.#buffer, channel: this.#channelName, loaders: threadLoaders(), capped: capBytes > 0 };
			const cap = capBytes > 0 ? heapCapMb(capBytes) : undefined;
			pool = new Piscina<CallPayload, unknown>({
				filename: THREAD_ENTRY,
				// With minThreads above 0, piscina replaces a terminated thread when its exit event
				// arrives, even after destroy() has returned: threads would outlive the run.
				minThreads: 0,
				maxThreads: this.#maxWorkers,
				idleTimeout: cap === undefined ? 60_000 : 5_000,
				// Run and wait time histograms cost every call; byop measures its calls itself.
				recordTiming: false,
				// An idle thread waits with Atomics.waitAsync and so runs its event loop: what a
				// finished call left behind (a timer, a rejected promise) runs, or fails, between
				// calls instead of inside the next call. It is also faster here than "sync".
				atomics: "async",
				workerData,
				...(cap === undefined ? {} : { resourceLimits: { maxOldGenerationSizeMb: cap.old, maxYoungGenerationSizeMb: cap.young } }),
			});
			// A worker that dies between calls is gone (piscina starts a new one for the next call); nothing is lost.
			pool.on("error", () => {});
			// By thread id: piscina hands a new object for the same thread to each event, and a
			// thread that has exited reports an id of -1, so ids of threads gone are also dropped
			// when a new thread starts.
			const ready = new Set<number>();
			const created = pool;
			pool.on("workerCreate", (worker: { readonly id: number }) => {
				ready.add(worker.id);
				if (ready.size > this.#maxWorkers) {
					const alive = new Set(created.threads.map((thread) => thread.threadId));
					for (const id of ready) {
						if (!alive.has(id)) {
							ready.delete(id);
						}
					}
				}
			});
			pool.on("workerDestroy", (worker: { readonly id: number }) => ready.delete(worker.id));
			this.#ready.set(pool, ready);
			this.#pools.set(capBytes, pool);
		}
		return pool;
	}

	async execute(execution: Execution): Promise<Outcome> {
		const { call, cancellation } = execution;
		if (cancellation.reason !== undefined) {
			return { kind: "cancelled", error: cancellation.reason, usage: undefined };
		}
		const slot = this.#freeSlots.pop();
		if (slot === undefined) {
			throw new Error("byop: more calls dispatched to the thread pool than it has room for");
		}
		// A positive 32-bit integer, as the slot stores it.
		this.#generation = this.#generation >= 0x7fff_ffff ? 1 : this.#generation + 1;
		const generation = this.#generation;
		this.#control.reset(slot, generation);
		try {
			return call.limits === undefined ? await this.#runPlain(execution, slot, generation) : await this.#runLimited(execution, call.limits, slot, generation);
		} finally {
			this.#freeSlots.push(slot);
		}
	}

	/** A call without limits: nothing to watch, and only a cancellation can stop it. */
	async #runPlain(execution: Execution, slot: number, generation: number): Promise<Outcome> {
		const { call, cancellation } = execution;
		const pool = this.#pool(0);
		const signal = new CallSignal();
		let stopped: CancelledError | undefined;
		let cpu: CallCpu | undefined;
		cancellation.listen((reason) => {
			stopped = reason;
			cpu = new CallCpu(this.#control, slot, generation);
			this.#end(slot, generation, signal, cpu);
		});
		// The call counts as running from here: it holds one of the pool's maxWorkers places (a
		// thread may still have to start); limits count from the start the worker records.
		execution.started();
		const { answered, answer, failure } = await send(pool, { id: call.id, ref: call.ref, args: call.args, slot, generation }, signal);
		cancellation.listen(undefined);
		const ended = answered ? this.#control.ended(slot) : 0;
		const usage = ended === 0 ? this.#lostUsage(slot, generation, cpu?.final() ?? -1, 0, failure) : this.#control.usage(slot);
		cpu?.close();
		if (stopped !== undefined) {
			return { kind: "cancelled", error: stopped, usage };
		}
		return answerOutcome(ended, answered, answer, failure, usage, undefined, 0);
	}

	async #runLimited(execution: Execution, limits: Limits, slot: number, generation: number): Promise<Outcome> {
		const { call, cancellation } = execution;
		const capBytes = capsHeap(limits) ? limits.memoryBytes : 0;
		const pool = this.#pool(capBytes);
		const signal = new CallSignal();
		const cpu = new CallCpu(this.#control, slot, generation);
		const stopper = new Stopper(
			limits,
			(reason) => {
				this.#channel ??= this.#openChannel();
				const message: AbortMessage = { abort: call.id, reason: serializeError(reason) };
				this.#channel.postMessage(message);
			},
			() => this.#end(slot, generation, signal, cpu),
		);
		// The call counts as running from here: it holds one of the pool's maxWorkers places (a
		// thread may still have to start); limits count from the start the worker records. Its
		// thread's schedstat is opened at the first check, which a short call never reaches.
		const probe: Probe = { cpuMs: () => cpu.read() };
		const guard = new Guard(limits, probe, this.#watchdog, (error) => stopper.stop(error));
		cancellation.listen((reason) => stopper.stop(reason, !this.#control.running(slot, generation)));
		execution.started();
		guard.start(false, () => this.#control.startedAt(slot, generation));
		const auto = limits.memoryKind === "auto" && limits.escalate && capBytes > 0 ? { budget: capBytes, stopper, external: () => this.#control.externalMemory(slot) } : undefined;
		if (auto !== undefined) {
			this.#auto.add(auto);
		}
		const { answered, answer, failure } = await send(pool, { id: call.id, ref: call.ref, args: call.args, slot, generation }, signal);
		cancellation.listen(undefined);
		const ended = answered ? this.#control.ended(slot) : 0;
		// A call that ended normally has its figures in its slot; for one whose thread was ended,
		// its CPU time was read as it was ended, or last by the watchdog.
		const cpuNow = ended === 0 ? cpu.final() : -1;
		guard.dispose();
		stopper.dispose();
		cpu.close();
		const usage = ended !== 0 ? this.#control.usage(slot) : this.#lostUsage(slot, generation, cpuNow >= 0 ? cpuNow : guard.cpuMs, capBytes, failure);
		if (auto !== undefined) {
			this.#auto.delete(auto);
		}
		const reason = guard.fired ?? stopper.reason;
		if (reason instanceof EscalationSignal || reason instanceof LimitExceededError) {
			return { kind: "exception", error: reason, usage };
		}
		if (reason instanceof CancelledError) {
			return { kind: "cancelled", error: reason, usage };
		}
		// A call can end before the watch sees it pass the limit outside the heap (it was quick, or
		// the process's resident memory did not grow: the allocator reused pages an earlier call
		// freed). What its thread measured decides then: it runs again in a process.
		const external = ended !== 0 && auto !== undefined ? this.#control.externalMemory(slot) : 0;
		if (auto !== undefined && external > auto.budget) {
			return { kind: "exception", error: new EscalationSignal(`Memory outside the heap passed the limit: it grew by ${Math.round(external / MiB)} MB during the call`), usage };
		}
		return answerOutcome(ended, answered, answer, failure, usage, limits, capBytes);
	}

	/**
	 * Ends a call through piscina, which drops it from its queue or terminates the thread running
	 * it. A thread that is loading modules for the call is first let finish the load (up to
	 * `LOAD_WAIT_MS`), after which it returns without running the call: a thread terminated while
	 * Node's module loader reads a file would leave that file open for good.
	 */
	#end(slot: number, generation: number, signal: CallSignal, cpu: CallCpu): void {
		const loaded = this.#control.stopAfterLoad(slot, generation, LOAD_WAIT_MS);
		// The thread's CPU time is read just before it is terminated, after which it cannot be.
		const abort = (): void => {
			cpu.readAtStop();
			signal.abort();
		};
		if (loaded === undefined) {
			abort();
		} else {
			void loaded.then((stoppedItself) => {
				if (!stoppedItself) {
					abort();
				}
			});
		}
	}

	/**
	 * What is known of a call whose thread gave no answer (it was stopped, or it crashed): its wall
	 * time since its thread recorded its start (0 if it never started), and what was last read.
	 */
	#lostUsage(slot: number, generation: number, cpuMs: number, capBytes: number, failure: unknown): Usage {
		const peak = Math.max(this.#control.peakMemory(slot), capBytes > 0 && isOutOfMemory(failure) ? capBytes : 0);
		const started = this.#control.startedAt(slot, generation);
		return { wallMs: started === undefined ? 0 : performance.now() - started, cpuMs, peakMemoryBytes: peak, where: "thread" };
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
		await Promise.all(
			pools.map(async (pool) => {
				await this.#started(pool);
				await pool.destroy();
			}),
		);
	}

	/**
	 * Waits, up to `LOAD_WAIT_MS`, until every thread of `pool` has started: a thread terminated
	 * while it loads its modules would leave the files it was reading open.
	 */
	async #started(pool: Piscina<CallPayload, unknown>): Promise<void> {
		const ready = this.#ready.get(pool);
		const deadline = performance.now() + LOAD_WAIT_MS;
		while (ready !== undefined && pool.threads.some((thread) => !ready.has(thread.threadId))) {
			const left = deadline - performance.now();
			if (left <= 0) {
				return;
			}
			// A thread either reports that it started, or fails to start and is dropped.
			await new Promise<void>((resolve) => {
				const done = (): void => {
					clearTimeout(timer);
					pool.off("workerCreate", done);
					pool.off("workerDestroy", done);
					resolve();
				};
				const timer = setTimeout(done, left);
				pool.on("workerCreate", done);
				pool.on("workerDestroy", done);
			});
		}
	}
}

/** Reads, from outside, the CPU time the thread running a call has used since the call started. */
class CallCpu {
	readonly #control: ControlView;
	readonly #slot: number;
	readonly #generation: number;
	#fd = -1;
	#atStop = -1;
	#closed = false;

	constructor(control: ControlView, slot: number, generation: number) {
		this.#control = control;
		this.#slot = slot;
		this.#generation = generation;
	}

	/** Milliseconds; -1 before the call has started in its thread, after `close()`, or when it cannot be read. */
	read(): number {
		if (this.#fd < 0) {
			// A stop that waited for a load may come after the call has ended.
			if (this.#closed) {
				return -1;
			}
			const tid = this.#control.running(this.#slot, this.#generation) ? this.#control.tid(this.#slot) : 0;
			if (tid <= 0) {
				return -1;
			}
			try {
				this.#fd = openSync(`/proc/self/task/${tid}/schedstat`, "r");
			} catch {
				return -1;
			}
		}
		const ns = readSchedstat(this.#fd);
		return ns < 0 ? -1 : (ns - this.#control.cpuBaseline(this.#slot)) / 1e6;
	}

	/** Reads it just before the thread is terminated. */
	readAtStop(): void {
		this.#atStop = this.read();
	}

	/** The CPU time once the call has ended: read now if its thread is still there, else as it was stopped. */
	final(): number {
		const now = this.read();
		return now >= 0 ? now : this.#atStop;
	}

	close(): void {
		this.#closed = true;
		if (this.#fd >= 0) {
			closeSync(this.#fd);
			this.#fd = -1;
		}
	}
}

/** What a thread answered for a call, or why it gave no answer. */
interface Sent {
	readonly answered: boolean;
	readonly answer?: unknown;
	readonly failure?: unknown;
}

const answeredWith = (answer: unknown): Sent => ({ answered: true, answer });
const failedWith = (failure: unknown): Sent => ({ answered: false, failure });

/** Sends one call to a pool and settles with its answer or its failure. */
function send(pool: Piscina<CallPayload, unknown>, payload: CallPayload, signal: CallSignal): Promise<Sent> {
	return pool.run(payload, { signal }).then(answeredWith, failedWith);
}

/**
 * The abort signal of one call, in the smallest form piscina accepts (an emitter of one `abort`
 * event): an `AbortController` per call would cost every call an `EventTarget`. Aborting it makes
 * piscina drop the call, or terminate the thread that runs it, even in a synchronous loop.
 */
class CallSignal {
	aborted = false;
	#listener: (() => void) | undefined;

	once(_event: "abort", listener: () => void): void {
		this.#listener = listener;
	}

	off(_event: "abort", _listener: () => void): void {
		this.#listener = undefined;
	}

	removeListener(_event: "abort", _listener: () => void): void {
		this.#listener = undefined;
	}

	abort(): void {
		if (!this.aborted) {
			this.aborted = true;
			const listener = this.#listener;
			this.#listener = undefined;
			listener?.();
		}
	}
}

function isOutOfMemory(error: unknown): boolean {
	return typeof error === "object" && error !== null && (error as { code?: unknown }).code === "ERR_WORKER_OUT_OF_MEMORY";
}

/**
 * The outcome of a call that was not stopped: what its worker recorded (`ended`) and answered,
 * or, when it recorded nothing, why piscina gave no answer.
 */
function answerOutcome(ended: number, answered: boolean, answer: unknown, failure: unknown, usage: Usage, limits: Limits | undefined, capBytes: number): Outcome {
	if (ended === ENDED_OK) {
		return { kind: "result", value: answer, usage };
	}
	if (ended !== 0) {
		return { kind: "exception", error: deserializeError(answer as SerializedError), usage };
	}
	const lost = answered ? new Error("The worker answered without a result") : failure;
	return { kind: "exception", error: translateFailure(lost, limits, capBytes), usage };
}

/** Turns a piscina rejection into the error the task reports. */
function translateFailure(error: unknown, limits: Limits | undefined, capBytes: number): Error {
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
	/** How far the memory outside the heap grew during the call, as its thread last reported. */
	external(): number;
}

/** How old, in ms, a reading of the process's RSS may be to serve as a new baseline. */
const RSS_REUSE_MS = 20;

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
	#rss = 0;
	#rssAt = Number.NEGATIVE_INFINITY;

	constructor(watchdog: Watchdog) {
		this.#watchdog = watchdog;
	}

	add(call: AutoCall): void {
		if (this.#calls.size === 0) {
			// Reading RSS costs a system call: a reading taken in the last moments serves.
			this.#baseline = performance.now() - this.#rssAt <= RSS_REUSE_MS ? this.#rss : this.#readRss();
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
			} else {
				// A smaller budget leaves less headroom than the last check counted on: look again soon.
				this.#watchdog.add(this);
			}
		}
	}

	#readRss(): number {
		this.#rss = process.memoryUsage.rss();
		this.#rssAt = performance.now();
		return this.#rss;
	}

	check(): number {
		const growth = this.#readRss() - this.#baseline;
		// Each running call's thread can fill memory at the assumed rate: the process towards the
		// budget of all, and each call towards its own limit. A call whose thread reports more
		// memory outside the heap than its limit has passed it, even when the process's resident
		// memory does not show it (the allocator may reuse pages that an earlier call freed).
		let waitMs = (this.#budget - growth) / (MEMORY_GROWTH_BYTES_PER_MS * Math.min(this.#calls.size, CORES));
		let over: AutoCall[] | undefined;
		for (const call of this.#calls) {
			const headroom = call.budget - call.external();
			if (headroom < 0) {
				(over ??= []).push(call);
			}
			waitMs = Math.min(waitMs, headroom / MEMORY_GROWTH_BYTES_PER_MS);
		}
		if (growth <= this.#budget && over === undefined) {
			return waitMs;
		}
		// Those calls are the cause; when none has reported (a synchronous call cannot), all of them move.
		for (const call of over ?? [...this.#calls]) {
			this.delete(call);
			const why = over !== undefined ? `it grew by ${Math.round(call.external() / MiB)} MB during the call` : `the process grew by ${Math.round(growth / MiB)} MB`;
			call.stopper.stop(new EscalationSignal(`Memory outside the heap passed the limit: ${why}`), true);
		}
		return this.intervalMs;
	}
}
