import { AsyncLocalStorage } from "node:async_hooks";
const KEY = Symbol.for("byop.callContext");
/** One store per thread, shared by every copy of this module loaded in it. */
export function contextStorage() {
    const global = globalThis;
    global[KEY] ??= new AsyncLocalStorage();
    return global[KEY];
}
const NEVER = new AbortController().signal;
/**
 * The context of the call running now, for code inside a task (in a worker thread, a process or
 * the main thread). Outside a task it returns `undefined`.
 *
 * @example
 * export async function train(epochs) {
 *   const { signal } = currentCall() ?? {};
 *   for (let i = 0; i < epochs && !signal?.aborted; i++) await step();
 * }
 */
export function currentCall() {
    return contextStorage().getStore();
}
/** The abort signal of the call running now; outside a task, a signal that never aborts. */
export function taskSignal() {
    return currentCall()?.signal ?? NEVER;
}
