// The command's pure parts, in process: how an outcome becomes an exit code and a line, how a
// module is named, and how errors cross a boundary when what arrives is not what was sent.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import { errorJson, errorLine, EXIT, exitCodeOf, parseArgument, safeJson, usageJson, usageLine } from "../src/cli/outcome.ts";
import { resolveTarget } from "../src/cli/target.ts";
import { stripsTypes, typescriptLoader } from "../src/cli/typescript.ts";
import { UsageError } from "../src/cli/usage-error.ts";
import { TaskLoadError } from "../src/index.ts";
import { CpuTimeLimitError, MemoryLimitError, WallTimeLimitError } from "../src/pynisher/index.ts";
import { deserializeError, type SerializedError, serializeError } from "../src/serialize.ts";

describe("byop's outcomes", () => {
	it("gives each way a call fails its exit code", () => {
		assert.equal(exitCodeOf(new WallTimeLimitError(100, 120)), EXIT.wallTime);
		assert.equal(exitCodeOf(new CpuTimeLimitError(100, 120)), EXIT.cpuTime);
		assert.equal(exitCodeOf(new MemoryLimitError(1024, 2048, "rss")), EXIT.memory);
		assert.equal(exitCodeOf(new TaskLoadError("gone", "m.js", "f")), EXIT.usage);
		assert.equal(exitCodeOf(new RangeError("no")), EXIT.threw);
		assert.equal(exitCodeOf("a string"), EXIT.threw);
		assert.deepEqual([EXIT.ok, EXIT.threw, EXIT.usage, EXIT.wallTime, EXIT.cpuTime, EXIT.memory, EXIT.interrupted], [0, 1, 2, 124, 152, 137, 130]);
	});

	it("describes any thrown value, with a limit's figures", () => {
		assert.deepEqual(errorJson("plain text"), { name: "Error", message: "plain text", code: null });
		assert.deepEqual(errorJson({ a: 1 }), { name: "Error", message: '{"a":1}', code: null });
		assert.deepEqual(errorJson(Object.assign(new TypeError("bad"), { code: "E_BAD" })), { name: "TypeError", message: "bad", code: "E_BAD" });
		const limit = errorJson(new CpuTimeLimitError(300, 312.4));
		assert.equal(limit.limit, 300);
		assert.equal(limit.observed, 312);
		assert.equal(limit.code, "ERR_CPU_TIME_LIMIT");
		assert.equal(errorLine({ name: "E", message: "m", code: null }), "E: m");
		assert.equal(errorLine({ name: "E", message: "m", code: "C" }), "E [C]: m");
	});

	it("writes usage for JSON and for a terminal", () => {
		assert.equal(usageJson(undefined), null);
		assert.deepEqual(usageJson({ wallMs: 12.345, cpuMs: 10.06, peakMemoryBytes: 5, where: "thread" }), { wallMs: 12.3, cpuMs: 10.1, peakMemoryBytes: 5, where: "thread" });
		assert.equal(usageLine(undefined), "the call did not start");
		assert.equal(usageLine({ wallMs: 1, cpuMs: -1, peakMemoryBytes: 1024 * 1024, where: "main" }), "wall 1.0 ms, cpu n/a, peak memory 1.0 MB, in the main thread");
		assert.match(usageLine({ wallMs: 1, cpuMs: 2, peakMemoryBytes: 0, where: "process" }), /cpu 2\.0 ms, .* in a process$/);
	});

	it("writes JSON of BigInts and says when a value has none; reads arguments as JSON or text", () => {
		assert.equal(safeJson(undefined), "null");
		assert.equal(safeJson({ n: 10n }), '{"n":"10"}');
		const cycle: Record<string, unknown> = {};
		cycle["self"] = cycle;
		assert.equal(safeJson(cycle), undefined);
		assert.deepEqual(parseArgument('{"a":[1]}'), { a: [1] });
		assert.equal(parseArgument("-1"), -1);
		assert.equal(parseArgument("hello"), "hello");
	});
});

describe("byop's module names", () => {
	it("resolves paths, file URLs and packages, with the export after #", () => {
		const dir = mkdtempSync(path.join(tmpdir(), "byop-target-"));
		try {
			writeFileSync(path.join(dir, "jobs.mjs"), "export default () => 1;\n");
			writeFileSync(path.join(dir, "typed.ts"), "export default (): number => 1;\n");
			const local = resolveTarget("./jobs.mjs#add", dir);
			assert.equal(local.ref.name, "add");
			assert.equal(local.typescript, false);
			assert.equal(resolveTarget("jobs.mjs", dir).ref.name, "default");
			assert.equal(resolveTarget("typed.ts", dir).typescript, true);
			assert.equal(resolveTarget(`${local.url.href}#f`, dir).url.href, local.url.href);
			assert.throws(() => resolveTarget("./missing.mjs", dir), /Cannot find module "\.\/missing\.mjs": no file/);
			assert.throws(() => resolveTarget("no-such-package-anywhere", dir), /nor a package found from there/);
			assert.throws(() => resolveTarget("jobs.mjs#", dir), /Expected `<module>\[#<export>\]`/);
			assert.throws(() => resolveTarget("#f", dir), /Expected/);
			assert.match(resolveTarget("piscina", process.cwd()).url.href, /node_modules\/piscina\//);
		} finally {
			rmSync(dir, { recursive: true, force: true });
		}
	});

	it("loads TypeScript through tsx where it is installed, else through Node's type stripping, else refuses", () => {
		const empty = mkdtempSync(path.join(tmpdir(), "byop-no-tsx-"));
		try {
			assert.equal(typescriptLoader("typed.ts", [empty, process.cwd()], false), "tsx");
			assert.equal(typescriptLoader("typed.ts", [empty], true), "node");
			assert.throws(() => typescriptLoader("typed.ts#f", [empty], false), (error: unknown) => error instanceof UsageError && /typed\.ts#f is TypeScript/.test(error.message));
			// This Node's own answer: strips from 22.18 and 23.6 (20 does not).
			const [major = 0, minor = 0] = process.versions.node.split(".").map(Number);
			assert.equal(stripsTypes(), major > 23 || (major === 23 && minor >= 6) || (major === 22 && minor >= 18));
		} finally {
			rmSync(empty, { recursive: true, force: true });
		}
	});
});

describe("errors that arrive in the wrong shape", () => {
	it("never throws, and says what arrived", () => {
		for (const garbage of [null, [], "text", 42, { __byopError: true }, { __byopError: true, name: 1, message: "m", props: {} }]) {
			const error = deserializeError(garbage as unknown as SerializedError);
			assert.ok(error instanceof Error);
			assert.match(error.message, /wrong shape/);
		}
		// A property that throws when read, or a getter where data was expected, is left out.
		const hostile = { ...serializeError(new Error("m")), props: Object.defineProperty({}, "x", { get: () => { throw new Error("no"); }, enumerable: true }) } as SerializedError;
		assert.ok(deserializeError(hostile) instanceof Error);
	});

	it("keeps nested causes and aggregated errors, to a depth", () => {
		let error: Error = new Error("root");
		for (let i = 0; i < 40; i++) {
			error = new Error(`level ${i}`, { cause: error });
		}
		const back = deserializeError(serializeError(error));
		let depth = 0;
		for (let at: unknown = back; at instanceof Error; at = at.cause) {
			depth++;
		}
		assert.ok(depth >= 9, `depth ${depth}`);
		const aggregate = deserializeError(serializeError(new AggregateError([new RangeError("a"), "b"], "both")));
		assert.ok((aggregate as AggregateError).errors[0] instanceof RangeError);
		assert.equal((aggregate as AggregateError).errors[1], "b");
		const thrown = deserializeError(serializeError(Symbol("s")));
		assert.match(thrown.message, /non-Error value/);
		const causeValue = deserializeError(serializeError(new Error("x", { cause: { plain: true } })));
		assert.deepEqual(causeValue.cause, { plain: true });
	});
});
