// Small formatting helpers of the demo: durations, sizes, outcomes and colors.
import * as util from "node:util";
import { type CallState, escalation } from "./run.ts";
import type { Ending } from "./workload.ts";

/** The styles the demo uses. */
export type Style = "red" | "green" | "yellow" | "cyan" | "magenta" | "dim" | "bold";

/** Colors `text` with `style`, or returns it as it is. */
export type Paint = (style: Style, text: string) => string;

/**
 * A painter for `stream`: colors only on a terminal, and never when `NO_COLOR` is set to a
 * non-empty value (no-color.org), nor on a Node without `util.styleText` (before 20.12).
 */
export function painter(stream: NodeJS.WriteStream, env: NodeJS.ProcessEnv = process.env): Paint {
	const styleText = (util as { styleText?: (format: Style, text: string, options?: { validateStream?: boolean }) => string }).styleText;
	if (stream.isTTY !== true || (env["NO_COLOR"] ?? "") !== "" || typeof styleText !== "function") {
		return (_style, text) => text;
	}
	// The choice is made here, for `stream`: newer Nodes would otherwise check process.stdout themselves.
	return (style, text) => styleText(style, text, { validateStream: false });
}

/** `850 ms`, `1.2 s`. */
export function formatMs(ms: number): string {
	return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** `64 MB`. */
export function formatMb(bytes: number): string {
	return `${Math.round(bytes / 2 ** 20)} MB`;
}

const ENDINGS: Readonly<Record<Ending, string>> = {
	result: "result",
	error: "error",
	wall: "wall limit",
	cpu: "CPU limit",
	heap: "heap limit",
	rss: "RSS limit",
	cancelled: "cancelled",
	unfinished: "unfinished",
};

/** An ending in words: `result`, `wall limit`, `RSS limit`. */
export function describeEnding(ending: Ending): string {
	return ENDINGS[ending];
}

/** The style of an ending. */
export function styleOf(ending: Ending | undefined): Style {
	switch (ending) {
		case "result":
			return "green";
		case "error":
		case "cancelled":
		case "unfinished":
			return "red";
		case undefined:
			return "dim";
		default:
			return "yellow";
	}
}

/** How a finished call ended, with its value or its error in short: `result 78498`, `error: SyntaxError`. */
export function describeOutcome(call: CallState): string {
	const ending = call.ending;
	if (ending === undefined) {
		return "running";
	}
	if (ending === "result") {
		const text = JSON.stringify(call.value) ?? String(call.value);
		return `result ${text.length > 24 ? `${text.slice(0, 23)}…` : text}`;
	}
	if (ending === "error") {
		const error = call.value;
		return `error: ${error instanceof Error ? error.name : String(error)}`;
	}
	return describeEnding(ending);
}

/** A finished call's figures: `thread, wall 120 ms, cpu 80 ms, 15 MB`, and how it reached a process. */
export function describeUsage(call: CallState): string {
	const usage = call.usage;
	if (usage === undefined) {
		return "never ran";
	}
	const how = escalation(call);
	const where = how === "moved" ? "process (moved from its thread)" : how === "sent" ? "process (sent from the thread pool)" : usage.where;
	const cpu = usage.cpuMs >= 0 ? `cpu ${formatMs(usage.cpuMs)}` : "cpu -";
	return `${where}, wall ${formatMs(usage.wallMs)}, ${cpu}, peak ${formatMb(usage.peakMemoryBytes)}`;
}
