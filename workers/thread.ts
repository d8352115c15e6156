// Runs inside each worker thread of a piscina pool: loads the task's function, calls it, and
// reports what it measured. Limits are enforced from the main thread, never from here.
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { BroadcastChannel, workerData } from "node:worker_threads";
import { CallControl } from "../src/context.ts";
import { ControlView, currentTid, ThreadClock } from "../src/control.ts";
import { HeapSampler, invoke } from "../src/invoke.ts";
import type { AbortMessage, CallPayload, ThreadWorkerData } from "../src/protocol.ts";
import { deserializeError, type SerializedError, serializeError } from "../src/serialize.ts";
import { loadersFor } from "../src/loaders.ts";
import { loadedFunction, loadFunction } from "../src/load.ts";

const data = workerData as ThreadWorkerData;
const control = new ControlView(data.control);
const tid = currentTid();
const clock = new ThreadClock();
const running = new Map<number, CallControl>();

/**
 * In a pool for memory-limited calls, a call whose memory outside the heap grew by more than this
 * has its thread collect garbage before the next call starts: Buffers it dropped still count as
 * external memory until they are collected, and the next call's growth is measured from its start.
 */
const COLLECT_AFTER_BYTES = 32 * 1024 * 1024;
let collectFirst = false;
let collect: (() => void) | undefined;

const channel = new BroadcastChannel(data.channel);
channel.unref();
channel.onmessage = (event) => {
	const message = (event as unknown as { data: AbortMessage }).data;
	running.get(message.abort)?.abort(deserializeError(message.reason));
};

/**
 * Runs one call. It answers with the value, or the serialized error, and records which it was
 * and what the call used in the call's control slot. A call whose slot has moved on (it was
 * stopped before it started) does not run.
 */
export default async function runCall(payload: CallPayload): Promise<unknown> {
	const { slot, generation } = payload;
	// Loading happens under the slot's load word, so that a stop waits for the load to end (see
	// ControlView): a loader before the call starts, the job's module after (its load counts
	// towards the call's limits).
	const loading = loadersFor(payload.ref.module, data.loaders);
	if (loading !== undefined) {
		const loaded = await underLoadWord(slot, generation, () => loading);
		if (loaded === "stopped") {
			return undefined;
		}
		if (loaded !== undefined) {
			throw loaded.error;
		}
	}
	if (collectFirst) {
		collectFirst = false;
		collectGarbage();
	}
	const startCpu = clock.start();
	if (!control.markStarted(slot, generation, tid, startCpu)) {
		return undefined;
	}
	const started = performance.now();
	// Registered before the load, so that a stop's notice during the load reaches the call.
	const context = new CallControl(payload.id);
	running.set(payload.id, context);
	// From the start, so that what the job's module allocates as it loads counts as the call's.
	const sampler = new HeapSampler((peak, external) => control.setMemory(slot, generation, peak, external));
	let failedLoad: FailedLoad | undefined;
	if (loadedFunction(payload.ref) === undefined) {
		const loaded = await underLoadWord(slot, generation, () => loadFunction(payload.ref));
		if (loaded === "stopped") {
			running.delete(payload.id);
			return undefined;
		}
		failedLoad = loaded;
	}
	const result = failedLoad ?? (await invoke(payload.ref, payload.args, context, sampler));
	running.delete(payload.id);
	const wallMs = performance.now() - started;
	const cpu = clock.spent(startCpu, wallMs);
	const answer: unknown | SerializedError = result.ok ? result.value : serializeError(result.error);
	control.finish(slot, generation, result.ok, wallMs, cpu, sampler.stop());
	collectFirst = data.capped && sampler.externalGrowth > COLLECT_AFTER_BYTES;
	// What the call printed reaches the main thread before its answer: a thread ended after the
	// call (a limit, the end of the run) would lose output still buffered here.
	if (process.stdout.writableLength > 0) {
		await drained(process.stdout);
	}
	if (process.stderr.writableLength > 0) {
		await drained(process.stderr);
	}
	return answer;
}

type FailedLoad = { readonly ok: false; readonly error: unknown };

/**
 * Runs a load while holding the slot's load word. Resolves `"stopped"` when the call must not
 * run (its slot moved on, or the main thread asked it to stop during the load), else the load's
 * failure, if it failed.
 */
async function underLoadWord(slot: number, generation: number, load: () => Promise<unknown>): Promise<"stopped" | FailedLoad | undefined> {
	if (!control.beginLoad(slot, generation)) {
		return "stopped";
	}
	const failure = await load().then(
		() => undefined,
		(error: unknown): FailedLoad => ({ ok: false, error }),
	);
	return control.endLoad(slot, generation) ? failure : "stopped";
}

/** A full garbage collection in this thread. */
function collectGarbage(): void {
	if (collect === undefined) {
		// The flag exposes `gc` to contexts made while it is set: this one only.
		setFlagsFromString("--expose-gc");
		collect = runInNewContext("gc") as () => void;
		setFlagsFromString("--no-expose-gc");
	}
	// Buffers' memory is released by a sweep that the next collection finishes: two, so that
	// what was dropped no longer counts as external memory.
	collect();
	collect();
}

function drained(stream: NodeJS.WriteStream): Promise<void> {
	return new Promise((resolve) => stream.write("", () => resolve()));
}
