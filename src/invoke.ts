import { getHeapStatistics } from "node:v8";
import { contextStorage } from "./context.ts";
import { DataCloneError } from "./errors.ts";
import { loadFunction } from "./load.ts";
import type { ResolvedRef } from "./ref.ts";

/** The outcome of running one call where it is: the value, or what was thrown. */
export type Invocation = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: unknown };

function heapNow(): number {
	const stats = getHeapStatistics();
	return stats.used_heap_size + stats.external_memory;
}

/** Measures the peak heap of a call: at start, at end, and every 25 ms while it awaits. */
export class HeapSampler {
	#peak = heapNow();
	#timer: NodeJS.Timeout | undefined;

	watch(): void {
		this.#timer ??= setInterval(() => this.sample(), 25).unref();
	}

	sample(): number {
		this.#peak = Math.max(this.#peak, heapNow());
		return this.#peak;
	}

	stop(): number {
		clearInterval(this.#timer);
		return this.sample();
	}
}

/**
 * Loads and calls `ref` with `args` inside a call context, in the thread that calls it.
 * `sampler.watch()` runs once the call turns out to be asynchronous.
 */
export async function invoke(ref: ResolvedRef, args: readonly unknown[], id: number, signal: AbortSignal, sampler?: HeapSampler): Promise<Invocation> {
	try {
		const fn = await loadFunction(ref);
		let value = contextStorage().run({ id, signal }, () => fn(...args));
		if (value instanceof Promise || (typeof value === "object" && value !== null && typeof (value as PromiseLike<unknown>).then === "function")) {
			sampler?.watch();
			value = await value;
		}
		if (typeof value === "function" || typeof value === "symbol") {
			return { ok: false, error: new DataCloneError(`The task returned a ${typeof value}, which cannot be copied to the caller`) };
		}
		return { ok: true, value };
	} catch (error) {
		return { ok: false, error };
	}
}
