// `npm start`: the demo runs its whole workload, every limit fires, and every call ends as it was
// written to; its live view draws on a terminal; its entry point can be imported without running.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { Writable } from "node:stream";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { LiveDisplay } from "../src/demo/display.ts";
import { painter } from "../src/demo/format.ts";
import { main } from "../src/demo/main.ts";
import { prepare } from "../src/demo/run.ts";
import { WORKLOAD } from "../src/demo/workload.ts";

const root = fileURLToPath(new URL("..", import.meta.url));

/** Runs `node --import tsx src/demo/main.ts` with stdout a pipe (not a terminal). */
function runDemo(): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
	const started = performance.now();
	return new Promise((resolve, reject) => {
		const child = spawn(process.execPath, ["--import", "tsx", "src/demo/main.ts"], { cwd: root, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "" } });
		let stdout = "";
		let stderr = "";
		child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
		child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
		child.on("error", reject);
		child.on("close", (code) => resolve({ code, stdout, stderr, ms: performance.now() - started }));
	});
}

describe("the demo", () => {
	it("runs every call as written, with every limit firing, in plain lines when stdout is not a terminal", { timeout: 120_000 }, async () => {
		const { code, stdout, stderr, ms } = await runDemo();
		assert.equal(code, 0, `exit code ${code}\n${stdout}\n${stderr}`);
		for (const kind of ["wall limit", "CPU limit", "heap limit", "RSS limit", "moved from its thread to a process"]) {
			assert.match(stdout, new RegExp(kind), `no "${kind}" in\n${stdout}`);
		}
		const total = WORKLOAD.reduce((sum, section) => sum + section.calls.length, 0);
		assert.match(stdout, new RegExp(`^Self-check: all ${total} calls ended as written\\.$`, "m"));
		// Calls told their progress from inside, through the CommPlugin.
		const progress = /^Progress messages sent from inside running calls \(CommPlugin\): (\d+), from (\d+) calls\.$/m.exec(stdout);
		assert.ok(progress !== null && Number(progress[1]) > 0 && Number(progress[2]) > 0, stdout);
		assert.match(stdout, /^Every limit fired at least once/m);
		for (const section of WORKLOAD) {
			assert.match(stdout, new RegExp(`${section.name}: run ended "exhausted"`));
		}
		// Not a terminal: no colors, no redrawing.
		assert.doesNotMatch(stdout, /\x1b\[/);
		assert.ok(ms < 60_000, `the demo took ${Math.round(ms)} ms`);
	});

	it("draws a live view of the counts and of each running call on a terminal", async () => {
		let screen = "";
		const terminal = Object.assign(
			new Writable({
				write(chunk: Buffer, _encoding, done) {
					screen += chunk.toString();
					done();
				},
			}),
			{ isTTY: true, rows: 40, columns: 160 },
		) as unknown as NodeJS.WriteStream;
		const state = prepare(WORKLOAD);
		const [first, second] = state.calls;
		assert.ok(first !== undefined && second !== undefined);
		state.section = first.section;
		const display = new LiveDisplay(terminal, state, painter(terminal, {}));
		first.starts = 1;
		first.startedAt = performance.now() - 1500;
		display.report({ kind: "started", call: first });
		second.starts = 1;
		second.startedAt = performance.now();
		second.ending = "result";
		second.value = "users: ok";
		second.usage = { wallMs: 12, cpuMs: 3, peakMemoryBytes: 2 ** 24, where: "thread" };
		display.report({ kind: "done", call: second });
		display.close();
		const text = screen.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "");
		assert.match(text, new RegExp(`done 1/${state.calls.length} · running 1 · results 1 · errors 0`));
		assert.match(text, /limits hit: wall 0 · CPU 0 · heap 0 · RSS 0 · moved to a process 0/);
		assert.match(text, /▶ #1 countPrimes\(2e6\)\s+thread\s+wall\s+1\.[5-9] s\s+cpu -/);
		assert.match(text, /#2 slowLookup\("users"\)\s+result "users: ok"/);
		assert.match(screen, /\x1b\[32m/, "colors on a terminal");
	});

	it("uses colors only on a terminal, and never when NO_COLOR is set", () => {
		const terminal = { isTTY: true } as NodeJS.WriteStream;
		const pipe = { isTTY: false } as NodeJS.WriteStream;
		assert.equal(painter(terminal, { NO_COLOR: "1" })("red", "x"), "x");
		assert.equal(painter(pipe, {})("red", "x"), "x");
		assert.notEqual(painter(terminal, {})("red", "x"), "x");
	});

	it("runs only as the entry file: importing it gives main(), which refuses unknown arguments", async () => {
		assert.equal(typeof main, "function");
		const write = process.stderr.write;
		let written = "";
		process.stderr.write = ((chunk: string) => {
			written += chunk;
			return true;
		}) as typeof process.stderr.write;
		try {
			assert.equal(await main(["--bogus"]), 2);
		} finally {
			process.stderr.write = write;
		}
		assert.match(written, /unknown argument "--bogus"/);
	});
});
