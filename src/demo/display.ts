// What the demo shows while it runs: a live view redrawn in place on a terminal, or plain lines,
// one per event that matters, everywhere else (a pipe, a file, a CI log).
import { createLogUpdate } from "log-update";
import { describeOutcome, describeUsage, formatMs, type Paint, styleOf } from "./format.ts";
import { type CallState, type DemoEvent, type DemoState, tally, whereNow } from "./run.ts";

/** Shows the demo's events as they come. */
export interface Display {
	report(event: DemoEvent): void;
	/** The demo is over: stop redrawing, leave the last view on screen. */
	close(): void;
}

/** The time since the demo began: `[  2.4 s]`. */
function stamp(state: DemoState): string {
	return `[${((performance.now() - state.startedAt) / 1000).toFixed(1).padStart(5)} s]`;
}

/** A call's number and label: `#12 countPrimes(5e5)`. */
function name(call: CallState): string {
	return `#${call.n} ${call.spec.label}`;
}

/** How a call ended, in one line, with its limit's own message. */
function endLine(call: CallState, paint: Paint): string {
	const ending = call.ending;
	const detail = ending !== "result" && call.value instanceof Error ? `: ${call.value.message}` : "";
	return `${name(call)}  ${paint(styleOf(ending), describeOutcome(call))}${detail}  ${paint("dim", `(${describeUsage(call)})`)}`;
}

/** Plain lines: results, errors, limit hits, calls that move to a process, and the end of each run. */
export class PlainDisplay implements Display {
	readonly #out: NodeJS.WritableStream;
	readonly #state: DemoState;
	readonly #paint: Paint;

	constructor(out: NodeJS.WritableStream, state: DemoState, paint: Paint) {
		this.#out = out;
		this.#state = state;
		this.#paint = paint;
	}

	report(event: DemoEvent): void {
		const line = this.#line(event);
		if (line !== undefined) {
			this.#out.write(`${line}\n`);
		}
	}

	#line(event: DemoEvent): string | undefined {
		const paint = this.#paint;
		switch (event.kind) {
			case "section":
				return `\n${paint("bold", event.section.name)}: ${event.section.title}`;
			case "started":
				return undefined;
			case "moved":
				return `${stamp(this.#state)} ${name(event.call)}  ${paint("magenta", "moved from its thread to a process")}, where it starts again`;
			case "done":
				return `${stamp(this.#state)} ${endLine(event.call, paint)}`;
			case "run-end":
				return `${stamp(this.#state)} ${event.section.name}: run ended "${event.code}" after ${formatMs(event.ms)}`;
		}
	}

	close(): void {}
}

/** How many finished calls the live view lists under the running ones. */
const RECENT = 5;

/** A live view, redrawn in place with log-update: counts, then one line per running call, then the latest endings. */
export class LiveDisplay implements Display {
	readonly #state: DemoState;
	readonly #paint: Paint;
	readonly #log: ReturnType<typeof createLogUpdate>;
	readonly #timer: NodeJS.Timeout;
	readonly #recent: string[] = [];

	constructor(out: NodeJS.WriteStream, state: DemoState, paint: Paint) {
		this.#state = state;
		this.#paint = paint;
		this.#log = createLogUpdate(out);
		// Wall times so far tick on their own; the timer never keeps the program alive.
		this.#timer = setInterval(() => this.#render(), 100);
		this.#timer.unref();
	}

	report(event: DemoEvent): void {
		if (event.kind === "done") {
			this.#remember(`${stamp(this.#state)} ${endLine(event.call, this.#paint)}`);
		} else if (event.kind === "moved") {
			this.#remember(`${stamp(this.#state)} ${name(event.call)}  ${this.#paint("magenta", "moved from its thread to a process")}`);
		} else if (event.kind === "run-end") {
			this.#remember(`${stamp(this.#state)} ${event.section.name}: run ended "${event.code}" after ${formatMs(event.ms)}`);
		}
		this.#render();
	}

	#remember(line: string): void {
		this.#recent.push(line);
		if (this.#recent.length > RECENT) {
			this.#recent.shift();
		}
	}

	#render(): void {
		const paint = this.#paint;
		const state = this.#state;
		const counts = tally(state);
		const now = performance.now();
		const section = state.section;
		const lines = [
			`${paint("bold", "byop demo")}  ${section === undefined ? "done" : `${paint("cyan", section.name)}: ${section.title}`}`,
			`done ${paint("bold", `${counts.done}/${counts.total}`)} · running ${counts.running} · results ${paint("green", String(counts.results))} · errors ${paint("red", String(counts.errors))} · elapsed ${formatMs(now - state.startedAt)}`,
			`limits hit: wall ${counts.limits.wall} · CPU ${counts.limits.cpu} · heap ${counts.limits.heap} · RSS ${counts.limits.rss} · moved to a process ${counts.moved}`,
			"",
		];
		const running = state.calls.filter((call) => call.starts > 0 && call.ending === undefined);
		const width = Math.max(0, ...running.map((call) => name(call).length));
		for (const call of running) {
			const where = `${whereNow(call)}${call.starts > 1 ? " (moved)" : ""}`;
			const wall = call.startedAt === undefined ? "-" : formatMs(now - call.startedAt);
			// The public API reports a call's CPU time when it ends, not while it runs; what the call
			// last told of its progress comes from inside it, through the demo's CommPlugin.
			lines.push(`  ${paint("cyan", "▶")} ${name(call).padEnd(width)}  ${where.padEnd(17)} wall ${wall.padStart(7)}  cpu -  ${paint("dim", call.progress ?? "")}`);
		}
		if (running.length === 0) {
			lines.push(paint("dim", "  (nothing running)"));
		}
		lines.push("", ...this.#recent.map((line) => `  ${line}`));
		this.#log(lines.join("\n"));
	}

	close(): void {
		clearInterval(this.#timer);
		this.#render();
		this.#log.done();
	}
}
