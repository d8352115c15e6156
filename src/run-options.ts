import { describeExpected, type Duration, parseDuration } from "./units.ts";

/** How a run ended. */
export type ExitCode = "exhausted" | "timeout" | "stopped" | "cancelled" | "exception";

/** What `run()` resolves to. */
export interface ExitState {
	readonly code: ExitCode;
	/** The error that ended the run, for `"exception"` (and `"cancelled"`: the `CancelledError`). */
	readonly exception?: unknown;
}

/** What to do when a future ends in an exception (or is cancelled). */
export type ExceptionAction = "raise" | "end" | "continue";

/** A class of errors, matched with `instanceof`. */
export type ErrorClass = abstract new (...args: never[]) => unknown;

/** Options of `scheduler.run()`. */
export interface RunOptions {
	/** End the run after this long (`"1h"`, `[30, "s"]`, seconds). @default no timeout */
	readonly timeout?: Duration;
	/** End the run when nothing is queued, running or scheduled with `callLater`. @default true */
	readonly endOnEmpty?: boolean;
	/** When the run ends, wait for queued and running calls; `false` cancels them. @default true */
	readonly wait?: boolean;
	/**
	 * What a future's exception (or a handler's error) does: `"raise"` ends the run and rejects
	 * `run()` with it, `"end"` ends the run with code `"exception"`, `"continue"` goes on. A list of
	 * `[ErrorClass, action]` pairs picks by class, first match wins; no match raises.
	 * @default "raise"
	 */
	readonly onException?: ExceptionAction | readonly (readonly [ErrorClass, ExceptionAction])[];
	/** What a cancelled future does: `"raise"`, `"end"` (code `"cancelled"`) or `"continue"`. @default "raise" */
	readonly onCancelled?: ExceptionAction;
}

/** Run options with every default filled in and every duration in milliseconds. */
export interface FilledRunOptions {
	readonly timeoutMs: number | undefined;
	readonly endOnEmpty: boolean;
	readonly wait: boolean;
	readonly onException: ExceptionAction | readonly (readonly [ErrorClass, ExceptionAction])[];
	readonly onCancelled: ExceptionAction;
}

const ACTIONS: readonly string[] = ["raise", "end", "continue"];

function parseAction(option: string, value: unknown): ExceptionAction {
	if (typeof value !== "string" || !ACTIONS.includes(value)) {
		throw new TypeError(describeExpected(option, '"raise", "end" or "continue"', value));
	}
	return value as ExceptionAction;
}

/** Checks `run()` options at the edge, naming the option and the value in errors. */
export function parseRunOptions(options: unknown): FilledRunOptions {
	if (typeof options !== "object" || options === null) {
		throw new TypeError(describeExpected("options", "an object", options));
	}
	const { timeout, endOnEmpty = true, wait = true, onException = "raise", onCancelled = "raise" } = options as RunOptions;
	for (const [name, value] of [["endOnEmpty", endOnEmpty], ["wait", wait]] as const) {
		if (typeof value !== "boolean") {
			throw new TypeError(describeExpected(name, "a boolean", value));
		}
	}
	let policy: FilledRunOptions["onException"];
	if (Array.isArray(onException)) {
		policy = onException.map((pair: unknown, index) => {
			if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== "function") {
				throw new TypeError(describeExpected(`onException[${index}]`, "an [ErrorClass, action] pair", pair));
			}
			return [pair[0] as ErrorClass, parseAction(`onException[${index}][1]`, pair[1])] as const;
		});
	} else {
		policy = parseAction("onException", onException);
	}
	return {
		timeoutMs: timeout === undefined ? undefined : parseDuration("timeout", timeout),
		endOnEmpty,
		wait,
		onException: policy,
		onCancelled: parseAction("onCancelled", onCancelled),
	};
}

/** The action the `onException` policy gives `error`: the first matching class wins; no match raises. */
export function exceptionAction(policy: FilledRunOptions["onException"], error: unknown): ExceptionAction {
	if (typeof policy === "string") {
		return policy;
	}
	for (const [ErrorClass, action] of policy) {
		if (error instanceof (ErrorClass as unknown as abstract new () => unknown)) {
			return action;
		}
	}
	return "raise";
}

/** How a run is ending: its exit state, and whether `run()` rejects with the exception. */
export interface Ending extends ExitState {
	readonly raise: boolean;
}

/**
 * The ending of a run after an error arrived while it was already ending: the error is not lost.
 * Under `"raise"` it makes `run()` reject (unless it already does); under `"end"` it replaces
 * an ending that was merely `"exhausted"`.
 */
export function laterEnding(current: Ending, next: Ending): Ending {
	return (next.raise && !current.raise) || (!next.raise && current.code === "exhausted") ? next : current;
}
