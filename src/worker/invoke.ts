import { DataCloneError } from "../errors.ts";
import type { ResolvedRef } from "../ref.ts";
import { type CallContext, contextStorage } from "./context.ts";
import type { HeapSampler } from "./heap-sampler.ts";
import { loadedFunction, loadFunction } from "./job-module.ts";
import { findUncloneable } from "./uncloneable.ts";

/** The outcome of running one call where it is: the value, or what was thrown. */
export type Invocation = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: unknown };

/**
 * Loads and calls `ref` with `args` inside the call's context, in the thread that calls it.
 * `sampler.watch()` runs once the call turns out to be asynchronous.
 */
export async function invoke(ref: ResolvedRef, args: readonly unknown[], context: CallContext, sampler?: HeapSampler): Promise<Invocation> {
	try {
		const fn = loadedFunction(ref) ?? (await loadFunction(ref));
		let value = storage.run(context, fn, ...args);
		if (value instanceof Promise || (typeof value === "object" && value !== null && typeof (value as PromiseLike<unknown>).then === "function")) {
			sampler?.watch();
			value = await value;
		}
		const uncloneable = findUncloneable(value);
		if (uncloneable !== undefined) {
			return { ok: false, error: new DataCloneError(`The task returned ${uncloneable}, which cannot be copied to the caller`) };
		}
		return { ok: true, value };
	} catch (error) {
		return { ok: false, error };
	}
}

const storage = contextStorage();
