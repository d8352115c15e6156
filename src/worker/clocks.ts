import { closeQuietly, openOwnSchedstat, readSchedstat } from "../procfs.ts";
import { cpuUsage, min, now, threadCpuUsage } from "./builtins.ts";

/** Measures the CPU time of the calls that run where it is. */
export interface Clock {
	/** The CPU time at a call's start, in nanoseconds; -1 where it cannot be read. */
	start(): number;
	/** The CPU time a call that started at `startNs` and ran for `wallMs` used, in milliseconds; -1 where it cannot be read. */
	spent(startNs: number, wallMs: number): number;
}

/** The resolution of a call's CPU time, in milliseconds (see `ThreadClock`). */
export const CPU_REUSE_MS = 0.05;
/** How old a reading a call may take as its start, in milliseconds (see `ThreadClock`). */
export const START_REUSE_MS = 0.5;

/** Milliseconds between two CPU readings in nanoseconds; -1 when either could not be read. */
export function cpuMs(startNs: number, endNs: number): number {
	return startNs < 0 || endNs < 0 ? -1 : (endNs - startNs) / 1e6;
}

/**
 * The CPU time of the calling thread, read at the start and end of each call. A read of
 * `schedstat` costs a system call of a few microseconds, more than a no-op call itself, so two
 * shortcuts keep it off the path of short calls, since a thread cannot use more CPU time than
 * wall time passes: a call that starts within `START_REUSE_MS` of the last reading takes that
 * reading as its start (what the thread did in between, at most that long, counts towards the
 * call: calls that follow each other closely read once between them), and a call that ends
 * within `CPU_REUSE_MS` of its start reports its wall time, the most CPU time it can have used.
 */
export class ThreadClock implements Clock {
	#fd = -2;
	#last = -1;
	#lastAt = Number.NEGATIVE_INFINITY;

	start(): number {
		if (this.#last >= 0 && now() - this.#lastAt <= START_REUSE_MS) {
			return this.#last;
		}
		return this.read();
	}

	spent(startNs: number, wallMs: number): number {
		if (startNs >= 0 && wallMs <= CPU_REUSE_MS) {
			return wallMs;
		}
		const spent = cpuMs(startNs, this.read());
		// A reused start may hold up to START_REUSE_MS from before the call; no more can be its own.
		return spent < 0 ? spent : min(spent, wallMs + START_REUSE_MS);
	}

	/** The CPU time now, in nanoseconds; -1 where it cannot be read. */
	read(): number {
		if (this.#fd === -2) {
			this.#fd = openOwnSchedstat();
		}
		let ns = this.#fd >= 0 ? readSchedstat(this.#fd) : -1;
		if (ns < 0) {
			const usage = threadCpuUsage?.();
			ns = usage === undefined ? -1 : (usage.user + usage.system) * 1000;
		}
		this.#last = ns;
		this.#lastAt = now();
		return ns;
	}

	/** Closes the descriptor it reads through. */
	close(): void {
		closeQuietly(this.#fd);
		this.#fd = -2;
		this.#last = -1;
	}
}

/** The CPU time of the whole process (all its threads): what a call in a pool process used. */
export class ProcessClock implements Clock {
	start(): number {
		const { user, system } = cpuUsage();
		return (user + system) * 1000;
	}

	spent(startNs: number): number {
		return cpuMs(startNs, this.start());
	}
}
