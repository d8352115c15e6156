// What the low-level readers and the error serialization do with input that is not what they
// expect: /proc files that are gone or unreadable, descriptors that are closed, the path that
// reads no /proc at all, and thrown values or serialized errors of every odd shape.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { closeQuietly, currentTid, descendants, killAll, openOwnSchedstat, processCpuNs, procAvailable, readPids, readSchedstat, readStatCpu, readStatm, statmOf, threadDescendants, tryOpen } from "../src/procfs.ts";
import { deserializeError, isSerializedError, type SerializedError, serializeError } from "../src/serialize.ts";

const scratch = mkdtempSync(path.join(tmpdir(), "byop-fallbacks-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

/** A pid that is not running: the highest pid Linux hands out is below 2^22. */
const GONE = 4_194_999;

/** A descriptor that was open and is closed now. */
function closedFd(): number {
	const fd = openSync(__filename_, "r");
	closeSync(fd);
	return fd;
}
const __filename_ = new URL(import.meta.url).pathname;

describe("the /proc readers, on what is gone or unreadable", () => {
	it("read this process and thread where /proc is there", () => {
		assert.equal(procAvailable(), true);
		assert.ok(currentTid() > 0);
		const fd = openOwnSchedstat();
		assert.ok(fd >= 0);
		assert.ok(readSchedstat(fd) > 0);
		closeQuietly(fd);
		const own = readStatCpu(-1, process.pid);
		assert.ok(own.own >= 0 && own.threads >= 1);
		assert.ok(processCpuNs(process.pid) > 0);
		assert.ok(statmOf(process.pid) > 0);
		const statm = tryOpen(`/proc/${process.pid}/statm`);
		assert.ok(readStatm(statm) > 0);
		closeQuietly(statm);
	});

	it("give -1, 0 or nothing for a process that is gone, a closed descriptor, a missing file", () => {
		assert.equal(tryOpen(path.join(scratch, "missing")), -1);
		assert.equal(readSchedstat(closedFd()), -1);
		assert.deepEqual(readStatCpu(closedFd()), { own: -1, children: 0, threads: 0 });
		assert.deepEqual(readStatCpu(-1, GONE), { own: -1, children: 0, threads: 0 });
		assert.equal(processCpuNs(GONE), 0);
		assert.equal(statmOf(GONE), -1);
		assert.equal(readStatm(-1), -1);
		assert.equal(readStatm(closedFd()), -1);
		assert.deepEqual(readPids(-1), []);
		assert.deepEqual(readPids(closedFd()), []);
		assert.deepEqual(descendants(GONE), []);
		assert.deepEqual(threadDescendants(GONE), []);
		// Closing twice, or nothing, is quiet; killing what is gone too.
		const fd = openSync(__filename_, "r");
		closeSync(fd);
		closeQuietly(fd);
		closeQuietly(-1);
		killAll([GONE, GONE + 1]);
	});

	it("read a schedstat-like file up to its first non-digit, and pid lists of any length", () => {
		const stat = path.join(scratch, "schedstat");
		writeFileSync(stat, "12345 678 9\n");
		const fd = openSync(stat, "r");
		assert.equal(readSchedstat(fd), 12345);
		closeSync(fd);
		const empty = path.join(scratch, "children-empty");
		writeFileSync(empty, "");
		const emptyFd = openSync(empty, "r");
		assert.deepEqual(readPids(emptyFd), []);
		closeSync(emptyFd);
		// More pids than one read holds: the whole file is read again by its descriptor.
		const many = Array.from({ length: 1200 }, (_, i) => 100_000 + i);
		const long = path.join(scratch, "children-long");
		writeFileSync(long, `${many.join(" ")} `);
		const longFd = openSync(long, "r");
		assert.deepEqual(readPids(longFd), many);
		closeSync(longFd);
	});

	it("find the processes a process started, to any depth", async () => {
		// A shell that starts a sleep: the sleep is a grandchild of this process.
		const shell = spawn("sh", ["-c", "sleep 30 & wait"], { stdio: "ignore" });
		try {
			let found: number[] = [];
			for (let i = 0; i < 100 && found.length < 2; i++) {
				await new Promise((resolve) => setTimeout(resolve, 50));
				found = descendants(process.pid);
			}
			assert.ok(found.includes(shell.pid!), "the child");
			assert.ok(found.length >= 2, "and its child");
			assert.ok(threadDescendants(currentTid()).includes(shell.pid!), "started by this thread");
		} finally {
			killAll(descendants(shell.pid!));
			shell.kill("SIGKILL");
		}
	});

	it("read nothing with BYOP_PORTABLE=1, and say so", () => {
		const script = `
			import * as p from "./src/procfs.ts";
			const fd = p.tryOpen("/proc/self/stat");
			console.log(JSON.stringify({
				available: p.procAvailable(), fd, own: p.openOwnSchedstat(), tid: p.currentTid(),
				cpu: p.readStatCpu(-1, process.pid), statm: p.statmOf(process.pid),
				descendants: p.descendants(process.pid), threads: p.threadDescendants(1),
			}));`;
		const child = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { encoding: "utf8", env: { ...process.env, BYOP_PORTABLE: "1" }, cwd: new URL("..", import.meta.url).pathname });
		assert.equal(child.status, 0, child.stderr);
		assert.deepEqual(JSON.parse(child.stdout), { available: false, fd: -1, own: -1, tid: 0, cpu: { own: -1, children: 0, threads: 0 }, statm: -1, descendants: [], threads: [] });
	});
});

describe("error serialization, on odd values", () => {
	it("keeps what can be kept of thrown values that are not errors", () => {
		const fn = serializeError(function named() {});
		assert.match(fn.message, /non-Error value: function named/);
		assert.equal(fn.thrown?.type, "function");
		assert.equal(typeof fn.thrown?.value, "string", "a function travels as its text");
		assert.equal(serializeError(Symbol("s")).thrown?.value, "Symbol(s)");
		assert.deepEqual(serializeError(null).thrown, { value: null, type: "null" });
		assert.match(serializeError("text").message, /"text"/);
		// A value that cannot even be turned into a string.
		const bare = Object.create(null) as object;
		assert.match(serializeError(bare).message, /\[object Object\]/);
		assert.equal(deserializeError(serializeError(42)).message, "Task threw a non-Error value: 42");
		assert.equal((deserializeError(serializeError(42)) as Error & { value?: unknown }).value, 42);
	});

	it("keeps an error's own cloneable properties, aggregated errors and causes, and leaves out what cannot travel", () => {
		const error = new Error("outer", { cause: () => 1 }) as Error & { code?: string; fn?: unknown };
		error.code = "E_X";
		error.fn = () => 2;
		const round = deserializeError(serializeError(error)) as Error & { code?: string; fn?: unknown };
		assert.equal(round.code, "E_X");
		assert.equal("fn" in round, false);
		assert.match(String(round.cause), /=>\s*1/);
		const aggregate = new AggregateError([new TypeError("inner"), 7, () => 3], "many");
		const back = deserializeError(serializeError(aggregate)) as AggregateError;
		assert.ok(back instanceof AggregateError);
		assert.ok(back.errors[0] instanceof TypeError);
		assert.equal(back.errors[1], 7);
		assert.match(String(back.errors[2]), /=>\s*3/);
		// A plain value as cause, a message that is not a string, a stack that is not one.
		const odd = new Error("x", { cause: { detail: 1 } });
		Object.defineProperty(odd, "message", { value: 42 });
		Object.defineProperty(odd, "stack", { value: 5 });
		const oddBack = deserializeError(serializeError(odd));
		assert.equal(oddBack.message, "42");
		assert.deepEqual(oddBack.cause, { detail: 1 });
		assert.equal(oddBack.stack, "Error: 42");
		// An error of a class of its own keeps its name; a nameless one is called after its constructor.
		class Mine extends Error {}
		assert.equal(deserializeError(serializeError(new Mine("m"))).name, "Mine");
	});

	it("follows causes 8 deep, and a longer chain still arrives whole, as a cloned value", () => {
		let error = new Error("level 0");
		for (let level = 1; level <= 12; level++) {
			error = new Error(`level ${level}`, { cause: error });
		}
		let back: unknown = deserializeError(serializeError(error));
		let depth = 0;
		while (back instanceof Error && back.cause !== undefined) {
			back = back.cause;
			depth++;
		}
		assert.equal(depth, 12);
		assert.equal((back as Error).message, "level 0");
	});

	it("turns anything of the wrong shape into an error that says so, and never throws", () => {
		for (const [value, kind] of [[null, "null"], [[1], "an array"], [5, "number"], [{ __byopError: true, name: 1 }, "object"]] as const) {
			const error = deserializeError(value as unknown as SerializedError);
			assert.match(error.message, new RegExp(`wrong shape was received \\(${kind}\\)`));
		}
		const hostile = { __byopError: true, name: "Error", message: "m", stack: undefined, props: new Proxy({}, { ownKeys: () => { throw new Error("no keys"); } }) } as SerializedError;
		assert.ok(isSerializedError(hostile));
		const error = deserializeError(hostile);
		assert.match(error.message, /wrong shape/);
		assert.match(String((error.cause as Error).message), /no keys/);
		// An unknown class name gives an Error of that name; a serialized cause past the depth, its text.
		const unknown = deserializeError({ __byopError: true, name: "FromElsewhere", message: "m", stack: "s", props: { errors: [{ __byopError: true, name: "TypeError", message: "i", stack: undefined, props: {} }] } });
		assert.equal(unknown.name, "FromElsewhere");
		assert.ok((unknown as Error & { errors: unknown[] }).errors[0] instanceof TypeError);
		const deep = deserializeError({ __byopError: true, name: "Error", message: "m", stack: undefined, props: {}, cause: { __byopError: true, name: "RangeError", message: "deep", stack: undefined, props: {} } }, 8);
		assert.equal((deep.cause as Error).message, "RangeError: deep");
	});
});
