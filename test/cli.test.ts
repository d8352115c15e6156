// The `byop` command as users get it: the package packed, installed into a fresh project, and
// its `node_modules/.bin/byop` spawned; and the same command started from its source, in the
// same project, so that the coverage of `src/cli/` is measured (a child process started under
// c8 reports its coverage, mapped back to the TypeScript source).
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { appendFileSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { packedTarball } from "./pack.ts";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const project = mkdtempSync(path.join(tmpdir(), "byop-cli-"));
const byop = path.join(project, "node_modules", ".bin", "byop");
const tsx = pathToFileURL(path.join(root, "node_modules", "tsx", "dist", "loader.mjs")).href;
const source = path.join(root, "src", "cli", "main.ts");

/** Where the command is started from: the packed package as installed, or the source through tsx. */
type From = "packed" | "source";

/** The program and arguments that run `byop args…`. */
function command(args: readonly string[], from: From): [string, string[]] {
	return from === "packed" ? [byop, [...args]] : [process.execPath, ["--import", tsx, source, ...args]];
}

interface Ran {
	readonly code: number | null;
	readonly signal: NodeJS.Signals | null;
	readonly stdout: string;
	readonly stderr: string;
}

interface Spawned {
	readonly pid: number;
	readonly done: Promise<Ran>;
	kill(signal: NodeJS.Signals): void;
}

/** Starts `byop args…` in the project, with `input` on stdin. */
function start(args: readonly string[], input = "", from: From = "source"): Spawned {
	const [program, argv] = command(args, from);
	const child = spawn(program, argv, { cwd: project, stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, NODE_OPTIONS: "" } });
	let stdout = "";
	let stderr = "";
	child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
	child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
	child.stdin.on("error", () => {});
	child.stdin.end(input);
	const done = new Promise<Ran>((resolve) => child.once("close", (code, signal) => resolve({ code, signal, stdout, stderr })));
	return { pid: child.pid!, done, kill: (signal) => child.kill(signal) };
}

function byopRun(args: readonly string[], input = "", from: From = "source"): Promise<Ran> {
	return start(args, input, from).done;
}

function lines(text: string): Record<string, unknown>[] {
	return text
		.split("\n")
		.filter((line) => line !== "")
		.map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** The ids of a process's children, from each of its threads' `/proc` children lists. */
function children(pid: number): number[] {
	try {
		return readdirSync(`/proc/${pid}/task`).flatMap((tid) => {
			try {
				return readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8").split(" ").filter(Boolean).map(Number);
			} catch {
				return [];
			}
		});
	} catch {
		return [];
	}
}

/** Whether a process is still running (a zombie waiting for its reaper is not). */
function alive(pid: number): boolean {
	try {
		return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, "utf8"));
	} catch {
		return false;
	}
}

async function until(condition: () => boolean, ms: number, what: string): Promise<void> {
	const end = Date.now() + ms;
	while (!condition()) {
		if (Date.now() > end) {
			throw new Error(`Timed out after ${ms} ms waiting for ${what}`);
		}
		await new Promise((resolve) => setTimeout(resolve, 25));
	}
}

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe("the byop command", () => {
	before(() => {
		const options = { cwd: root, encoding: "utf8" as const, stdio: ["ignore", "pipe", "pipe"] as ["ignore", "pipe", "pipe"], timeout: 180_000, env: { ...process.env, NODE_OPTIONS: "" } };
		writeFileSync(path.join(project, "package.json"), JSON.stringify({ name: "byop-cli-consumer", private: true, type: "module" }));
		execFileSync("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", packedTarball()], { ...options, cwd: project });
		// tsx for the TypeScript module test, as a user would have it installed.
		symlinkSync(path.join(root, "node_modules", "tsx"), path.join(project, "node_modules", "tsx"), "dir");
		copyFileSync(path.join(root, "docs", "examples", "jobs.mjs"), path.join(project, "jobs.mjs"));
		copyFileSync(path.join(root, "test", "fixtures", "cli-jobs.mjs"), path.join(project, "cli-jobs.mjs"));
		writeFileSync(path.join(project, "typed.ts"), "export function twice(n: number): number { return n * 2; }\n");
	});

	after(() => rmSync(project, { recursive: true, force: true }));

	for (const from of ["packed", "source"] as const) {
		it(`answers --help and --version, and byop <command> --help (${from})`, async () => {
			const help = await byopRun(["--help"], "", from);
			assert.equal(help.code, 0);
			assert.match(help.stdout, /Usage: byop <command>/);
			const version = await byopRun(["--version"], "", from);
			assert.equal(version.stdout.trim(), (JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")) as { version: string }).version);
			const run = await byopRun(["run", "--help"], "", from);
			assert.equal(run.code, 0);
			for (const code of ["0", "1", "2", "124", "130", "137", "152"]) {
				assert.match(run.stdout, new RegExp(`^  ${code} `, "m"), `exit code ${code} in byop run --help`);
			}
			assert.match((await byopRun(["map", "-h"], "", from)).stdout, /Usage: byop map/);
			const unknown = await byopRun(["frobnicate"], "", from);
			assert.equal(unknown.code, 2);
			assert.match(unknown.stderr, /Unknown command "frobnicate"/);
		});
	}

	it("run: prints the result as JSON on stdout and the usage on stderr; arguments are JSON when they parse", async () => {
		const ran = await byopRun(["run", "cli-jobs.mjs", "-1", '{"a":[1,2]}', "hello", "true", "--wall-time"]);
		assert.equal(ran.code, 0, ran.stderr);
		assert.deepEqual(JSON.parse(ran.stdout), [-1, { a: [1, 2] }, "hello", true, "--wall-time"]);
		assert.match(ran.stderr, /^byop: wall [\d.]+ ms, cpu [\d.]+ ms, peak memory [\d.]+ MB, in a thread$/m);
	});

	it("run --json: one object with the result and the usage; --executor processes runs it in a process", async () => {
		const ran = await byopRun(["run", "--json", "--executor", "processes", "./cli-jobs.mjs#add", "2", "3"]);
		assert.equal(ran.code, 0, ran.stderr);
		const out = JSON.parse(ran.stdout) as { ok: boolean; result: number; usage: { where: string; wallMs: number } };
		assert.equal(out.ok, true);
		assert.equal(out.result, 5);
		assert.equal(out.usage.where, "process");
		assert.equal(ran.stderr, "");
	});

	it("run: exit 1 when the call throws, with its name, code and message on stderr", async () => {
		const ran = await byopRun(["run", "./cli-jobs.mjs#boom", "no luck"]);
		assert.equal(ran.code, 1);
		assert.match(ran.stderr, /^byop: RangeError \[ERR_BOOM\]: no luck$/m);
		const json = await byopRun(["run", "--json", "./cli-jobs.mjs#boom", "no luck"]);
		assert.equal(json.code, 1);
		assert.deepEqual((JSON.parse(json.stdout) as { error: unknown }).error, { name: "RangeError", message: "no luck", code: "ERR_BOOM" });
	});

	it("run: exit 2 for bad usage, naming the option and the value", async () => {
		const cases: [string[], RegExp][] = [
			[["run", "--wall-time", "5x", "./cli-jobs.mjs#add"], /--wall-time.*"5x"/],
			[["run", "--memory", "lots", "./cli-jobs.mjs#add"], /--memory.*"lots"/],
			[["run", "--cpu-time=-1s", "./cli-jobs.mjs#add"], /--cpu-time.*"-1s"/],
			[["run", "--memory-kind", "swap", "--memory", "1gb", "./cli-jobs.mjs#add"], /--memory-kind.*"swap"/],
			[["run", "--executor", "gpu", "./cli-jobs.mjs#add"], /--executor.*"gpu"/],
			[["run", "--bogus", "./cli-jobs.mjs#add"], /Unknown option '--bogus'/],
			[["run"], /needs a module/],
			[["run", "./missing.mjs"], /Cannot find module "\.\/missing\.mjs"/],
			[["run", "no-such-package"], /Cannot find module "no-such-package"/],
			[["run", "./cli-jobs.mjs#nothing"], /ERR_TASK_LOAD.*has no export "nothing"/],
			[["map", "--concurrency", "0", "./cli-jobs.mjs#add"], /--concurrency.*"0"/],
			[["map", "--resume", "./cli-jobs.mjs#add"], /--resume.*needs.*--output/],
		];
		const results = await Promise.all(cases.map(([args]) => byopRun(args)));
		results.forEach((ran, i) => {
			const [args, pattern] = cases[i]!;
			assert.equal(ran.code, 2, `${args.join(" ")}: ${ran.stderr}`);
			assert.match(ran.stderr, pattern, args.join(" "));
		});
	});

	it("run: exit 124, 152 and 137 for the wall-time, CPU-time and memory limits", async () => {
		const [wall, cpu, memory] = await Promise.all([
			byopRun(["run", "--wall-time", "300ms", "./jobs.mjs#sleepy", "10000"]),
			byopRun(["run", "--wall-time", "30s", "--cpu-time", "300ms", "./jobs.mjs#spin"]),
			byopRun(["run", "--json", "--memory", "64mb", "--memory-kind", "heap", "./jobs.mjs#hog"]),
		]);
		assert.equal(wall.code, 124, wall.stderr);
		assert.match(wall.stderr, /WallTimeLimitError \[ERR_WALL_TIME_LIMIT\]/);
		assert.equal(cpu.code, 152, cpu.stderr);
		assert.match(cpu.stderr, /CpuTimeLimitError \[ERR_CPU_TIME_LIMIT\]/);
		assert.equal(memory.code, 137, memory.stderr);
		const error = (JSON.parse(memory.stdout) as { error: { name: string; code: string; limit: number } }).error;
		assert.deepEqual([error.name, error.code, error.limit], ["MemoryLimitError", "ERR_MEMORY_LIMIT", 64 * 1024 * 1024]);
	});

	it("run: Ctrl-C stops the call's process and exits 130, leaving nothing running", async () => {
		const run = start(["run", "--executor", "processes", "./jobs.mjs#spin"]);
		await until(() => children(run.pid).length > 0, 20_000, "the pool process");
		const pool = children(run.pid);
		await delay(200);
		run.kill("SIGINT");
		const ran = await run.done;
		assert.equal(ran.code, 130, ran.stderr);
		assert.match(ran.stderr, /CancelledError/);
		await until(() => pool.every((pid) => !alive(pid)), 3_000, "the pool process to end");
	});

	it("run: loads a TypeScript module through tsx", async () => {
		const ran = await byopRun(["run", "./typed.ts#twice", "21"], "", "packed");
		assert.equal(ran.code, 0, ran.stderr);
		assert.equal(ran.stdout.trim(), "42");
	});

	it("map: one line per input, whatever happens to it: results, throws, limits, malformed lines", async () => {
		const input = ["[1,2]", "not json", "[10000]", "", '"x"', "[3,4]", "{\"a\":1}", "[\"boom\"]"].join("\n");
		// Line 2 sleeps past the wall limit: `add` with one argument sleeps that long.
		const ran = await byopRun(["map", "--concurrency", "2", "--wall-time", "1s", "./cli-jobs.mjs#mixed"], `${input}\n`);
		assert.equal(ran.code, 1, ran.stderr);
		const out = lines(ran.stdout);
		const byIndex = new Map(out.map((line) => [line["index"] as number, line]));
		assert.equal(out.length, 7);
		assert.deepEqual([...byIndex.keys()].sort(), [0, 1, 2, 4, 5, 6, 7]);
		assert.deepEqual(byIndex.get(0), { ...byIndex.get(0), ok: true, result: 3 });
		assert.equal((byIndex.get(1)?.["error"] as { code: string }).code, "ERR_INPUT_LINE");
		assert.equal(byIndex.get(1)?.["usage"], null);
		assert.deepEqual(byIndex.get(2)?.["error"], { ...(byIndex.get(2)?.["error"] as object), name: "WallTimeLimitError", code: "ERR_WALL_TIME_LIMIT", limit: 1000 });
		assert.equal(byIndex.get(4)?.["result"], "x!");
		assert.equal(byIndex.get(5)?.["result"], 7);
		assert.deepEqual(byIndex.get(6)?.["result"], { a: 1 });
		assert.deepEqual(byIndex.get(7)?.["error"], { name: "RangeError", message: "boom", code: "ERR_BOOM" });
		const usage = byIndex.get(0)?.["usage"] as { where: string; wallMs: number };
		assert.equal(usage.where, "thread");
		assert.match(ran.stderr, /4 ok, 3 failed \(1 limits\)/);
	});

	it("map --keep-order: lines in input order although later calls end first", async () => {
		const input = [400, 10, 200, 5, 100, 1, 50, 0].map((ms) => `[${ms}]`).join("\n");
		const ran = await byopRun(["map", "--keep-order", "--concurrency", "4", "--no-progress", "./cli-jobs.mjs#nap"], input);
		assert.equal(ran.code, 0, ran.stderr);
		assert.deepEqual(
			lines(ran.stdout).map((line) => line["index"]),
			[0, 1, 2, 3, 4, 5, 6, 7],
		);
		const unordered = await byopRun(["map", "--concurrency", "4", "./cli-jobs.mjs#nap"], input);
		assert.notDeepEqual(
			lines(unordered.stdout).map((line) => line["index"]),
			[0, 1, 2, 3, 4, 5, 6, 7],
		);
	});

	it("map --resume after a SIGKILL mid-run: every index exactly once, and a cut line cleaned up", async () => {
		const input = path.join(project, "naps.jsonl");
		const output = path.join(project, "naps.out.jsonl");
		writeFileSync(input, `${Array.from({ length: 200 }, (_, i) => `[${20 + (i % 3) * 10}]`).join("\n")}\n`);
		const first = start(["map", "-c", "2", "--input", input, "--output", output, "./cli-jobs.mjs#nap"]);
		await until(() => existsSync(output) && readFileSync(output, "utf8").split("\n").length > 20, 20_000, "some lines");
		first.kill("SIGKILL");
		assert.equal((await first.done).signal, "SIGKILL");
		const written = readFileSync(output, "utf8").split("\n").filter(Boolean).length;
		assert.ok(written > 0 && written < 200, `${written} lines before the kill`);
		// A kill while writing leaves a cut line: it does not count and is removed.
		appendFileSync(output, '{"index":199,"ok":tr');
		const resumed = await byopRun(["map", "-c", "2", "--resume", "--input", input, "--output", output, "./cli-jobs.mjs#nap"]);
		assert.equal(resumed.code, 0, resumed.stderr);
		const indexes = lines(readFileSync(output, "utf8")).map((line) => line["index"] as number);
		assert.equal(indexes.length, 200);
		assert.deepEqual(
			[...indexes].sort((a, b) => a - b),
			Array.from({ length: 200 }, (_, i) => i),
		);
	});

	it("map: Ctrl-C mid-run exits 130 with valid lines for what finished, and no process left", async () => {
		const output = path.join(project, "interrupted.jsonl");
		const input = `${Array.from({ length: 400 }, () => "[30]").join("\n")}\n`;
		const run = start(["map", "-c", "2", "--executor", "processes", "--output", output, "./cli-jobs.mjs#nap"], input);
		await until(() => existsSync(output) && readFileSync(output, "utf8").split("\n").length > 10, 20_000, "some lines");
		const pool = children(run.pid);
		assert.ok(pool.length > 0, "pool processes");
		run.kill("SIGINT");
		const ran = await run.done;
		assert.equal(ran.code, 130, ran.stderr);
		const out = lines(readFileSync(output, "utf8"));
		assert.ok(out.length > 0 && out.length < 400);
		assert.ok(out.every((line) => line["ok"] === true));
		assert.equal(new Set(out.map((line) => line["index"])).size, out.length);
		await until(() => pool.every((pid) => !alive(pid)), 3_000, "the pool processes to end");
	});

	it("map: reading pauses while calls are under way, so a large input does not pile up in memory", async () => {
		const gate = path.join(project, "gate-open");
		const [program, argv] = command(["map", "-c", "2", "./cli-jobs.mjs#gate"], "source");
		const child = spawn(program, argv, { cwd: project, stdio: ["pipe", "ignore", "pipe"] });
		child.stdin.on("error", () => {});
		const line = `${JSON.stringify([gate, "x".repeat(90)])}\n`;
		const chunk = line.repeat(1000);
		let accepted = 0;
		// 200,000 lines (20 MB) offered; the pipe takes what byop reads.
		for (let i = 0; i < 200; i++) {
			if (!child.stdin.write(chunk, () => (accepted += chunk.length))) {
				break;
			}
		}
		await delay(3000);
		const exited = new Promise((resolve) => child.once("close", resolve));
		child.kill("SIGINT");
		await exited;
		// The pipe (64 KB), readline's buffer (1,000 lines) and the stream's chunk: well under 20 MB.
		assert.ok(accepted < 2 * 1024 * 1024, `${accepted} bytes taken while 2 calls were blocked`);
	});

	it("map --progress: a progress line on stderr with done/total, rate, failures and limit hits", async () => {
		const input = path.join(project, "progress.jsonl");
		writeFileSync(input, `${Array.from({ length: 30 }, () => "[60]").join("\n")}\n`);
		const ran = await byopRun(["map", "--progress", "-c", "2", "--input", input, "./cli-jobs.mjs#nap"]);
		assert.equal(ran.code, 0, ran.stderr);
		assert.match(ran.stderr, /byop map \[[█░]+\] \d+\/30 \| ETA \S+ \| [\d.]+\/s \| 0 failed \(0 limits\)/);
		assert.equal(lines(ran.stdout).length, 30);
		// From stdin there is no total; the lines must not be lost while the bar loads.
		const piped = await byopRun(["map", "--progress", "./cli-jobs.mjs#add"], "[1,2]\n");
		assert.equal(piped.code, 0, piped.stderr);
		assert.deepEqual(lines(piped.stdout).map((line) => line["result"]), [3]);
		assert.match(piped.stderr, /byop map 1 done \| [\d.]+\/s \| 0 failed \(0 limits\)/);
	});

	it("docs/cli.md: every example runs as written", async () => {
		const text = readFileSync(path.join(root, "docs", "cli.md"), "utf8");
		const blocks = [...text.matchAll(/<!-- example -->\n```sh\n([\s\S]*?)```/g)].map((match) => match[1]!);
		const expected: RegExp[][] = [
			[/^\{"epochs":2,"loss":[\d.]+\}$/m, /^byop: wall .* in a thread$/m],
			[/"name":"CpuTimeLimitError".*"code":"ERR_CPU_TIME_LIMIT","limit":300/, /^exit code 152$/m],
			[/WallTimeLimitError \[ERR_WALL_TIME_LIMIT\]/, /^exit code 124$/m, /MemoryLimitError \[ERR_MEMORY_LIMIT\]/, /^exit code 137$/m],
			[/^\{"index":0,"ok":true,"result":\{"epochs":1,.*\n\{"index":1,"ok":true.*\n\{"index":2,"ok":false.*"ERR_INPUT_LINE".*\n\{"index":3,"ok":false.*"ERR_CPU_TIME_LIMIT"/m, /^exit code 1$/m],
			[/5 ok, 0 failed \(0 limits\), 1 skipped/, /^6$/m],
		];
		assert.equal(blocks.length, expected.length);
		const bin = path.join(project, "node_modules", ".bin");
		// Each example in a folder of its own, all at once: they wait more than they compute.
		const outputs = await Promise.all(
			blocks.map((block, index) => {
				const cwd = path.join(project, `docs-example-${index}`);
				mkdirSync(cwd);
				copyFileSync(path.join(project, "jobs.mjs"), path.join(cwd, "jobs.mjs"));
				return new Promise<string>((resolve) => {
					const child = spawn("sh", ["-c", block], { cwd, env: { ...process.env, NODE_OPTIONS: "", PATH: `${bin}:${process.env["PATH"] ?? ""}` } });
					let stdout = "";
					let stderr = "";
					child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
					child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
					child.once("close", () => resolve(`${stdout}\n${stderr}`));
				});
			}),
		);
		outputs.forEach((output, index) => {
			for (const pattern of expected[index]!) {
				assert.match(output, pattern, `example ${index + 1}`);
			}
		});
	});
});
