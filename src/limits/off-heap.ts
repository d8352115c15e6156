import { CORES, MEMORY_GROWTH_BYTES_PER_MS, type Watchdog } from "./watchdog.ts";

const MiB = 1024 * 1024;

/**
 * Why a limited thread call moves to a process, where it runs again and everything it uses is
 * measured: its memory outside the heap passed its limit (`memoryKind: "auto"`), its thread's
 * heap cap was lifted, or it started worker threads or processes whose use its thread does not
 * show. Not an error: the call goes on.
 */
export class Escalation {
	readonly why: string;
	readonly cause: "off-heap" | "heap-cap-lifted" | "started-unmeasured";

	constructor(why: string, cause: Escalation["cause"] = "off-heap") {
		this.why = why;
		this.cause = cause;
	}
}

/** One running `"auto"` call, as the off-heap watch sees it. */
export interface OffHeapCall {
	/** The call's memory limit, in bytes: its heap cap, and its budget outside the heap. */
	readonly budget: number;
	/** How far the memory outside the heap grew during the call, as its thread last reported. */
	external(): number;
	/** Stops the call so that it moves to a process. */
	escalate(escalation: Escalation): void;
}

/** How old, in ms, a reading of the process's RSS may be to serve as a new baseline. */
const RSS_REUSE_MS = 20;

/** Slack for the memory of the threads themselves, per running auto call. */
const THREAD_SLACK_BYTES = 24 * MiB;

/** Whether a call's memory outside the heap grew past its budget; the escalation to use if it did. */
export function overBudget(call: OffHeapCall): Escalation | undefined {
	const external = call.external();
	return external > call.budget ? new Escalation(`Memory outside the heap passed the limit: it grew by ${Math.round(external / MiB)} MB during the call`) : undefined;
}

/**
 * Watches the memory of the whole process while calls with `memoryKind: "auto"` run in its
 * threads. Their heaps are capped, so when the process grows past the sum of their limits, the
 * growth is outside the heaps (Buffers, ArrayBuffers, native memory): those calls are stopped and
 * re-run in processes, under a true RSS limit.
 */
export class OffHeapWatch {
	readonly intervalMs = 10;
	readonly #watchdog: Watchdog;
	readonly #calls = new Set<OffHeapCall>();
	#baseline = 0;
	#budget = 0;
	#rss = 0;
	#rssAt = Number.NEGATIVE_INFINITY;

	constructor(watchdog: Watchdog) {
		this.#watchdog = watchdog;
	}

	add(call: OffHeapCall): void {
		if (this.#calls.size === 0) {
			// Reading RSS costs a system call: a reading taken in the last moments serves.
			this.#baseline = performance.now() - this.#rssAt <= RSS_REUSE_MS ? this.#rss : this.#readRss();
			this.#watchdog.add(this);
		}
		this.#calls.add(call);
		this.#budget += call.budget + THREAD_SLACK_BYTES;
	}

	delete(call: OffHeapCall): void {
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
		let over: [OffHeapCall, Escalation][] | undefined;
		for (const call of this.#calls) {
			const escalation = overBudget(call);
			if (escalation !== undefined) {
				(over ??= []).push([call, escalation]);
			}
			waitMs = Math.min(waitMs, (call.budget - call.external()) / MEMORY_GROWTH_BYTES_PER_MS);
		}
		if (growth <= this.#budget && over === undefined) {
			return waitMs;
		}
		// Those calls are the cause; when none has reported (a synchronous call cannot), all of them move.
		const moving = over ?? [...this.#calls].map((call): [OffHeapCall, Escalation] => [call, new Escalation(`Memory outside the heap passed the limit: the process grew by ${Math.round(growth / MiB)} MB`)]);
		for (const [call, escalation] of moving) {
			this.delete(call);
			call.escalate(escalation);
		}
		return this.intervalMs;
	}
}
