// The demo's closing report: a table of every call, the totals, and a self-check that compares
// how each call ended with what it was written for.
import { describeEnding, formatMb, formatMs, type Paint, styleOf, type Style } from "./format.ts";
import { type CallState, type DemoState, escalation, tally } from "./run.ts";
import { describeIntent } from "./workload.ts";

/** Whether a call ended as written (its ending and where it ran), or how it did not. */
export function check(call: CallState): string | undefined {
	const { expect, where } = call.spec;
	if (call.ending !== expect) {
		return `written for ${describeEnding(expect)}, ended ${describeEnding(call.ending ?? "unfinished")}`;
	}
	if (call.usage !== undefined && call.usage.where !== where) {
		return `written to run in ${where}, ran in ${call.usage.where}`;
	}
	return undefined;
}

interface Cell {
	readonly text: string;
	readonly style?: Style;
}

/** The report, and whether every call ended as written. */
export function report(state: DemoState, paint: Paint): { readonly text: string; readonly ok: boolean } {
	const header = ["#", "executor", "call", "limits", "ended", "wall", "cpu", "peak mem", "ran in", "escalated", "as written"];
	const rows: Cell[][] = state.calls.map((call) => {
		const usage = call.usage;
		const how = escalation(call);
		const problem = check(call);
		const ending = call.ending ?? "unfinished";
		return [
			{ text: String(call.n) },
			{ text: call.section.name },
			{ text: call.spec.label },
			{ text: describeIntent(call.spec.intent), style: "dim" },
			{ text: describeEnding(ending), style: styleOf(ending) },
			{ text: usage === undefined ? "-" : formatMs(usage.wallMs) },
			{ text: usage === undefined || usage.cpuMs < 0 ? "-" : formatMs(usage.cpuMs) },
			{ text: usage === undefined ? "-" : formatMb(usage.peakMemoryBytes) },
			{ text: usage?.where ?? "-" },
			how === undefined ? { text: "-", style: "dim" } : { text: how === "moved" ? "yes, moved mid-call" : "yes, sent at once", style: "magenta" },
			problem === undefined ? { text: "yes", style: "green" } : { text: `NO: ${problem}`, style: "red" },
		];
	});
	const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => row[i]?.text.length ?? 0)));
	const line = (cells: readonly Cell[]): string =>
		cells
			.map((cell, i) => {
				const padded = i === cells.length - 1 ? cell.text : cell.text.padEnd(widths[i] ?? 0);
				return cell.style === undefined ? padded : paint(cell.style, padded);
			})
			.join("  ")
			.trimEnd();
	const counts = tally(state);
	const elapsed = performance.now() - state.startedAt;
	const failed = state.calls.filter((call) => check(call) !== undefined);
	const limits = counts.limits;
	const unfired = (["wall", "cpu", "heap", "rss"] as const).filter((kind) => limits[kind] === 0).map((kind) => describeEnding(kind));
	if (counts.moved === 0) {
		unfired.push("a move from a thread to a process");
	}
	const lines = [
		line(header.map((text) => ({ text, style: "bold" }))),
		widths.map((width) => "-".repeat(width)).join("  "),
		...rows.map(line),
		"",
		`${counts.total} calls in ${formatMs(elapsed)}: ${plural(counts.results, "result")}, ${plural(counts.errors, "error")}; limits hit: wall ${limits.wall}, CPU ${limits.cpu}, heap ${limits.heap}, RSS ${limits.rss}.`,
		`Progress messages sent from inside running calls (CommPlugin): ${state.calls.reduce((sum, call) => sum + call.messages, 0)}, from ${state.calls.filter((call) => call.messages > 0).length} calls.`,
		`Calls submitted to threads that ran in a process: ${counts.escalated} (${counts.moved} moved there mid-call, ${counts.escalated - counts.moved} sent there at once).`,
		unfired.length === 0 ? "Every limit fired at least once, and calls moved from threads to processes." : paint("red", `Never seen: ${unfired.join(", ")}.`),
		failed.length === 0
			? paint("green", `Self-check: all ${counts.total} calls ended as written.`)
			: paint("red", `Self-check: ${failed.length} of ${counts.total} calls did not end as written: ${failed.map((call) => `#${call.n} (${check(call)})`).join("; ")}.`),
	];
	return { text: lines.join("\n"), ok: failed.length === 0 && unfired.length === 0 };
}

/** `1 result`, `3 results`. */
function plural(count: number, noun: string): string {
	return `${count} ${noun}${count === 1 ? "" : "s"}`;
}
