// `npm start` and `byop demo`: the scheduler and its limits at work on an embedded workload.
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { type Display, LiveDisplay, PlainDisplay } from "./display.ts";
import { painter } from "./format.ts";
import { report } from "./report.ts";
import { prepare, runDemo } from "./run.ts";
import { WORKLOAD } from "./workload.ts";

const USAGE = `Usage: byop demo [--plain]

Runs an embedded workload of about 40 calls on a thread pool, a process pool and the main
thread, under wall-time, CPU-time and memory limits, then prints a table of every call and
checks that each ended as it was written to.

  --plain   one line per event, even on a terminal (the default when stdout is not one)
  --help    this text

Colors are used on a terminal unless NO_COLOR is set. The exit code is 0 when every call ended
as written and every limit fired, 1 otherwise, 2 for a bad argument.`;

/**
 * Runs the demo, writing to stdout: a live view on a terminal, plain lines elsewhere, then the
 * table and the self-check.
 *
 * @param args The command-line arguments after the command (`--plain`, `--help`).
 * @returns The exit code: 0 when every call ended as written, 1 when one did not, 2 for a bad argument.
 */
export async function main(args: readonly string[]): Promise<number> {
	let plain = false;
	for (const arg of args) {
		if (arg === "--help" || arg === "-h") {
			process.stdout.write(`${USAGE}\n`);
			return 0;
		}
		if (arg !== "--plain") {
			process.stderr.write(`byop demo: unknown argument ${JSON.stringify(arg)}\n\n${USAGE}\n`);
			return 2;
		}
		plain = true;
	}
	const out = process.stdout;
	const paint = painter(out);
	const state = prepare(WORKLOAD);
	// A terminal that reports no size (some pseudo-terminals) gets plain lines: a live view is fitted to its height.
	const live = out.isTTY === true && (out.rows ?? 0) > 0 && !plain;
	const display: Display = live ? new LiveDisplay(out, state, paint) : new PlainDisplay(out, state, paint);
	out.write(`${paint("bold", "byop demo")}: a scheduler that puts wall-time, CPU-time and memory limits on every call\n`);
	try {
		await runDemo(state, (event) => display.report(event));
	} finally {
		display.close();
	}
	const { text, ok } = report(state, paint);
	out.write(`\n${text}\n`);
	return ok ? 0 : 1;
}

/** Whether this module is the program's entry file (`tsx src/demo/main.ts`, `node dist/src/demo/main.js`). */
function isEntry(): boolean {
	const entry = process.argv[1];
	if (entry === undefined) {
		return false;
	}
	try {
		return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
	} catch {
		return false;
	}
}

if (isEntry()) {
	process.exitCode = await main(process.argv.slice(2));
}
