import bytes from "bytes";
import ms from "ms";

/** A time unit accepted in `[value, unit]` form. */
export type TimeUnit = "ms" | "s" | "m" | "h";
/** A memory unit accepted in `[value, unit]` form (1 kb = 1024 b). */
export type MemoryUnit = "b" | "kb" | "mb" | "gb";

/**
 * A duration: `[value, unit]`, a string such as `"5m"` or `"250ms"`, or a number of seconds.
 *
 * @example [5, "m"]  "90s"  2.5
 */
export type Duration = readonly [number, TimeUnit] | string | number;

/**
 * An amount of memory: `[value, unit]`, a string such as `"2gb"` or `"512mb"`, or a number of bytes.
 *
 * @example [2, "gb"]  "512mb"  1048576
 */
export type MemorySize = readonly [number, MemoryUnit] | string | number;

const TIME_UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const MEMORY_UNITS: Readonly<Record<string, number>> = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 };

function show(value: unknown): string {
	if (typeof value === "string") {
		return `\`"${value}"\` (string)`;
	}
	if (Array.isArray(value)) {
		return `\`${JSON.stringify(value)}\` (array)`;
	}
	if (typeof value === "bigint" || typeof value === "symbol" || typeof value === "function") {
		return `\`${String(value)}\` (${typeof value})`;
	}
	return `\`${value === null ? "null" : String(value)}\` (${typeof value})`;
}

function expected(option: string, what: string, value: unknown): string {
	return `Expected \`${option}\` to be ${what}, got ${show(value)}`;
}

function positive(option: string, what: string, value: unknown, result: number): number {
	if (!Number.isFinite(result) || result <= 0) {
		throw new RangeError(expected(option, what, value));
	}
	return result;
}

/**
 * Parses a duration given in any accepted form into milliseconds.
 *
 * @param option The option's name, used in error messages.
 * @throws {TypeError} When the value is not a number, a string or a `[value, unit]` pair.
 * @throws {RangeError} When the value is zero, negative, not finite, or its unit is unknown.
 */
export function parseDuration(option: string, value: unknown): number {
	const what = "a positive duration ([value, \"s\" | \"m\" | \"h\"], \"5m\", or seconds)";
	if (typeof value === "number") {
		return positive(option, what, value, value * 1000);
	}
	if (typeof value === "string") {
		const trimmed = value.trim();
		// A bare number in a string means seconds, like a number does.
		const parsed = /^[+-]?\d+(\.\d+)?$/.test(trimmed) ? Number(trimmed) * 1000 : ms(trimmed as ms.StringValue);
		return positive(option, what, value, parsed ?? Number.NaN);
	}
	if (Array.isArray(value) && value.length === 2 && typeof value[0] === "number" && typeof value[1] === "string") {
		const factor = TIME_UNITS[value[1].toLowerCase()];
		if (factor === undefined) {
			throw new RangeError(`${expected(option, what, value)}: unknown time unit "${value[1]}"`);
		}
		return positive(option, what, value, value[0] * factor);
	}
	throw new TypeError(expected(option, what, value));
}

/**
 * Parses an amount of memory given in any accepted form into bytes (1 kb = 1024 b).
 *
 * @param option The option's name, used in error messages.
 * @throws {TypeError} When the value is not a number, a string or a `[value, unit]` pair.
 * @throws {RangeError} When the value is zero, negative, not finite, or its unit is unknown.
 */
export function parseMemory(option: string, value: unknown): number {
	const what = "a positive memory size ([value, \"b\" | \"kb\" | \"mb\" | \"gb\"], \"2gb\", or bytes)";
	if (typeof value === "number") {
		return Math.floor(positive(option, what, value, value));
	}
	if (typeof value === "string") {
		const trimmed = value.trim();
		// bytes.parse reads "2 gigs" as 2: accept only the units it knows.
		const parsed = /^[+-]?\d+(\.\d+)?\s*(b|kb|mb|gb|tb)?$/i.test(trimmed) ? bytes.parse(trimmed) : Number.NaN;
		return Math.floor(positive(option, what, value, parsed ?? Number.NaN));
	}
	if (Array.isArray(value) && value.length === 2 && typeof value[0] === "number" && typeof value[1] === "string") {
		const factor = MEMORY_UNITS[value[1].toLowerCase()];
		if (factor === undefined) {
			throw new RangeError(`${expected(option, what, value)}: unknown memory unit "${value[1]}"`);
		}
		return Math.floor(positive(option, what, value, value[0] * factor));
	}
	throw new TypeError(expected(option, what, value));
}

/** Parses an optional duration: `undefined` stays `undefined`. */
export function parseOptionalDuration(option: string, value: unknown): number | undefined {
	return value === undefined ? undefined : parseDuration(option, value);
}

/** Parses an optional memory size: `undefined` stays `undefined`. */
export function parseOptionalMemory(option: string, value: unknown): number | undefined {
	return value === undefined ? undefined : parseMemory(option, value);
}

/** Checks a non-negative duration such as a grace period, where zero is allowed. */
export function parseGrace(option: string, value: unknown): number {
	if (value === 0 || value === "0") {
		return 0;
	}
	return parseDuration(option, value);
}

/** Checks a positive integer option such as `maxWorkers`. */
export function parseCount(option: string, value: unknown): number {
	if (typeof value !== "number") {
		throw new TypeError(expected(option, "a positive integer", value));
	}
	if (!Number.isInteger(value) || value < 1) {
		throw new RangeError(expected(option, "a positive integer", value));
	}
	return value;
}

/** Formats an error message naming the option, what was expected, and what was given. */
export function describeExpected(option: string, what: string, value: unknown): string {
	return expected(option, what, value);
}
