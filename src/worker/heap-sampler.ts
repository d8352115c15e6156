import { getHeapStatistics } from "node:v8";

/** Measures the peak heap of a call: at start, at end, and every 25 ms while it awaits. */
export class HeapSampler {
	#peak = 0;
	/** The memory outside the heap when the call started: what earlier calls left is not the call's own. */
	#externalAtStart = -1;
	#externalGrowth = 0;
	#timer: NodeJS.Timeout | undefined;
	readonly #report: ((peak: number, external: number) => void) | undefined;
	readonly #sharedBuffers: boolean;

	/**
	 * `report` receives each sample: the peak of heap and external memory so far, and how far the
	 * memory outside the heap (Buffers, ArrayBuffers) has grown past its level at the call's start,
	 * at most. With `sharedBuffers`, SharedArrayBuffers count as memory outside the heap too (V8's
	 * external memory leaves them out; reading them costs a system call a sample).
	 */
	constructor(report?: (peak: number, external: number) => void, sharedBuffers = false) {
		this.#report = report;
		this.#sharedBuffers = sharedBuffers;
		this.sample();
	}

	watch(): void {
		this.#timer ??= setInterval(() => this.sample(), 25).unref();
	}

	sample(): number {
		const stats = getHeapStatistics();
		const external = this.#sharedBuffers ? Math.max(stats.external_memory, process.memoryUsage().arrayBuffers) : stats.external_memory;
		if (this.#externalAtStart < 0) {
			this.#externalAtStart = external;
		}
		this.#peak = Math.max(this.#peak, stats.used_heap_size + external);
		this.#externalGrowth = Math.max(this.#externalGrowth, external - this.#externalAtStart);
		this.#report?.(this.#peak, this.#externalGrowth);
		return this.#peak;
	}

	stop(): number {
		clearInterval(this.#timer);
		return this.sample();
	}

	/** The most the memory outside the heap grew past its level at the call's start, so far. */
	get externalGrowth(): number {
		return this.#externalGrowth;
	}
}
