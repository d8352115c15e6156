/**
 * Internal: what tests and benchmarks read of a scheduler's running parts (its pools, its
 * watchdog), kept out of the classes' public surface. Not exported by the package.
 */
const views = new WeakMap<object, Readonly<Record<string, () => unknown>>>();

/** Lets tests read `owner` through the given views. */
export function exposeForTests(owner: object, ownerViews: Readonly<Record<string, () => unknown>>): void {
	views.set(owner, ownerViews);
}

/** Reads view `name` of `owner`; `undefined` when it exposes none. */
export function viewOf<T>(owner: object, name: string): T | undefined {
	return views.get(owner)?.[name]?.() as T | undefined;
}
