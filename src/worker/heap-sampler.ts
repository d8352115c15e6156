import { construct, getHeapStatistics, max, timers } from "./builtins.ts";

/** Measures the peak heap of a call: at start, at end, and every 25 ms while it awaits. */
export class HeapSampler {
	#peak = 0;
	/** The memory outside the heap when the call started: what earlier calls left is not the call's own. */
	#externalAtStart = -1;
	#externalGrowth = 0;
	#timer: NodeJS.Timeout | undefined;
	readonly #report: ((peak: number, external: number) => void) | undefined;
	readonly #extra: (() => number) | undefined;

	/**
	 * `report` receives each sample: the peak of heap and external memory so far, and how far the
	 * memory outside the heap (Buffers, ArrayBuffers) has grown past its level at the call's start,
	 * at most. `extra` adds memory outside the heap that V8's count leaves out (SharedArrayBuffers
	 * made in this thread, see `countSharedBuffers`).
	 */
	constructor(report?: (peak: number, external: number) => void, extra?: () => number) {
		this.#report = report;
		this.#extra = extra;
		this.sample();
	}

	watch(): void {
		this.#timer ??= timers.setInterval(() => this.sample(), 25).unref();
	}

	sample(): number {
		const stats = getHeapStatistics();
		const external = stats.external_memory + (this.#extra?.() ?? 0);
		if (this.#externalAtStart < 0) {
			this.#externalAtStart = external;
		}
		this.#peak = max(this.#peak, stats.used_heap_size + external);
		this.#externalGrowth = max(this.#externalGrowth, external - this.#externalAtStart);
		this.#report?.(this.#peak, this.#externalGrowth);
		return this.#peak;
	}

	stop(): number {
		timers.clearInterval(this.#timer);
		return this.sample();
	}

	/** The most the memory outside the heap grew past its level at the call's start, so far. */
	get externalGrowth(): number {
		return this.#externalGrowth;
	}
}

let sharedBytes = 0;

/**
 * Counts the bytes of the SharedArrayBuffers made in this thread from now on, which V8's count of
 * external memory leaves out; returns the count so far. Buffers dropped are not subtracted: a
 * call that makes many errs towards its limit.
 */
export function countSharedBuffers(): () => number {
	const native = globalThis.SharedArrayBuffer;
	globalThis.SharedArrayBuffer = new Proxy(native, {
		construct(target, args: [number, ...unknown[]], newTarget) {
			const buffer = construct(target, args, newTarget) as SharedArrayBuffer;
			sharedBytes += buffer.byteLength;
			return buffer;
		},
	});
	return () => sharedBytes;
}
