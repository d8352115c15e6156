import type { Watchers } from "../../limits/monitor.ts";
import type { Limits } from "../../limits/types.ts";
import type { Isolation } from "../../pool-options.ts";
import { exposeForTests } from "../../test-hooks.ts";
import { runCall } from "../call.ts";
import type { Execution, Executor, Settled } from "../executor.ts";
import { ProcessCall } from "./call.ts";
import { PoolProcess, REUSE_GROWTH_BYTES } from "./pool-process.ts";

const MiB = 1024 * 1024;
/** What a process may grow by loading a call's modules and still take the next memory-limited call. */
const MODULES_GROWTH_BYTES = 64 * MiB;

/** The V8 heap cap, in megabytes, of a process that runs a call with this memory limit. */
function processHeapCap(limits: Limits | undefined): number {
	return limits?.memoryBytes === undefined ? 0 : Math.max(8, Math.ceil(limits.memoryBytes / MiB));
}

/**
 * Runs calls in forked Node processes, one call per process at a time, kept warm and reused
 * (with `isolate: "call"`, each process runs one call and is replaced). At most `maxWorkers`
 * processes are alive at once, whatever their heap caps: an idle process of another cap gives
 * way, and has exited, before a new one starts. Each process leads its own process group;
 * stopping a call kills the group. Limits are watched from this process: wall time by a timer,
 * CPU time and resident memory from `/proc` (without it, from what each process's watcher thread
 * reports: see `ReportReader`).
 */
export class ProcessExecutor implements Executor {
	readonly where = "process" as const;
	readonly #maxWorkers: number;
	readonly #watchers: Watchers;
	readonly #isolate: boolean;
	/**
	 * How many processes may be alive at once: `maxWorkers`, and with `isolate` as many again for
	 * the spares, so that each running call's successor is started while it runs.
	 */
	readonly #budget: number;
	readonly #idle: PoolProcess[] = [];
	/** Every process not yet exited, busy, idle or being killed. */
	readonly #all = new Set<PoolProcess>();
	/** Calls waiting for a process to exit, so that theirs can start. */
	readonly #waiting: (() => void)[] = [];
	#closed = false;
	readonly #release = (proc: PoolProcess, limits: Limits | undefined, killed: boolean): void => this.#releaseProcess(proc, limits, killed);

	constructor(maxWorkers: number, watchers: Watchers, isolate: Isolation = "none") {
		this.#maxWorkers = maxWorkers;
		this.#watchers = watchers;
		this.#isolate = isolate === "call";
		this.#budget = this.#isolate ? 2 * maxWorkers : maxWorkers;
		exposeForTests(this, { pids: () => [...this.#all].filter((proc) => proc.alive).map((proc) => proc.pid) });
	}

	/** Starts `count` processes without a heap cap, so the first calls do not wait for a fork. */
	warm(count = this.#maxWorkers): void {
		while (this.#all.size < count) {
			const proc = this.#spawn(0);
			this.#idle.push(proc);
		}
	}

	#spawn(heapCapMb: number): PoolProcess {
		const proc = new PoolProcess(heapCapMb);
		this.#all.add(proc);
		proc.onRetire = () => {
			const index = this.#idle.indexOf(proc);
			if (index >= 0) {
				this.#idle.splice(index, 1);
				proc.kill();
			}
		};
		void proc.exited().then(() => {
			this.#all.delete(proc);
			const index = this.#idle.indexOf(proc);
			if (index >= 0) {
				this.#idle.splice(index, 1);
			}
			if (this.#waiting.length > 0) {
				// A call waits for room: it comes before a successor.
				this.#waiting.shift()?.();
				return;
			}
			// A process that served calls and was then stopped, crashed or retired gets a successor
			// now, so that the next call finds one started. A process that ended before it was
			// given a call gets none: whatever ended it may end the next one too, and a call that
			// needs a process starts one anyway.
			if (!this.#closed && proc.served && this.#all.size < this.#maxWorkers && !(this.#isolate && this.#hasSpare(proc.heapCapMb))) {
				this.#idle.push(this.#spawn(proc.heapCapMb));
			}
		});
		return proc;
	}

	/**
	 * A process for a call with heap cap `heapCapMb`: an idle one of that cap, or a new one once
	 * fewer than `maxWorkers` are alive. An idle process of another cap is killed to make room,
	 * and the call waits until it has exited (a killed process stays alive for a moment).
	 */
	#acquire(heapCapMb: number): PoolProcess | Promise<PoolProcess> {
		const index = this.#idle.findIndex((proc) => proc.alive && proc.heapCapMb === heapCapMb);
		if (index >= 0) {
			const proc = this.#idle.splice(index, 1)[0]!;
			proc.busy();
			return proc;
		}
		if (this.#all.size < this.#budget) {
			const proc = this.#spawn(heapCapMb);
			proc.busy();
			return proc;
		}
		// Make room: an idle process with another heap cap gives way.
		this.#idle.shift()?.kill();
		return new Promise<void>((resolve) => this.#waiting.push(resolve)).then(() => {
			if (this.#closed) {
				throw new Error("The process pool closed before the call got a process");
			}
			return this.#acquire(heapCapMb);
		});
	}

	/** Whether an idle process of heap cap `heapCapMb` waits for a call. */
	#hasSpare(heapCapMb: number): boolean {
		return this.#idle.some((proc) => proc.alive && proc.heapCapMb === heapCapMb);
	}

	/** With `isolate`: starts a spare for calls of heap cap `heapCapMb`, unless one waits already, within the budget. */
	#spare(heapCapMb: number): void {
		if (this.#isolate && !this.#closed && !this.#hasSpare(heapCapMb) && this.#all.size < this.#budget) {
			this.#idle.push(this.#spawn(heapCapMb));
		}
	}

	/** Takes a process back after a call; one that was told to die, or holds too much of what the call left, is not reused. */
	#releaseProcess(proc: PoolProcess, limits: Limits | undefined, killed: boolean): void {
		if (killed || this.#isolate) {
			// With isolate "call", its successor starts as it exits.
			proc.kill();
			return;
		}
		if (this.#closed || !proc.alive) {
			return;
		}
		// The next call here has the same memory limit (processes are kept by heap cap): it gets
		// the process only if little of that limit is still held from this one (a tenth, or what
		// loading its modules takes, such as a TypeScript loader).
		const growth = limits?.memoryBytes === undefined ? REUSE_GROWTH_BYTES : Math.min(REUSE_GROWTH_BYTES, Math.max(MODULES_GROWTH_BYTES, limits.memoryBytes / 10));
		if ((limits?.memoryBytes !== undefined || proc.retiring) && !proc.reusable(growth)) {
			proc.kill();
			return;
		}
		proc.idle();
		this.#idle.push(proc);
	}

	execute(execution: Execution): Promise<Settled> {
		if (execution.cancellation.reason !== undefined) {
			return Promise.resolve({ kind: "cancelled", error: execution.cancellation.reason, usage: undefined });
		}
		const heapCapMb = processHeapCap(execution.call.limits);
		const proc = this.#acquire(heapCapMb);
		if (proc instanceof PoolProcess) {
			// With isolate "call", the next call's process starts while this one runs.
			this.#spare(heapCapMb);
			return runCall(execution, new ProcessCall(execution.call, proc, this.#release), this.#watchers);
		}
		return proc.then(
			(ready) => {
				if (execution.cancellation.reason !== undefined) {
					// Cancelled while it waited for room: the process it was given goes back to the pool.
					ready.idle();
					this.#idle.push(ready);
					return { kind: "cancelled", error: execution.cancellation.reason, usage: undefined };
				}
				this.#spare(heapCapMb);
				return runCall(execution, new ProcessCall(execution.call, ready, this.#release), this.#watchers);
			},
			(error: unknown): Settled => {
				const reason = execution.cancellation.reason;
				return reason === undefined ? { kind: "exception", error, usage: undefined } : { kind: "cancelled", error: reason, usage: undefined };
			},
		);
	}

	async close(): Promise<void> {
		this.#closed = true;
		const all = [...this.#all];
		this.#idle.length = 0;
		for (const resume of this.#waiting.splice(0)) {
			resume();
		}
		for (const proc of all) {
			// Held until it has exited: an idle process does not keep the program alive, but close() waits for it.
			proc.busy();
			proc.kill();
		}
		await Promise.all(all.map((proc) => proc.exited()));
	}
}
