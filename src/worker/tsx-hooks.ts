/** Whether a module needs a TypeScript loader. */
export const TYPESCRIPT_MODULE = /\.[cm]?tsx?$/;

let registered: Promise<void> | undefined;
let settled = false;

/**
 * Registers `loaders` in the calling thread the first time a call's module needs them (a
 * TypeScript module): they cost a thread or process about 150 ms, which JavaScript jobs never
 * pay. Returns the registration to wait for while it is under way (or once it has failed), or
 * `undefined` when there is nothing to wait for.
 */
export function loadersFor(module: string, loaders: readonly string[]): Promise<void> | undefined {
	if (registered === undefined && loaders.length > 0 && TYPESCRIPT_MODULE.test(module)) {
		registered = registerLoaders(loaders);
		// A failed registration stays in the way: every later call fails with its error.
		registered.then(
			() => {
				settled = true;
			},
			() => {},
		);
	}
	return settled ? undefined : registered;
}

/** Whether loaders were registered in the calling thread (by `loadersFor`). */
export function loadersRegistered(): boolean {
	return settled;
}

/** Registers the loaders in the calling thread (a worker thread, or a pool process). */
export async function registerLoaders(loaders: readonly string[]): Promise<void> {
	for (const loader of loaders) {
		const api = (await import(loader)) as { register?: () => unknown };
		api.register?.();
	}
}
