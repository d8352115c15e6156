import { TaskLoadError } from "../errors.ts";
import type { ResolvedRef } from "../ref.ts";

const modules = new Map<string, Promise<Record<string, unknown>>>();
/** Functions already loaded, by module and export: later calls find them without waiting. */
const loaded = new Map<string, Map<string, (...args: unknown[]) => unknown>>();

/** The function `ref` names when it has been loaded in this thread before, else `undefined`. */
export function loadedFunction(ref: ResolvedRef): ((...args: unknown[]) => unknown) | undefined {
	return loaded.get(ref.module)?.get(ref.name);
}

/** Imports `ref.module` once per thread and returns the function it exports as `ref.name`. */
export async function loadFunction(ref: ResolvedRef): Promise<(...args: unknown[]) => unknown> {
	let loading = modules.get(ref.module);
	if (loading === undefined) {
		loading = import(ref.module) as Promise<Record<string, unknown>>;
		modules.set(ref.module, loading);
		// A failed import is not cached: the file may be fixed before the next call.
		loading.catch(() => modules.delete(ref.module));
	}
	let namespace: Record<string, unknown>;
	try {
		namespace = await loading;
	} catch (error) {
		const reason = error instanceof Error ? error.message : String(error);
		throw new TaskLoadError(`Cannot load module "${ref.module}" for export "${ref.name}": ${reason}`, ref.module, ref.name, { cause: error });
	}
	let fn = namespace[ref.name];
	// A CommonJS module's named exports may sit on its default export.
	if (fn === undefined && ref.name !== "default" && typeof namespace["default"] === "object" && namespace["default"] !== null) {
		fn = (namespace["default"] as Record<string, unknown>)[ref.name];
	}
	if (typeof fn !== "function") {
		const what = fn === undefined ? "has no export" : `exports a ${typeof fn} as`;
		throw new TaskLoadError(`Module "${ref.module}" ${what} "${ref.name}"; expected a function`, ref.module, ref.name);
	}
	let exports = loaded.get(ref.module);
	if (exports === undefined) {
		exports = new Map();
		loaded.set(ref.module, exports);
	}
	exports.set(ref.name, fn as (...args: unknown[]) => unknown);
	return fn as (...args: unknown[]) => unknown;
}
