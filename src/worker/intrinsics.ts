import { MessagePort } from "node:worker_threads";
import { EventEmitter } from "node:events";

/**
 * The built-ins a call shares with every later call of its worker, and that the worker's own
 * machinery (piscina's loop, the IPC channel, promises, timers) runs on. A call that replaces one
 * of them leaves its worker changed for the next call: broken (`Atomics.notify` made a no-op
 * stops piscina's loop on that thread), or lying to it (`JSON.parse` rewritten). Such a worker
 * is replaced after the call, like one that left work running.
 *
 * What a job's module changes as it loads (a polyfill) is the module's own, the same for every
 * call of it: the watch is taken again after each module load, and counts only what calls change.
 */
const WATCHED: readonly object[] = [Atomics, Promise, Promise.prototype, MessagePort.prototype, EventEmitter.prototype];

/** Single functions the machinery calls on other objects. */
const SINGLE: readonly (readonly [object, string])[] = [
	[Function.prototype, "call"],
	[Function.prototype, "apply"],
	[Function.prototype, "bind"],
	[JSON, "parse"],
	[JSON, "stringify"],
	[process, "nextTick"],
	[process, "emit"],
];

/** Properties of `globalThis` that the worker's machinery calls. */
const GLOBALS = ["setTimeout", "clearTimeout", "setInterval", "clearInterval", "setImmediate", "clearImmediate", "queueMicrotask", "structuredClone", "Promise", "Atomics", "JSON", "process"] as const;

/** Each watched property, and the value it had when the watch was last taken. */
type Taken = { readonly owner: object; readonly key: PropertyKey; readonly value: unknown }[];

// Taken as this module loads, before any job module, so that a task cannot blind the watch.
const { getOwnPropertyNames, getOwnPropertySymbols, getOwnPropertyDescriptor } = Object;

/** What a property holds: its value, or its getter for an accessor. */
function held(descriptor: PropertyDescriptor | undefined): unknown {
	return descriptor === undefined ? undefined : "value" in descriptor ? descriptor.value : descriptor.get;
}

function take(): Taken {
	const taken: Taken = [];
	for (let i = 0; i < WATCHED.length; i++) {
		const owner = WATCHED[i] as object;
		const keys: PropertyKey[] = getOwnPropertyNames(owner);
		const symbols = getOwnPropertySymbols(owner);
		for (let j = 0; j < symbols.length; j++) {
			keys[keys.length] = symbols[j] as symbol;
		}
		for (let j = 0; j < keys.length; j++) {
			const key = keys[j] as PropertyKey;
			const value = held(getOwnPropertyDescriptor(owner, key));
			// Functions only: the watch is on behaviour, and data properties change legitimately (process.exitCode).
			if (typeof value === "function") {
				taken[taken.length] = { owner, key, value };
			}
		}
	}
	for (let i = 0; i < SINGLE.length; i++) {
		const [owner, key] = SINGLE[i] as readonly [object, string];
		taken[taken.length] = { owner, key, value: held(getOwnPropertyDescriptor(owner, key)) };
	}
	for (let i = 0; i < GLOBALS.length; i++) {
		const key = GLOBALS[i] as string;
		taken[taken.length] = { owner: globalThis, key, value: held(getOwnPropertyDescriptor(globalThis, key)) };
	}
	return taken;
}

/** The built-ins of this thread or process as they should be between calls. */
export class IntrinsicsWatch {
	#taken = take();

	/** Takes the watch again: what is there now is the worker's own (after a job module loaded). */
	retake(): void {
		this.#taken = take();
	}

	/** Whether a watched built-in was replaced, added or deleted since the watch was taken. */
	changed(): boolean {
		const taken = this.#taken;
		for (let i = 0; i < taken.length; i++) {
			const { owner, key, value } = taken[i] as Taken[number];
			if (held(getOwnPropertyDescriptor(owner, key)) !== value) {
				return true;
			}
		}
		return false;
	}
}
