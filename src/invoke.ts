import { getHeapStatistics } from "node:v8";
import { type CallContext, contextStorage } from "./context.ts";
import { DataCloneError } from "./errors.ts";
import { loadedFunction, loadFunction } from "./load.ts";
import type { ResolvedRef } from "./ref.ts";

/** The outcome of running one call where it is: the value, or what was thrown. */
export type Invocation = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: unknown };

/** Measures the peak heap of a call: at start, at end, and every 25 ms while it awaits. */
export class HeapSampler {
	#peak = 0;
	/** The memory outside the heap when the call started: what earlier calls left is not the call's own. */
	#externalAtStart = -1;
	#externalGrowth = 0;
	#timer: NodeJS.Timeout | undefined;
	readonly #report: ((peak: number, external: number) => void) | undefined;

	/**
	 * `report` receives each sample: the peak of heap and external memory so far, and how far the
	 * memory outside the heap (Buffers, ArrayBuffers) has grown past its level at the call's start,
	 * at most.
	 */
	constructor(report?: (peak: number, external: number) => void) {
		this.#report = report;
		this.sample();
	}

	watch(): void {
		this.#timer ??= setInterval(() => this.sample(), 25).unref();
	}

	sample(): number {
		const stats = getHeapStatistics();
		if (this.#externalAtStart < 0) {
			this.#externalAtStart = stats.external_memory;
		}
		this.#peak = Math.max(this.#peak, stats.used_heap_size + stats.external_memory);
		this.#externalGrowth = Math.max(this.#externalGrowth, stats.external_memory - this.#externalAtStart);
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

/**
 * Loads and calls `ref` with `args` inside the call's context, in the thread that calls it.
 * `sampler.watch()` runs once the call turns out to be asynchronous.
 */
export async function invoke(ref: ResolvedRef, args: readonly unknown[], context: CallContext, sampler?: HeapSampler, copied = true): Promise<Invocation> {
	try {
		const fn = loadedFunction(ref) ?? (await loadFunction(ref));
		let value = storage.run(context, fn, ...args);
		if (value instanceof Promise || (typeof value === "object" && value !== null && typeof (value as PromiseLike<unknown>).then === "function")) {
			sampler?.watch();
			value = await value;
		}
		const uncloneable = copied ? findUncloneable(value) : undefined;
		if (uncloneable !== undefined) {
			return { ok: false, error: new DataCloneError(`The task returned ${uncloneable}, which cannot be copied to the caller`) };
		}
		return { ok: true, value };
	} catch (error) {
		return { ok: false, error };
	}
}

const storage = contextStorage();

/** How many values `findUncloneable` looks at before it trusts the rest. */
const WALK_LIMIT = 50_000;

/**
 * Looks through a result for what the structured clone algorithm refuses (functions, symbols,
 * promises, weak collections) and describes where it is, e.g. "a function at .model.predict".
 */
export function findUncloneable(root: unknown): string | undefined {
	if (typeof root !== "object" && typeof root !== "function" && typeof root !== "symbol") {
		return undefined;
	}
	const stack: [unknown, string][] = [[root, ""]];
	const seen = new Set<object>();
	let visited = 0;
	while (stack.length > 0 && visited++ < WALK_LIMIT) {
		const [value, path] = stack.pop()!;
		if (typeof value === "function" || typeof value === "symbol") {
			return `a ${typeof value}${path === "" ? "" : ` at ${path}`}`;
		}
		if (typeof value !== "object" || value === null || seen.has(value) || ArrayBuffer.isView(value) || value instanceof ArrayBuffer) {
			continue;
		}
		seen.add(value);
		if (value instanceof Promise || value instanceof WeakMap || value instanceof WeakSet) {
			return `a ${value.constructor.name}${path === "" ? "" : ` at ${path}`}`;
		}
		if (value instanceof Map) {
			for (const [key, item] of value) {
				stack.push([key, `${path}<key>`], [item, `${path}.get(${String(key)})`]);
			}
		} else if (value instanceof Set) {
			for (const item of value) {
				stack.push([item, `${path}<item>`]);
			}
		} else if (!(value instanceof Date) && !(value instanceof RegExp) && !(value instanceof Error)) {
			for (const key of Object.keys(value)) {
				stack.push([(value as Record<string, unknown>)[key], Array.isArray(value) ? `${path}[${key}]` : `${path}.${key}`]);
			}
		}
	}
	return undefined;
}
