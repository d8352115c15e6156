// The benchmark's results: one row per figure, printed as a table and written to
// docs/benchmarks.md with an SVG chart beside it.
import { cpus, loadavg, totalmem } from "node:os";
import { readFileSync } from "node:fs";
import type { Summary } from "./harness.ts";

/** A target a figure is held to: `stat op value`. */
export interface Target {
	readonly stat: "median" | "p95";
	readonly op: ">=" | "<=";
	readonly value: number;
}

/** How a row's figure is shown. */
export type Shape = "range" | "p95";

export interface Row {
	readonly section: string;
	readonly measure: string;
	readonly value: Summary;
	/** `"range"`: median [min – max]; `"p95"`: median / p95 [min – max]. */
	readonly shape: Shape;
	readonly unit: string;
	readonly digits: number;
	/** What the figure is compared with: a peer's figure, pynisher's, or nothing. */
	readonly reference?: string;
	readonly target?: Target;
	/** Why the figure misses its target, for the docs; shown when it does, or when some of its rounds do. */
	readonly whyMissed?: string;
	/** Drawn in the chart: throughput ratios, or overshoot past a limit. */
	readonly chart?: { readonly group: "ratio" | "overshoot"; readonly label: string };
}

export function format(value: number, digits: number): string {
	if (!Number.isFinite(value)) {
		return "n/a";
	}
	return value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function figure(row: Row): string {
	const { median, p95, min, max, n } = row.value;
	if (n === 0) {
		return "n/a";
	}
	const unit = row.unit === "" ? "" : row.unit.startsWith("×") || row.unit === "%" ? row.unit : ` ${row.unit}`;
	const f = (value: number): string => format(value, row.digits);
	const spread = n > 1 ? ` [${f(min)} – ${f(max)}]` : "";
	return row.shape === "p95" ? `${f(median)} / ${f(p95)}${unit}${spread}` : `${f(median)}${unit}${spread}`;
}

export function targetText(target: Target | undefined, unit: string): string {
	if (target === undefined) {
		return "";
	}
	const u = unit === "" ? "" : unit.startsWith("×") || unit === "%" ? unit : ` ${unit}`;
	return `${target.stat} ${target.op === ">=" ? "≥" : "≤"} ${format(target.value, target.value % 1 === 0 ? 0 : 2)}${u}`;
}

/** `"met"`, `"missed"`, or `""` for a row without a target. */
export function status(row: Row): "met" | "missed" | "" {
	if (row.target === undefined) {
		return "";
	}
	const value = row.value[row.target.stat];
	if (!Number.isFinite(value)) {
		return "missed";
	}
	return (row.target.op === ">=" ? value >= row.target.value : value <= row.target.value) ? "met" : "missed";
}

/** The rows as a plain-text table for the terminal. */
export function printTable(rows: readonly Row[]): string {
	const header = ["measure", "byop", "reference", "target", "status"];
	const lines = rows.map((row) => [row.measure, figure(row), row.reference ?? "", targetText(row.target, row.unit), status(row)]);
	const widths = header.map((title, i) => Math.min(72, Math.max(title.length, ...lines.map((line) => line[i]!.length))));
	const pad = (cells: readonly string[]): string => cells.map((cell, i) => cell.padEnd(widths[i]!)).join("  ").trimEnd();
	const out: string[] = [];
	let section = "";
	for (const [i, row] of rows.entries()) {
		if (row.section !== section) {
			section = row.section;
			out.push("", section, pad(header), pad(widths.map((width) => "-".repeat(width))));
		}
		out.push(pad(lines[i]!));
	}
	return out.join("\n");
}

/** What the figures were measured on. */
export interface Machine {
	readonly cpu: string;
	readonly cores: number;
	readonly memoryGb: number;
	readonly node: string;
	readonly platform: string;
	readonly date: string;
	readonly versions: Readonly<Record<string, string>>;
	readonly durationS: number;
	/** The 1-minute load average when the run started and when it ended: other work on the machine. */
	readonly loadAtStart: number;
	readonly loadAtEnd: number;
}

/** The 1-minute load average now. */
export function currentLoad(): number {
	return loadavg()[0] ?? 0;
}

export function describeMachine(durationS: number, loadAtStart: number, loadAtEnd: number): Machine {
	const versions: Record<string, string> = {};
	for (const name of ["piscina", "tinypool", "workerpool", "tsx"]) {
		try {
			const file = new URL(`../../node_modules/${name}/package.json`, import.meta.url);
			versions[name] = (JSON.parse(readFileSync(file, "utf8")) as { version: string }).version;
		} catch {
			versions[name] = "?";
		}
	}
	const list = cpus();
	return {
		cpu: list[0]?.model.trim() ?? "unknown",
		cores: list.length,
		memoryGb: Math.round(totalmem() / 2 ** 30),
		node: process.version,
		platform: `${process.platform} ${process.arch}`,
		date: new Date().toISOString().slice(0, 10),
		versions,
		durationS,
		loadAtStart,
		loadAtEnd,
	};
}

function escapeXml(text: string): string {
	return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/**
 * A hand-drawn SVG: left, throughput ratios against piscina (median bar, min–max whisker, target
 * tick); right, overshoot past each limit (median and p95 bars, target tick).
 */
export function chart(rows: readonly Row[]): string {
	const ratios = rows.filter((row) => row.chart?.group === "ratio");
	const overshoots = rows.filter((row) => row.chart?.group === "overshoot");
	const width = 1060;
	const rowHeight = 30;
	const top = 56;
	const height = top + Math.max(ratios.length, overshoots.length) * rowHeight + 56;
	const parts: string[] = [];
	parts.push(
		`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
		`<rect width="${width}" height="${height}" fill="#ffffff"/>`,
	);
	const panel = (x0: number, title: string, items: readonly Row[], scaleMax: number, step: number, unit: string, drawP95: boolean): void => {
		const labelWidth = 180;
		const plotX = x0 + labelWidth;
		const plotWidth = 220;
		const scale = (value: number): number => plotX + (Math.max(0, Math.min(value, scaleMax)) / scaleMax) * plotWidth;
		parts.push(`<text x="${x0}" y="22" font-size="14" font-weight="bold">${escapeXml(title)}</text>`);
		const axisY = top + items.length * rowHeight + 4;
		parts.push(`<line x1="${plotX}" y1="${top - 8}" x2="${plotX}" y2="${axisY}" stroke="#444"/>`);
		parts.push(`<line x1="${plotX}" y1="${axisY}" x2="${plotX + plotWidth}" y2="${axisY}" stroke="#444"/>`);
		for (let value = 0; value <= scaleMax + step / 1000; value += step) {
			const x = scale(value);
			parts.push(`<line x1="${x}" y1="${axisY}" x2="${x}" y2="${axisY + 4}" stroke="#444"/>`);
			parts.push(`<text x="${x}" y="${axisY + 17}" text-anchor="middle" fill="#444">${format(value, step < 1 ? 1 : 0)}${unit}</text>`);
		}
		for (const [i, row] of items.entries()) {
			const y = top + i * rowHeight;
			const state = status(row);
			const colour = state === "missed" ? "#d9534f" : state === "met" ? "#4a9a4a" : "#7a8fa6";
			parts.push(`<text x="${plotX - 8}" y="${y + 14}" text-anchor="end">${escapeXml(row.chart?.label ?? row.measure)}</text>`);
			if (drawP95 && Number.isFinite(row.value.p95)) {
				parts.push(`<rect x="${plotX}" y="${y + 3}" width="${scale(row.value.p95) - plotX}" height="16" fill="${colour}" opacity="0.35"/>`);
			}
			if (Number.isFinite(row.value.median)) {
				parts.push(`<rect x="${plotX}" y="${y + 3}" width="${scale(row.value.median) - plotX}" height="16" fill="${colour}"/>`);
			}
			if (!drawP95 && row.value.n > 1) {
				const x1 = scale(row.value.min);
				const x2 = scale(row.value.max);
				parts.push(`<line x1="${x1}" y1="${y + 11}" x2="${x2}" y2="${y + 11}" stroke="#222"/>`);
				parts.push(`<line x1="${x1}" y1="${y + 6}" x2="${x1}" y2="${y + 16}" stroke="#222"/><line x1="${x2}" y1="${y + 6}" x2="${x2}" y2="${y + 16}" stroke="#222"/>`);
			}
			if (row.target !== undefined) {
				const x = scale(row.target.value);
				parts.push(`<line x1="${x}" y1="${y}" x2="${x}" y2="${y + 22}" stroke="#000" stroke-width="2" stroke-dasharray="3,2"/>`);
			}
			const suffix = row.unit.startsWith("×") ? "×" : row.unit === "%" ? " %" : ` ${row.unit}`;
			const text = `${format(row.value.median, row.digits)}${drawP95 ? ` / ${format(row.value.p95, row.digits)}` : ""}${suffix}`;
			parts.push(`<text x="${plotX + plotWidth + 8}" y="${y + 14}" fill="#222">${escapeXml(text)}</text>`);
		}
	};
	const ratioMax = Math.max(1.2, ...ratios.map((row) => (Number.isFinite(row.value.max) ? Math.ceil(row.value.max * 5) / 5 : 0)));
	panel(10, "Throughput relative to piscina (median, min–max)", ratios, ratioMax, ratioMax > 1.2 ? 0.4 : 0.2, "×", false);
	const highest = Math.max(10, ...overshoots.map((row) => (Number.isFinite(row.value.p95) ? row.value.p95 : 0)), ...overshoots.map((row) => row.target?.value ?? 0));
	const step = [1, 2, 5, 10, 20, 50, 100, 200, 500].find((candidate) => candidate * 5 >= highest) ?? 1000;
	panel(540, "Overshoot past the limit (median / p95)", overshoots, Math.ceil(highest / step) * step, step, "", true);
	const legendY = height - 14;
	parts.push(
		`<rect x="10" y="${legendY - 10}" width="12" height="12" fill="#4a9a4a"/><text x="28" y="${legendY}">target met</text>`,
		`<rect x="110" y="${legendY - 10}" width="12" height="12" fill="#d9534f"/><text x="128" y="${legendY}">target missed</text>`,
		`<rect x="230" y="${legendY - 10}" width="12" height="12" fill="#7a8fa6"/><text x="248" y="${legendY}">no target</text>`,
		`<line x1="330" y1="${legendY - 10}" x2="330" y2="${legendY + 2}" stroke="#000" stroke-width="2" stroke-dasharray="3,2"/><text x="338" y="${legendY}">target</text>`,
		`<text x="540" y="${legendY}" fill="#444">ms for time limits, % of the limit for memory (below 0: stopped before the limit)</text>`,
	);
	parts.push("</svg>");
	return `${parts.join("\n")}\n`;
}

/** One paragraph per section: how its figures were measured. */
export type Methods = Readonly<Record<string, string>>;

export function markdown(rows: readonly Row[], machine: Machine, methods: Methods): string {
	const out: string[] = [];
	out.push(
		"# Benchmarks",
		"",
		"What byop costs on top of a bare worker pool, and how closely it holds its limits. The figures below come from `npm run bench` (`test/bench/run.ts`), which writes this page and the chart beside it.",
		"",
		`Measured on ${machine.date}: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGb} GB, ${machine.platform}, Node ${machine.node}; piscina ${machine.versions["piscina"]}, tinypool ${machine.versions["tinypool"]}, workerpool ${machine.versions["workerpool"]}; byop runs from its JavaScript build in dist/ (the benchmark itself runs under tsx ${machine.versions["tsx"]}). The whole run took ${Math.round(machine.durationS)} s; the 1-minute load average was ${machine.loadAtStart.toFixed(2)} when it started and ${machine.loadAtEnd.toFixed(2)} when it ended (the run itself keeps 2 to 3 threads busy; more than that is other work on the machine, which skews the figures).`,
		"",
		"![Throughput relative to piscina, and overshoot past each limit](benchmarks.svg)",
		"",
		"## How to read the figures",
		"",
		"- Each figure is the median of its rounds (or trials) with the minimum and maximum in brackets; limit figures give median / p95.",
		"- Contenders run alternately within a round (A, B, A, B…, order reversed every other round), and every comparison is a ratio taken within one round, so that drift of the machine hits both sides alike. A ratio above 1 means byop is faster.",
		"- Every pool gets the same warm-up before it is measured: its threads are started and 2,000 calls are run first. Pool start-up is reported on its own.",
		"- Overshoot is how far past its limit a task was when it was stopped: `error.observed - error.limit` as byop reports it, and the same seen from outside (the wall time from `submit()` to the task's `EXCEPTION` event, minus the limit).",
		"",
	);
	let section = "";
	for (const row of rows) {
		if (row.section !== section) {
			section = row.section;
			out.push("", `## ${section}`, "");
			const method = methods[section];
			if (method !== undefined) {
				out.push(method, "");
			}
			out.push("| measure | byop | reference | target | status |", "| --- | --- | --- | --- | --- |");
		}
		const state = status(row);
		out.push(`| ${row.measure} | ${figure(row)} | ${row.reference ?? ""} | ${targetText(row.target, row.unit)} | ${state === "missed" ? "**missed**" : state} |`);
	}
	const missed = rows.filter((row) => status(row) === "missed");
	out.push("", "## Targets missed, and why", "");
	if (missed.length === 0) {
		out.push("Every target is met.");
	} else {
		const told = new Map<string, string>();
		for (const row of missed) {
			const reason = row.whyMissed ?? "No cause identified yet.";
			const earlier = told.get(reason);
			out.push(`- **${row.section}: ${row.measure}** — ${figure(row)}, target ${targetText(row.target, row.unit)}. ${earlier === undefined ? reason : `Same cause as for “${earlier}” above.`}`);
			if (earlier === undefined) {
				told.set(reason, row.measure);
			}
		}
	}
	// A median that meets its target while some rounds do not is as much the machine as byop.
	const close = rows.filter((row) => status(row) === "met" && row.whyMissed !== undefined && row.value.n > 1 && roundsMiss(row));
	if (close.length > 0) {
		out.push("", "## Targets met by the median, with rounds that missed them", "");
		for (const row of close) {
			out.push(`- **${row.section}: ${row.measure}** — ${figure(row)}, target ${targetText(row.target, row.unit)}. Where the gap comes from: ${row.whyMissed}`);
		}
	}
	out.push("");
	return out.join("\n");
}

/** Whether some of a row's rounds fall on the wrong side of its (median) target. */
function roundsMiss(row: Row): boolean {
	const target = row.target;
	if (target === undefined || target.stat !== "median") {
		return false;
	}
	return target.op === ">=" ? row.value.min < target.value : row.value.max > target.value;
}
