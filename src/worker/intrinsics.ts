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
export const GLOBALS = ["setTimeout", "clearTimeout", "setInterval", "clearInterval", "setImmediate", "clearImmediate", "queueMicrotask", "structuredClone", "Promise", "Atomics", "JSON", "process"] as const;

/**
 * The values of `GLOBALS`, in their order, read by name: a read of `globalThis` by a computed key
 * takes about ten times as long, and the quick check makes twelve of them after every call.
 */
export function readGlobals(): unknown[] {
	const g = globalThis;
	return [g.setTimeout, g.clearTimeout, g.setInterval, g.clearInterval, g.setImmediate, g.clearImmediate, g.queueMicrotask, g.structuredClone, g.Promise, g.Atomics, g.JSON, g.process];
}

/**
 * How many calls may pass between two full checks (property descriptors): the calls in between
 * get the quick one (values). See `IntrinsicsWatch.changedAfterCall`.
 */
export const FULL_CHECK_EVERY = 32;

/** A call that ran at least this long (ms) is followed by a full check: its cost is nothing beside the call's. */
export const FULL_CHECK_AFTER_MS = 1;

/**
 * Each watched property, what it held when the watch was last taken (its value, or its getter
 * for an accessor), and whether it was other than an own data property then (an accessor, or
 * absent): the quick check reads such a one by its descriptor too.
 */
type Taken = { readonly owner: object; readonly key: PropertyKey; readonly value: unknown; readonly byDescriptor: boolean }[];

// Taken as this module loads, before any job module, so that a task cannot blind the watch.
const { getOwnPropertyNames, getOwnPropertySymbols, getOwnPropertyDescriptor } = Object;

/** What a property holds: its value, or its getter for an accessor. */
function held(descriptor: PropertyDescriptor | undefined): unknown {
	return descriptor === undefined ? undefined : "value" in descriptor ? descriptor.value : descriptor.get;
}

/** One watched property as it is now. */
function entry(owner: object, key: PropertyKey, descriptor: PropertyDescriptor | undefined): Taken[number] {
	return { owner, key, value: held(descriptor), byDescriptor: descriptor === undefined || !("value" in descriptor) };
}

/** The watch: every property, and the globals as they read (for the quick check). */
interface Watch {
	readonly taken: Taken;
	/** The properties other than the globals. */
	readonly others: Taken;
	/** `undefined` when they could not be read (a getter in place of `process` that throws): the quick check is then the full one. */
	readonly globals: readonly unknown[] | undefined;
}

function take(): Watch {
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
			const descriptor = getOwnPropertyDescriptor(owner, key);
			// Functions only: the watch is on behaviour, and data properties change legitimately (process.exitCode).
			if (typeof held(descriptor) === "function") {
				taken[taken.length] = entry(owner, key, descriptor);
			}
		}
	}
	for (let i = 0; i < SINGLE.length; i++) {
		const [owner, key] = SINGLE[i] as readonly [object, string];
		taken[taken.length] = entry(owner, key, getOwnPropertyDescriptor(owner, key));
	}
	const others = taken.slice();
	for (let i = 0; i < GLOBALS.length; i++) {
		const key = GLOBALS[i] as string;
		taken[taken.length] = entry(globalThis, key, getOwnPropertyDescriptor(globalThis, key));
	}
	let globals: unknown[] | undefined;
	try {
		globals = readGlobals();
	} catch {
		globals = undefined;
	}
	return { taken, others, globals };
}

/**
 * The built-ins of this thread or process as they should be between calls. Two checks: the full
 * one compares each property's descriptor with what was taken (a value replaced, deleted, or made
 * an accessor); the quick one reads each property as the machinery does and compares the value
 * (about 70 reads instead of 70 descriptors: about 2 µs less per call). The quick one finds
 * every replacement but those made to hide from it: a property made an accessor whose getter
 * gives back the very function it replaced, or deleted so that what it inherits gives it back,
 * which only code written to slip past the watch does. The full check finds those too.
 */
export class IntrinsicsWatch {
	#watch = take();
	/** Calls since the last full check. */
	#sinceFull = 0;

	/** Takes the watch again: what is there now is the worker's own (after a job module loaded). */
	retake(): void {
		this.#watch = take();
		this.#sinceFull = 0;
	}

	/**
	 * Whether a call just ended changed a watched built-in: the full check after every
	 * `FULL_CHECK_EVERY`th call and after a call that is `thorough` (it threw, or ran long), the
	 * quick one after the others.
	 */
	changedAfterCall(thorough: boolean): boolean {
		if (thorough || ++this.#sinceFull >= FULL_CHECK_EVERY) {
			this.#sinceFull = 0;
			return this.changed();
		}
		return this.changedValue();
	}

	/** Whether a watched built-in was replaced, added or deleted since the watch was taken (the full check). */
	changed(): boolean {
		const { taken } = this.#watch;
		for (let i = 0; i < taken.length; i++) {
			const { owner, key, value } = taken[i] as Taken[number];
			if (held(getOwnPropertyDescriptor(owner, key)) !== value) {
				return true;
			}
		}
		return false;
	}

	/**
	 * Whether a watched built-in reads as another value than when the watch was taken (the quick
	 * check). A property that was an accessor is checked by its descriptor, as reading it would
	 * call its getter, and so is one that was absent (reading it would find what it inherits); one
	 * that has been made an accessor since has its getter called, as the machinery would: a getter
	 * that throws counts as a change. The globals are read as they read when taken (`process`
	 * through its getter).
	 */
	changedValue(): boolean {
		const { others, globals } = this.#watch;
		if (globals === undefined) {
			return this.changed();
		}
		try {
			for (let i = 0; i < others.length; i++) {
				const { owner, key, value, byDescriptor } = others[i] as Taken[number];
				const now = byDescriptor ? held(getOwnPropertyDescriptor(owner, key)) : (owner as Record<PropertyKey, unknown>)[key];
				if (now !== value) {
					return true;
				}
			}
			const read = readGlobals();
			for (let i = 0; i < read.length; i++) {
				if (read[i] !== globals[i]) {
					return true;
				}
			}
		} catch {
			return true;
		}
		return false;
	}
}
