// The package as users get it: packed, installed into a fresh project, used from plain node.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import { packedTarball } from "./pack.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const project = mkdtempSync(path.join(tmpdir(), "byop-package-"));
const npm = process.platform === "win32" ? "npm.cmd" : "npm";
/** Whether this Node loads TypeScript by stripping its types (22.18+ and 23.6+ by default). */
const STRIPS_TYPES = ["strip", "transform"].includes(String((process.features as { typescript?: unknown }).typescript));

function run(command: string, args: string[], cwd: string): string {
	return execFileSync(command, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 180_000, env: { ...process.env, NODE_OPTIONS: "" } });
}

describe("the packed package", () => {
	before(() => {
		writeFileSync(path.join(project, "package.json"), JSON.stringify({ name: "byop-consumer", private: true, type: "module" }));
		run(npm, ["install", "--no-audit", "--no-fund", "--prefer-offline", packedTarball()], project);
		writeFileSync(
			path.join(project, "jobs.mjs"),
			`export function add(a, b) { return a + b; }
export async function nap(ms) { await new Promise((r) => setTimeout(r, ms)); return ms; }
export function spin() { for (;;) {} }
export function hoard(mb) { const keep = []; for (let i = 0; i < mb; i++) keep.push(Buffer.alloc(1 << 20, 1)); return new Promise((r) => setTimeout(() => r(keep.length), 3000)); }`,
		);
	});

	after(() => rmSync(project, { recursive: true, force: true }));

	it("ships only the built files", () => {
		const files = readdirSync(path.join(project, "node_modules", "byop", "dist"));
		assert.deepEqual(files.sort(), ["src", "workers"]);
	});

	it("works from plain node with .mjs job modules, on threads and processes, with limits", () => {
		writeFileSync(
			path.join(project, "main.mjs"),
			`import { Scheduler, Task } from "byop";
import { PynisherPlugin, WallTimeLimitError, CpuTimeLimitError, MemoryLimitError, limit } from "byop/pynisher";
const out = {};
for (const kind of ["threads", "processes", "sequential"]) {
  const scheduler = kind === "threads" ? Scheduler.withThreads({ maxWorkers: 2 }) : kind === "processes" ? Scheduler.withProcesses({ maxWorkers: 2 }) : Scheduler.withSequential();
  const pynisher = new PynisherPlugin({ wallTimeLimit: "400ms", cpuTimeLimit: "300ms" });
  // A wall limit far away for the spin: on a busy machine it gets less than a core.
  const cpuBound = new PynisherPlugin({ wallTimeLimit: "20s", cpuTimeLimit: "300ms" });
  const add = new Task({ module: new URL("./jobs.mjs", import.meta.url), name: "add" }, scheduler);
  const nap = scheduler.task({ module: new URL("./jobs.mjs", import.meta.url), name: "nap" }, { plugins: [pynisher] });
  const spin = scheduler.task({ module: new URL("./jobs.mjs", import.meta.url), name: "spin" }, { plugins: [cpuBound] });
  const events = [];
  nap.on(pynisher.WALL_TIME_LIMIT_REACHED, () => events.push("wall"));
  spin.on(cpuBound.CPU_TIME_LIMIT_REACHED, () => events.push("cpu"));
  const futures = [];
  scheduler.on(Scheduler.STARTED, () => futures.push(add.submit(2, 3), nap.submit(5000), spin.submit()));
  const exit = await scheduler.run({ onException: "continue" });
  out[kind] = { code: exit.code, result: futures[0].result, wall: futures[1].exception instanceof WallTimeLimitError, cpu: futures[2].exception instanceof CpuTimeLimitError, events: events.sort() };
}
const hoard = limit({ module: new URL("./jobs.mjs", import.meta.url), name: "hoard" }, { memoryLimit: "150mb", memoryKind: "rss" });
out.rss = await hoard(400).catch((error) => error instanceof MemoryLimitError);
console.log(JSON.stringify(out));`,
		);
		const output = JSON.parse(run(process.execPath, ["main.mjs"], project)) as Record<string, unknown>;
		for (const kind of ["threads", "processes", "sequential"]) {
			assert.deepEqual(output[kind], { code: "exhausted", result: 5, wall: true, cpu: true, events: ["cpu", "wall"] }, kind);
		}
		assert.equal(output["rss"], true);
	});

	it("loads .ts job modules under tsx, in threads and processes", () => {
		writeFileSync(path.join(project, "typed.ts"), "export function twice(n: number): number { return n * 2; }\n");
		writeFileSync(
			path.join(project, "typed-main.mjs"),
			`import { Scheduler } from "byop";
const results = [];
for (const scheduler of [Scheduler.withThreads({ maxWorkers: 1 }), Scheduler.withProcesses({ maxWorkers: 1 })]) {
  const task = scheduler.task({ module: new URL("./typed.ts", import.meta.url), name: "twice" });
  let future;
  scheduler.on(Scheduler.STARTED, () => { future = task.submit(21); });
  await scheduler.run();
  results.push(future.result, future.usage.where);
}
console.log(JSON.stringify(results));`,
		);
		const tsx = pathToFileURL(path.join(root, "node_modules", "tsx", "dist", "loader.mjs")).href;
		const output = run(process.execPath, ["--import", tsx, "typed-main.mjs"], project);
		assert.deepEqual(JSON.parse(output), [42, "thread", 42, "process"]);
	});

	it("loads .ts job modules without tsx where Node strips types, and says what to do where it does not", () => {
		// This project has no tsx installed.
		writeFileSync(path.join(project, "stripped.ts"), "export function twice(n: number): number { return n * 2; }\n");
		writeFileSync(
			path.join(project, "stripped-main.mjs"),
			`import { Scheduler } from "byop";
const results = [];
for (const scheduler of [Scheduler.withThreads({ maxWorkers: 1 }), Scheduler.withProcesses({ maxWorkers: 1 })]) {
  const task = scheduler.task({ module: new URL("./stripped.ts", import.meta.url), name: "twice" });
  let future;
  scheduler.on(Scheduler.STARTED, () => { future = task.submit(21); });
  await scheduler.run({ onException: "continue" });
  results.push(future.result ?? future.exception.code, future.usage.where);
}
console.log(JSON.stringify(results));`,
		);
		const plain = spawnSync(process.execPath, ["stripped-main.mjs"], { cwd: project, encoding: "utf8", timeout: 180_000, env: { ...process.env, NODE_OPTIONS: "" } });
		const cli = spawnSync(process.execPath, [path.join(project, "node_modules", "byop", "dist", "src", "cli", "main.js"), "run", "./stripped.ts#twice", "21"], { cwd: project, encoding: "utf8", timeout: 180_000, env: { ...process.env, NODE_OPTIONS: "" } });
		if (STRIPS_TYPES) {
			assert.equal(plain.status, 0, plain.stderr);
			assert.deepEqual(JSON.parse(plain.stdout), [42, "thread", 42, "process"]);
			assert.equal(cli.status, 0, cli.stderr);
			assert.equal(cli.stdout.trim(), "42");
			// An enum needs code, which Node does not write: the load fails, naming why.
			writeFileSync(path.join(project, "enum.ts"), "enum Unit { One = 1 }\nexport function one(): number { return Unit.One; }\n");
			const enumRun = spawnSync(process.execPath, [path.join(project, "node_modules", "byop", "dist", "src", "cli", "main.js"), "run", "./enum.ts#one"], { cwd: project, encoding: "utf8", timeout: 180_000, env: { ...process.env, NODE_OPTIONS: "" } });
			assert.equal(enumRun.status, 2, enumRun.stderr);
			assert.match(enumRun.stderr, /TaskLoadError \[ERR_TASK_LOAD\].*enum\.ts.*strip-only/);
		} else {
			// The call fails to load (Node does not know the extension); nothing else breaks.
			assert.equal(plain.status, 0, plain.stderr);
			assert.deepEqual(JSON.parse(plain.stdout), ["ERR_TASK_LOAD", "thread", "ERR_TASK_LOAD", "process"]);
			assert.equal(cli.status, 2, cli.stderr);
			assert.match(cli.stderr, /stripped\.ts#twice is TypeScript: install tsx/);
		}
	});
});
