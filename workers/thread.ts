// The entry of each worker thread of a piscina pool: runs one call at a time and records what it
// measured in the call's slot. Limits are enforced from the main thread, never from here.
import { getHeapStatistics } from "node:v8";
import { BroadcastChannel, threadId, workerData } from "node:worker_threads";
import { currentTid } from "../src/procfs.ts";
import type { AbortMessage, ThreadCallPayload, ThreadWorkerData } from "../src/protocol/messages.ts";
import { deserializeError, serializeError } from "../src/serialize.ts";
import { nextTick } from "../src/worker/builtins.ts";
import { ThreadClock } from "../src/worker/clocks.ts";
import { collectGarbage } from "../src/worker/collect-garbage.ts";
import { countSharedBuffers } from "../src/worker/heap-sampler.ts";
import { TaskComm } from "../src/worker/comm.ts";
import { currentCall, RunningCalls } from "../src/worker/context.ts";
import { type CallSite, runCall, STOPPED } from "../src/worker/run-call.ts";
import { loadersFor } from "../src/worker/tsx-hooks.ts";
import { SlotWriter } from "../src/worker/slot-writer.ts";
import { watchSpawns } from "../src/worker/spawn-watch.ts";

const data = workerData as ThreadWorkerData;
// The call slots, the abort channel and the pool's key are taken here, before any job's module
// loads, and removed from the worker's data, which every module of the thread can read
// (`require("node:worker_threads").workerData`, its ES module binding, piscina's copy: all one
// object): a task that could write to the slots could stop its limits, and other calls'.
const { slots: buffer, channel: channelName, key } = data;
for (const field of ["slots", "channel", "key"] as const) {
	delete (data as Partial<ThreadWorkerData>)[field];
}
const slots = new SlotWriter(buffer);
const tid = currentTid();
const clock = new ThreadClock();
const calls = new RunningCalls();

/**
 * In a pool for memory-limited calls, a call whose memory outside the heap grew by more than this
 * has its thread collect garbage before the next call starts: Buffers it dropped still count as
 * external memory until they are collected, and the next call's growth is measured from its start.
 */
const COLLECT_AFTER_BYTES = 32 * 1024 * 1024;
let collectFirst = false;

/**
 * Whether this thread's heap cap was lifted: a heap-size flag set while the program runs (a task's
 * `v8.setFlagsFromString`) gives the threads started after it the flag's heap instead of their
 * cap. Such a thread runs no memory-limited call: each moves to a process.
 */
const capLifted = data.cap !== undefined && getHeapStatistics().heap_size_limit > (2 * (data.cap.old + 3 * data.cap.young) + 16) * 1024 * 1024;

/** The call running in this thread (a thread runs one call at a time), and its slot. */
const running = { id: 0, slot: 0, generation: 0 };

/** Marks the running call's slot: it started `what` (one of `STARTED`) beside itself (see `watchSpawns`). */
function markSpawned(what: number): void {
	// What a finished call left running has that call's context, not the running one's.
	if (running.id !== 0 && currentCall()?.id === running.id) {
		slots.markSpawned(running.slot, running.generation, what);
	}
}

/** How a call runs in this thread: under its slot's load word and start, as `running` says. */
const site: CallSite = {
	loaders: data.loaders,
	clock,
	// Loads happen under the slot's load word, so that a stop waits for a load to end.
	underLoad: async (load) => {
		const { slot, generation } = running;
		if (!slots.beginLoad(slot, generation)) {
			return STOPPED;
		}
		const failure = await load().then(
			() => undefined,
			(error: unknown) => ({ ok: false as const, error }),
		);
		return slots.endLoad(slot, generation) ? failure : STOPPED;
	},
	prepare: () => {
		if (collectFirst) {
			collectFirst = false;
			collectGarbage();
		}
	},
	begin: (startCpu) => {
		if (capLifted) {
			slots.refuse(running.slot, running.generation);
			return false;
		}
		return slots.markStarted(running.slot, running.generation, tid, startCpu, threadId);
	},
	report: (peak, external) => slots.setMemory(running.slot, running.generation, peak, external),
	// A pool with a heap cap runs memory-limited calls: their memory outside the heap is held to the limit.
	extraExternal: data.cap === undefined ? undefined : countSharedBuffers(),
};

// A limited call that starts a worker thread moves to a process, where its CPU time and memory
// count; a limited call's child processes still running at its end end with it.
watchSpawns(markSpawned);

const channel = new BroadcastChannel(channelName);
channel.unref();
channel.onmessage = (event) => {
	const message = (event as unknown as { data: AbortMessage }).data;
	calls.abort(message.abort, deserializeError(message.reason));
};

/**
 * Runs one call. It answers with the value, or the serialized error, and records which it was
 * and what the call used in the call's slot. A call whose slot has moved on (it was stopped
 * before it started) does not run.
 */
export default async function runThreadCall(payload: ThreadCallPayload): Promise<unknown> {
	const { slot, generation } = payload;
	// This module's export can be called by a task that imports it; only piscina has the key.
	if (payload.key !== key) {
		throw new Error("Not a call of this pool");
	}
	if (slot < 0) {
		// A warm-up: the thread has started; it registers the loader hooks its pool's calls need.
		await loadersFor(payload.ref.module, data.loaders);
		return undefined;
	}
	running.id = payload.id;
	running.slot = slot;
	running.generation = generation;
	const { port } = payload;
	const comm = port === undefined ? undefined : new TaskComm((message) => port.postMessage(message));
	if (port !== undefined && comm !== undefined) {
		port.on("message", (message: unknown) => comm.receive(message));
		port.unref();
	}
	let ran: Awaited<ReturnType<typeof runCall>>;
	try {
		ran = await runCall(payload, site, calls, comm);
	} finally {
		running.id = 0;
		// The last message on the call's port: everything the task sent is before it, and the
		// main side settles the call only once it has it.
		comm?.close();
		port?.postMessage({ kind: "end" });
		port?.removeAllListeners("message");
	}
	if (ran === undefined) {
		return undefined;
	}
	const { result } = ran;
	const answer = result.ok ? result.value : serializeError(result.error);
	const ended = slots.finish(slot, generation, result.ok, ran.wallMs, ran.cpuMs, ran.peakMemoryBytes, ran.leftWork);
	collectFirst = data.cap !== undefined && ran.externalGrowth > COLLECT_AFTER_BYTES;
	// What the call printed reaches the main thread before its answer: a thread ended after the
	// call (a limit, the end of the run) would lose output still buffered here.
	if (process.stdout.writableLength > 0) {
		await drained(process.stdout);
	}
	if (process.stderr.writableLength > 0) {
		await drained(process.stderr);
	}
	// Runs once piscina, to which the answer is returned, has posted it (in the same run of
	// microtasks): the main thread knows from then on that an answer it has not received was lost
	// (one it could not read, such as a value nested too deeply for its stack).
	nextTick(markPosted, slot, ended);
	return answer;
}

/** Marks the answer `finish` recorded as `ended` in `slot` as posted (see `SlotWriter.posted`). */
function markPosted(slot: number, ended: number): void {
	slots.posted(slot, ended);
}

function drained(stream: NodeJS.WriteStream): Promise<void> {
	return new Promise((resolve) => stream.write("", () => resolve()));
}
