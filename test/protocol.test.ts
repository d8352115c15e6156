// The protocol between a pool process and the scheduler does not trust the task running in it:
// nothing a task sends as its process lifts a limit, settles another call, or harms the scheduler.
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { describe, it } from "node:test";
import * as byop from "../src/index.ts";
import { type Future, Scheduler, WorkerProtocolError } from "../src/index.ts";
import { CpuTimeLimitError, PynisherPlugin, type PynisherOptions } from "../src/pynisher/index.ts";
import { deserializeError, type SerializedError } from "../src/serialize.ts";
import { runAll } from "./helpers.ts";

function hostile(name: string) {
	return { module: new URL("./fixtures/hostile.mjs", import.meta.url), name };
}

/** The malformed messages of test/fixtures/hostile.mjs, by name. */
const malformedKinds = [
	"reply without fields",
	"reply fields at the top",
	"failed reply with a garbage error",
	"reply with stats of the wrong type",
	"unknown type",
	"no type",
	"a string",
	"a number",
	"fatal with a garbage error",
	"spawned with a huge array",
	"reply that is a huge array",
	"a loader registered unasked",
	"ready again",
];

/** Each way a call with limits runs in a pool process. */
const KINDS = ["processes", "sequential"] as const;

function scheduler(kind: (typeof KINDS)[number]): Scheduler {
	return kind === "processes" ? Scheduler.withProcesses({ maxWorkers: 1 }) : Scheduler.withSequential();
}

function limited(on: Scheduler, name: string, options: PynisherOptions) {
	return on.task(hostile(name), { plugins: [new PynisherPlugin(options)] });
}

/** A limit every call here gets, so that sequential calls run in a process too. */
const ROOMY: PynisherOptions = { wallTimeLimit: "30s" };

function outcome(future: Future | undefined): string {
	return future === undefined ? "not submitted" : future.state === "result" ? `result ${JSON.stringify(future.result)}` : `${future.state} ${String(future.exception)}`;
}

function protocolError(future: Future | undefined): void {
	assert.ok(future?.exception instanceof WorkerProtocolError, outcome(future));
	assert.equal((future.exception as WorkerProtocolError).code, "ERR_WORKER_PROTOCOL");
}

describe("the process protocol", () => {
	it("exports WorkerProtocolError", () => {
		assert.equal(byop.WorkerProtocolError, WorkerProtocolError);
		assert.equal(new WorkerProtocolError("x").name, "WorkerProtocolError");
	});

	it("deserializeError never throws, whatever it is given", () => {
		const deep: Record<string, unknown> = { __byopError: true, name: "Error", message: "deep", props: {} };
		let last = deep;
		for (let i = 0; i < 10_000; i++) {
			const next = { __byopError: true, name: "Error", message: `cause ${i}`, props: {} };
			last["cause"] = next;
			last = next;
		}
		const garbage: unknown[] = [
			undefined,
			null,
			42,
			"error",
			[],
			{},
			{ __byopError: true },
			{ __byopError: true, name: 7, message: "x", props: {} },
			{ __byopError: true, name: "Error", message: "x", props: null },
			{ __byopError: true, name: "Error", message: "x", props: {}, cause: null },
			{ __byopError: true, name: "Error", message: "x", props: {}, cause: 5, thrown: null },
			{ __byopError: true, name: "Error", message: "x", props: { errors: [null, { __byopError: true }, 3] } },
			{ __byopError: true, name: "TypeError", message: "x", props: JSON.parse('{"__proto__": null, "code": "E"}') },
			deep,
		];
		for (const value of garbage) {
			const error = deserializeError(value as SerializedError);
			assert.ok(error instanceof Error, String(value));
		}
		const kept = deserializeError({ __byopError: true, name: "TypeError", message: "x", stack: undefined, props: JSON.parse('{"__proto__": null, "code": "E"}') });
		assert.ok(kept instanceof TypeError, "a __proto__ property does not change the error's class");
		assert.equal((kept as Error & { code?: string }).code, "E");
	});

	for (const kind of KINDS) {
		it(`on ${kind}, a forged ready under a CPU limit ends the call at once, never past its limit`, async () => {
			const on = scheduler(kind);
			const task = limited(on, "forgeReady", { cpuTimeLimit: "300ms", wallTimeLimit: "30s" });
			const { futures } = await runAll(on, () => [task.submit(4000)]);
			const future = futures[0];
			protocolError(future);
			assert.ok((future?.usage?.wallMs ?? Infinity) < 2500, `the call ran ${future?.usage?.wallMs} ms`);
		});

		it(`on ${kind}, a forged ready under an RSS limit ends the call, never holding past its limit`, async () => {
			const on = scheduler(kind);
			const task = limited(on, "forgeReadyHold", { memoryLimit: "200mb", memoryKind: "rss", wallTimeLimit: "30s" });
			const { futures } = await runAll(on, () => [task.submit(655, 1500)]);
			protocolError(futures[0]);
		});
	}

	it("3,000 forged readys leave the main process's descriptors as they were", async () => {
		const on = Scheduler.withProcesses({ maxWorkers: 1 });
		const warm = on.task(hostile("add"), { plugins: [new PynisherPlugin(ROOMY)] });
		const task = limited(on, "forgeReadys", ROOMY);
		let before = 0;
		const { futures } = await runAll(on, () => {
			// Counted once the pool process runs, so that its own pipes are in both counts.
			const first = warm.submit(1, 2);
			void first?.finally(() => {
				before = readdirSync("/proc/self/fd").length;
			});
			return [first];
		});
		assert.equal(futures[0]?.result, 3);
		const { futures: attacked } = await runAll(on, () => [task.submit(3000, 1000)]);
		protocolError(attacked[0]);
		const after = readdirSync("/proc/self/fd").length;
		assert.ok(before > 0);
		assert.ok(after <= before + 10, `descriptors: ${before} before, ${after} after`);
	});

	for (const kind of KINDS) {
		it(`on ${kind}, a forged reply ends its call with WorkerProtocolError, and the next call gets its own result`, async () => {
			const on = scheduler(kind);
			const forge = limited(on, "forgeReply", ROOMY);
			const add = limited(on, "add", ROOMY);
			const { futures } = await runAll(on, () => [forge.submit(1, 800), add.submit(2, 3), add.submit(4, 5)]);
			protocolError(futures[0]);
			assert.equal(futures[1]?.result, 5, outcome(futures[1]));
			assert.equal(futures[2]?.result, 9, outcome(futures[2]));
		});
	}

	for (const shape of malformedKinds) {
		it(`a malformed message (${shape}) ends its call with WorkerProtocolError; the scheduler and the next call are fine`, async () => {
			const on = Scheduler.withProcesses({ maxWorkers: 1 });
			const send = limited(on, "sendMalformed", ROOMY);
			const add = limited(on, "add", ROOMY);
			const { futures } = await runAll(on, () => [send.submit(shape, 1, 800), add.submit(2, 3)]);
			protocolError(futures[0]);
			assert.equal(futures[1]?.result, 5, outcome(futures[1]));
		});
	}

	it("a malformed message from a process between calls replaces the process and fails no call", async () => {
		const on = Scheduler.withProcesses({ maxWorkers: 1 });
		const late = on.task(hostile("sendLater"));
		const add = on.task(hostile("add"));
		const later: Future[] = [];
		const { futures } = await runAll(on, () => {
			on.callLater("1s", () => {
				const next = add.submit(2, 3);
				if (next !== undefined) {
					later.push(next);
				}
			});
			return [late.submit("reply fields at the top", 300)];
		});
		assert.equal(futures[0]?.result, "later", outcome(futures[0]));
		assert.equal(later[0]?.result, 5, outcome(later[0]));
	});

	for (const kind of KINDS) {
		it(`on ${kind}, a message listener one call leaves behind cannot answer the next call`, async () => {
			const on = scheduler(kind);
			const listen = limited(on, "listenForNextCall", ROOMY);
			const sleep = limited(on, "sleep", ROOMY);
			const { futures } = await runAll(on, () => [listen.submit(), sleep.submit(300, "own"), sleep.submit(10, "own too")]);
			assert.equal(futures[0]?.result, "listening", outcome(futures[0]));
			assert.equal(futures[1]?.result, "own", outcome(futures[1]));
			assert.equal(futures[2]?.result, "own too", outcome(futures[2]));
		});
	}

	for (const kind of KINDS) {
		for (const patch of ["patchSend", "patchInnerSend"]) {
			it(`on ${kind}, ${patch} in one call does not alter the next call's result`, async () => {
				const on = scheduler(kind);
				const first = limited(on, patch, ROOMY);
				const add = limited(on, "add", ROOMY);
				const { futures } = await runAll(on, () => [first.submit(), add.submit(20, 22), add.submit(1, 1)]);
				assert.equal(futures[0]?.state, "result", outcome(futures[0]));
				assert.equal(futures[1]?.result, 42, outcome(futures[1]));
				assert.equal(futures[2]?.result, 2, outcome(futures[2]));
			});
		}

		it(`on ${kind}, a call's process.chdir() does not carry over to the next call`, async () => {
			const on = scheduler(kind);
			const away = limited(on, "chdirAway", ROOMY);
			const cwd = limited(on, "cwd", ROOMY);
			const { futures } = await runAll(on, () => [away.submit(), cwd.submit()]);
			assert.equal(futures[0]?.result, tmpdir(), outcome(futures[0]));
			assert.equal(futures[1]?.result, process.cwd(), outcome(futures[1]));
		});
	}

	for (const kind of KINDS) {
		it(`on ${kind}, a forged "spawned" naming every next thread as already there does not hide a spinning thread`, async () => {
			const on = scheduler(kind);
			const task = limited(on, "forgeSpawned", { cpuTimeLimit: "300ms", wallTimeLimit: "30s" });
			const { futures } = await runAll(on, () => [task.submit(3000)]);
			protocolError(futures[0]);
		});

		for (const name of ["bypassSpin", "bareSpawnedBypassSpin"]) {
			it(`on ${kind}, a thread started past the spawn watch (${name}) counts against the CPU limit`, async () => {
				const on = scheduler(kind);
				const task = limited(on, name, { cpuTimeLimit: "300ms", wallTimeLimit: "30s" });
				const { futures } = await runAll(on, () => [task.submit(4000)]);
				assert.ok(futures[0]?.exception instanceof CpuTimeLimitError, outcome(futures[0]));
				assert.ok((futures[0]?.usage?.wallMs ?? Infinity) < 3000, `the call ran ${futures[0]?.usage?.wallMs} ms`);
			});
		}
	}
});
