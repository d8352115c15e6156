import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FULL_CHECK_EVERY, GLOBALS, IntrinsicsWatch, readGlobals } from "../src/worker/intrinsics.ts";

// Each test changes a watched built-in of this thread and puts it back before it awaits anything,
// with a stand-in that behaves as the original does: the test runner runs on them too.

/** Replaces `owner[key]` with `replacement` (as `how` does it) while `during` runs, then puts back the property as it was. */
function withPatch(owner: object, key: PropertyKey, how: (original: unknown) => void, during: () => void): void {
	const descriptor = Object.getOwnPropertyDescriptor(owner, key);
	try {
		how(descriptor === undefined ? undefined : "value" in descriptor ? descriptor.value : descriptor.get);
		during();
	} finally {
		if (descriptor === undefined) {
			delete (owner as Record<PropertyKey, unknown>)[key];
		} else {
			Object.defineProperty(owner, key, descriptor);
		}
	}
}

/** How many calls `watch` lets pass before it reports a change: 0 when the first one does; -1 when none of `limit` does. */
function callsUntilFound(watch: IntrinsicsWatch, limit: number): number {
	for (let i = 0; i < limit; i++) {
		if (watch.changedAfterCall(false)) {
			return i;
		}
	}
	return -1;
}

describe("the watch on the built-ins a worker runs on", () => {
	it("finds nothing while nothing changed, after many calls (quick and full checks alike)", () => {
		const watch = new IntrinsicsWatch();
		assert.equal(callsUntilFound(watch, 3 * FULL_CHECK_EVERY), -1);
		assert.equal(watch.changed(), false);
		assert.equal(watch.changedValue(), false);
	});

	it("reads the globals by name as they are by key", () => {
		const byKey = GLOBALS.map((key) => (globalThis as Record<string, unknown>)[key]);
		assert.deepEqual(readGlobals(), byKey);
	});

	it("the quick check finds a function replaced, a global replaced, and a function deleted, at the next call", () => {
		const cases: [object, PropertyKey, (original: unknown) => void][] = [
			[Atomics, "isLockFree", (original) => Object.assign(Atomics, { isLockFree: (size: number) => (original as (size: number) => boolean)(size) })],
			[globalThis, "clearImmediate", (original) => Object.assign(globalThis, { clearImmediate: (id: NodeJS.Immediate) => (original as (id: NodeJS.Immediate) => void)(id) })],
			[Promise, "allSettled", () => Reflect.deleteProperty(Promise, "allSettled")],
			[Function.prototype, "bind", (original) => Object.defineProperty(Function.prototype, "bind", { value: function (this: unknown, ...args: unknown[]) { return (original as (...a: unknown[]) => unknown).apply(this, args); }, configurable: true, writable: true })],
		];
		for (const [owner, key, how] of cases) {
			const watch = new IntrinsicsWatch();
			withPatch(owner, key, how, () => {
				assert.equal(watch.changedValue(), true, `quick check, ${String(key)}`);
				assert.equal(watch.changed(), true, `full check, ${String(key)}`);
				assert.equal(callsUntilFound(watch, 1), 0, `after a call, ${String(key)}`);
			});
			assert.equal(watch.changed(), false, `${String(key)} put back`);
		}
	});

	it("a getter put in a function's place is called by the quick check: one that gives something else, or throws, is a change", () => {
		for (const get of [() => () => 0, () => { throw new Error("no"); }]) {
			const watch = new IntrinsicsWatch();
			withPatch(Atomics, "isLockFree", () => Object.defineProperty(Atomics, "isLockFree", { get, configurable: true }), () => {
				assert.equal(watch.changedValue(), true);
			});
		}
	});

	it("a getter that gives back the very function it replaced is found by the full check: within FULL_CHECK_EVERY calls, or at once after a call that threw or ran long", () => {
		const watch = new IntrinsicsWatch();
		withPatch(Atomics, "isLockFree", (original) => Object.defineProperty(Atomics, "isLockFree", { get: () => original, configurable: true }), () => {
			assert.equal(watch.changed(), true);
			const found = callsUntilFound(watch, FULL_CHECK_EVERY + 1);
			assert.ok(found >= 0 && found < FULL_CHECK_EVERY, `found after ${found} calls`);
			assert.equal(watch.changedAfterCall(true), true);
		});
	});

	it("what changed before the watch is taken again (a job module's load) is no change", () => {
		const watch = new IntrinsicsWatch();
		withPatch(Atomics, "isLockFree", (original) => Object.assign(Atomics, { isLockFree: (size: number) => (original as (size: number) => boolean)(size) }), () => {
			watch.retake();
			assert.equal(watch.changed(), false);
			assert.equal(callsUntilFound(watch, 2 * FULL_CHECK_EVERY), -1);
		});
		// Put back, it differs from what was taken.
		assert.equal(watch.changedValue(), true);
	});
});
