import { TaskLoadError, type Usage } from "../index.ts";
import { CpuTimeLimitError, LimitExceededError, MemoryLimitError, WallTimeLimitError } from "../pynisher/index.ts";

/** The exit codes of `byop run` (and `byop map`, which uses 0, 1, 2 and 130). */
export const EXIT = {
	/** The call returned. */
	ok: 0,
	/** The call threw (for `map`: some item failed). */
	threw: 1,
	/** Bad usage: an unknown option, a bad value, a module or export that cannot be loaded. */
	usage: 2,
	/** The wall-time limit was passed, as `timeout` says it. */
	wallTime: 124,
	/** The memory limit was passed (128 + SIGKILL). */
	memory: 137,
	/** Interrupted by Ctrl-C (128 + SIGINT). */
	interrupted: 130,
	/** The CPU-time limit was passed (128 + SIGXCPU, as a shell shows it). */
	cpuTime: 152,
} as const;

/** The exit code that says how a call failed. */
export function exitCodeOf(error: unknown): number {
	if (error instanceof WallTimeLimitError) {
		return EXIT.wallTime;
	}
	if (error instanceof CpuTimeLimitError) {
		return EXIT.cpuTime;
	}
	if (error instanceof MemoryLimitError) {
		return EXIT.memory;
	}
	return error instanceof TaskLoadError ? EXIT.usage : EXIT.threw;
}

/** An error as the command prints it: its class name, message and code, and a limit's figures. */
export interface ErrorJson {
	readonly name: string;
	readonly message: string;
	readonly code: string | null;
	/** For a limit error: the limit, in milliseconds or bytes. */
	readonly limit?: number;
	/** For a limit error: what was measured when the call was stopped. */
	readonly observed?: number;
}

/** Describes any thrown value as `{ name, message, code }`. */
export function errorJson(error: unknown): ErrorJson {
	if (!(error instanceof Error)) {
		return { name: "Error", message: typeof error === "string" ? error : safeJson(error) ?? String(error), code: null };
	}
	const code = (error as { code?: unknown }).code;
	const base = { name: error.name, message: error.message, code: typeof code === "string" ? code : null };
	return error instanceof LimitExceededError ? { ...base, limit: error.limit, observed: Math.round(error.observed) } : base;
}

/** One line for a terminal: `CpuTimeLimitError [ERR_CPU_TIME_LIMIT]: CPU time limit of 300 ms reached …`. */
export function errorLine({ name, message, code }: ErrorJson): string {
	return `${name}${code === null ? "" : ` [${code}]`}: ${message}`;
}

/** A call's usage with rounded figures, for JSON output; `null` for a call that never ran. */
export function usageJson(usage: Usage | undefined): Usage | null {
	if (usage === undefined) {
		return null;
	}
	return { wallMs: round(usage.wallMs), cpuMs: round(usage.cpuMs), peakMemoryBytes: usage.peakMemoryBytes, where: usage.where };
}

/** `wall 12.3 ms, cpu 10.1 ms, peak memory 45.2 MB, in a thread`. */
export function usageLine(usage: Usage | undefined): string {
	if (usage === undefined) {
		return "the call did not start";
	}
	const cpu = usage.cpuMs < 0 ? "n/a" : `${usage.cpuMs.toFixed(1)} ms`;
	const where = usage.where === "main" ? "in the main thread" : `in a ${usage.where}`;
	return `wall ${usage.wallMs.toFixed(1)} ms, cpu ${cpu}, peak memory ${(usage.peakMemoryBytes / 1024 / 1024).toFixed(1)} MB, ${where}`;
}

function round(value: number): number {
	return Math.round(value * 10) / 10;
}

/** `JSON.stringify` that writes BigInts as strings; `undefined` when the value has no JSON form (a cycle). */
export function safeJson(value: unknown): string | undefined {
	try {
		return JSON.stringify(value ?? null);
	} catch {
		// A BigInt throws; a replacer on every value would slow down the common case.
		try {
			return JSON.stringify(value, (_key, item: unknown) => (typeof item === "bigint" ? item.toString() : item));
		} catch {
			return undefined;
		}
	}
}

/** Parses a command-line argument or an input value: JSON when it is valid JSON, else the string itself. */
export function parseArgument(text: string): unknown {
	try {
		return JSON.parse(text) as unknown;
	} catch {
		return text;
	}
}
