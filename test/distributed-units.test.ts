import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { packageName, resolveOnHost } from "../src/executors/bullmq/host-refs.ts";
import { describeRedis, maskUrl, parseBullMQOptions, parseRedisUrl } from "../src/executors/bullmq/options.ts";
import { deliverUp, HostComm, parseMessage, type UpMessage } from "../src/executors/bullmq/remote-comm.ts";
import { BYOP_VERSION, moduleOnTheWire, pack, packArgs, packEnvelope, readReturn } from "../src/executors/bullmq/wire.ts";
import { CommError, DataCloneError, RemoteRefusedError, TaskLoadError } from "../src/index.ts";
import { WallTimeLimitError } from "../src/pynisher/index.ts";
import { serializeError } from "../src/serialize.ts";

describe("what a worker host loads (resolveOnHost)", () => {
	let root: string;
	let outside: string;
	before(() => {
		outside = mkdtempSync(path.join(tmpdir(), "byop-outside-"));
		root = mkdtempSync(path.join(tmpdir(), "byop-root-"));
		mkdirSync(path.join(root, "lib"));
		writeFileSync(path.join(root, "lib", "jobs.mjs"), "export const x = () => 1;\n");
		writeFileSync(path.join(outside, "evil.mjs"), "export default () => 1;\n");
		symlinkSync(path.join(outside, "evil.mjs"), path.join(root, "lib", "link.mjs"));
		symlinkSync(outside, path.join(root, "escape"));
	});
	after(() => {
		rmSync(root, { recursive: true, force: true });
		rmSync(outside, { recursive: true, force: true });
	});
	const policy = () => ({ root, allow: new Set(["ms", "@scope/pkg"]) });
	const refusal = (fn: () => unknown, kind: string, pattern: RegExp): void => {
		assert.throws(fn, (error: Error) => error instanceof RemoteRefusedError && error.refusal === kind && pattern.test(error.message));
	};

	it("loads a file under the root, as its real file URL", () => {
		assert.equal(resolveOnHost("lib/jobs.mjs", "file", "x", policy()), pathToFileURL(path.join(root, "lib", "jobs.mjs")).href);
	});

	it("refuses absolute paths, `..`, and symlinks that lead out of the root, before any import", () => {
		refusal(() => resolveOnHost("/etc/passwd", "file", "x", policy()), "outside-root", /relative to the host's --root/);
		refusal(() => resolveOnHost("C:\\evil.mjs", "file", "x", policy()), "outside-root", /relative/);
		refusal(() => resolveOnHost("lib/../../x.mjs", "file", "x", policy()), "outside-root", /outside the host's --root/);
		refusal(() => resolveOnHost("lib/link.mjs", "file", "x", policy()), "outside-root", /leads outside/);
		refusal(() => resolveOnHost("escape/evil.mjs", "file", "x", policy()), "outside-root", /leads outside/);
		refusal(() => resolveOnHost(".", "file", "x", policy()), "outside-root", /outside/);
	});

	it("a file that is not there is a TaskLoadError", () => {
		assert.throws(() => resolveOnHost("lib/nope.mjs", "file", "x", policy()), (error: Error) => error instanceof TaskLoadError && /no such file/.test(error.message));
	});

	it("loads only the packages it was told to allow, subpaths included", () => {
		assert.equal(resolveOnHost("ms", "package", "default", policy()), "ms");
		assert.equal(resolveOnHost("@scope/pkg/sub", "package", "default", policy()), "@scope/pkg/sub");
		refusal(() => resolveOnHost("fast-check", "package", "x", policy()), "not-allowed", /"fast-check".*--allow/);
		refusal(() => resolveOnHost("@scope/other", "package", "x", policy()), "not-allowed", /--allow/);
		refusal(() => resolveOnHost("ms/../../etc", "package", "x", policy()), "not-allowed", /not a package specifier/);
		refusal(() => resolveOnHost("node:fs", "package", "x", policy()), "not-allowed", /not a package specifier/);
		assert.equal(packageName("@a/b/c"), "@a/b");
		assert.equal(packageName("a/b"), "a");
	});
});

describe("Redis URLs", () => {
	it("parse into connection options, TLS for rediss://", () => {
		assert.deepEqual(parseRedisUrl("u", "redis://127.0.0.1"), { host: "127.0.0.1", port: 6379 });
		assert.deepEqual(parseRedisUrl("u", "rediss://me:p%40ss@example.com:6380/3"), { host: "example.com", port: 6380, username: "me", password: "p@ss", db: 3, tls: {} });
		assert.deepEqual(parseRedisUrl("u", "redis://:pw@[::1]:7000"), { host: "::1", port: 7000, password: "pw" });
		assert.throws(() => parseRedisUrl("u", "redis://h/notadb"), /database number/);
		assert.throws(() => parseRedisUrl("u", "not a url:pw@"), TypeError);
	});

	it("as an object: every field is checked, naming it, and the password never shown", () => {
		const settings = parseBullMQOptions({ connection: { host: "redis.internal", port: 6380, username: "me", password: "hunter2", tls: { servername: "r" }, db: 4 }, queueName: "q" });
		assert.deepEqual(settings.redis, { host: "redis.internal", port: 6380, username: "me", password: "hunter2", db: 4, tls: { servername: "r" } });
		assert.equal(settings.where, "rediss://me:***@redis.internal:6380/4");
		assert.deepEqual(parseBullMQOptions({ connection: {}, queueName: "q" }).redis, { host: "127.0.0.1", port: 6379 });
		assert.deepEqual(parseBullMQOptions({ connection: { tls: false }, queueName: "q" }).redis, { host: "127.0.0.1", port: 6379 });
		assert.deepEqual(parseBullMQOptions({ connection: { tls: true }, queueName: "q" }).redis.tls, {});
		const bad: [unknown, RegExp][] = [
			[{ host: "" }, /`connection.host`/],
			[{ port: 1.5 }, /`connection.port`/],
			[{ username: 3 }, /`connection.username`/],
			[{ password: 3 }, /`connection.password`/],
			[{ tls: "yes" }, /`connection.tls`/],
			[{ db: -1 }, /`connection.db`/],
		];
		for (const [connection, pattern] of bad) {
			assert.throws(() => parseBullMQOptions({ connection, queueName: "q" }), pattern);
		}
		assert.throws(() => parseBullMQOptions({ connection: { password: 12345 }, queueName: "q" }), (error: Error) => !error.message.includes("12345"));
		assert.throws(() => parseBullMQOptions({ connection: "redis://h", queueName: "q", prefix: "a:b" }), /`prefix`/);
		assert.throws(() => parseBullMQOptions({ connection: "redis://h", queueName: "q", root: "" }), /`root`/);
	});

	it("are shown with their password masked", () => {
		assert.equal(maskUrl("redis://user:secret@h:1"), "redis://user:***@h:1");
		assert.equal(maskUrl("redis://secret@h:1"), "redis://***@h:1");
		assert.equal(maskUrl("redis://h:1"), "redis://h:1");
		assert.equal(describeRedis({ host: "h", port: 1, password: "secret", tls: {}, db: 2 }), "rediss://:***@h:1/2");
		assert.equal(describeRedis({ host: "h", port: 1, username: "u" }), "redis://u@h:1");
	});
});

describe("what travels through Redis", () => {
	it("a module travels relative to the root, a package as it is; anything else is refused", () => {
		const root = path.resolve("/srv/app");
		assert.deepEqual(moduleOnTheWire({ module: pathToFileURL("/srv/app/lib/jobs.ts").href, name: "x" }, root), { module: "lib/jobs.ts", kind: "file" });
		assert.deepEqual(moduleOnTheWire({ module: "ms", name: "x" }, root), { module: "ms", kind: "package" });
		assert.throws(() => moduleOnTheWire({ module: "https://example.com/x.mjs", name: "x" }, root), RemoteRefusedError);
		assert.throws(() => moduleOnTheWire({ module: pathToFileURL("/srv/other.ts").href, name: "x" }, root), /outside the scheduler's root/);
	});

	it("arguments that cannot be copied are a DataCloneError; a result that cannot be is one too", () => {
		assert.throws(() => packArgs([() => 1]), DataCloneError);
		const returned = packEnvelope({ kind: "result", value: Symbol("x") as unknown, usage: undefined });
		const ending = readReturn(returned);
		assert.ok(ending.kind === "exception" && ending.error instanceof DataCloneError);
	});

	it("outcomes keep their classes and values; what is no byop envelope says so", () => {
		const limit = new WallTimeLimitError(100, 120);
		const exception = readReturn(packEnvelope({ kind: "exception", error: serializeError(limit), usage: undefined }, 3));
		assert.ok(exception.kind === "exception" && exception.error instanceof WallTimeLimitError && exception.error.observed === 120);
		const cancelled = readReturn(packEnvelope({ kind: "cancelled", error: serializeError(new Error("stop")), usage: undefined }));
		assert.equal(cancelled.kind, "cancelled");
		const value = new Map([[1n, new Date(0)]]);
		assert.deepEqual(readReturn(packEnvelope({ kind: "result", value, usage: undefined })), { kind: "result", value, usage: undefined });
		for (const bad of [null, 42, { envelope: 3 }, { byop: BYOP_VERSION, envelope: "!!!" }, { envelope: pack({ kind: "other" }) }]) {
			const ending = readReturn(bad);
			assert.ok(ending.kind === "exception" && /cannot read/.test(ending.error.message), JSON.stringify(bad));
		}
	});
});

describe("a remote call's comm channel", () => {
	it("the host publishes in order and counts; the scheduler delivers, answers requests and closes", async () => {
		const sent: UpMessage[] = [];
		const host = new HostComm("job-1", "host-1", (message) => sent.push(message));
		host.open();
		host.message({ step: 1 });
		const answered = host.request("q");
		const failing = host.request("q2");
		const unanswered = host.request("q3");
		assert.deepEqual(
			sent.map((message) => message.kind),
			["open", "message", "request", "request", "request"],
		);
		const seen: string[] = [];
		const replies: { seq: number; ok: boolean; payload: string }[] = [];
		const comm = {
			open: () => seen.push("open"),
			message: (data: unknown) => seen.push(`message ${JSON.stringify(data)}`),
			request: (data: unknown) => (data === "q" ? Promise.resolve(new Map([[1, 2]])) : data === "q2" ? Promise.reject(new CommError("nobody", "no-handler")) : Promise.resolve(() => 1)),
			close: () => seen.push("close"),
		};
		for (const message of sent) {
			assert.equal(deliverUp(comm, parseMessage(JSON.stringify(message)) as Record<string, unknown>, (down) => replies.push(down)), false);
		}
		await new Promise((resolve) => setImmediate(resolve));
		assert.deepEqual(seen, ["open", 'message {"step":1}']);
		for (const reply of replies) {
			host.answer({ job: "job-1", ...reply });
		}
		assert.deepEqual(await answered, new Map([[1, 2]]));
		await assert.rejects(failing, (error: Error) => error instanceof CommError && error.failure === "no-handler");
		await assert.rejects(unanswered, (error: Error) => error instanceof CommError && /cannot be copied/.test(error.message));
		const last = host.request("never");
		host.close();
		await assert.rejects(last, (error: Error) => error instanceof CommError && error.failure === "closed");
		assert.equal(deliverUp(comm, { kind: "close" }, () => {}), true);
		assert.equal(deliverUp(comm, { kind: "unknown" }, () => {}), false);
		assert.equal(deliverUp(comm, { kind: "request", seq: "x" }, () => {}), false);
		assert.equal(host.published, 7);
		assert.equal(parseMessage("not json"), undefined);
		assert.equal(parseMessage("3"), undefined);
		host.answer({ job: "job-1", seq: 999, ok: true, payload: pack(1) });
	});
});
