// Runs inside each worker thread of a piscina pool: loads the task's function, calls it, and
// reports what it measured. Limits are enforced from the main thread, never from here.
import { BroadcastChannel, workerData } from "node:worker_threads";
import { CallControl } from "../src/context.ts";
import { ControlView, currentTid, ThreadClock } from "../src/control.ts";
import { HeapSampler, invoke } from "../src/invoke.ts";
import type { AbortMessage, CallPayload, ThreadWorkerData } from "../src/protocol.ts";
import { deserializeError, type SerializedError, serializeError } from "../src/serialize.ts";
import { registerLoaders, TYPESCRIPT_MODULE } from "../src/loaders.ts";

const data = workerData as ThreadWorkerData;
const control = new ControlView(data.control);
const tid = currentTid();
const clock = new ThreadClock();
const running = new Map<number, CallControl>();
let loaded: Promise<void> | undefined;

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
	if (loaded === undefined && data.loaders.length > 0 && TYPESCRIPT_MODULE.test(payload.ref.module)) {
		// Loader hooks (tsx) cost a worker about 150 ms: register them only when a module needs them.
		loaded = registerLoaders(data.loaders);
	}
	if (loaded !== undefined) {
		await loaded;
	}
	const { slot, generation } = payload;
	const startCpu = clock.start();
	if (!control.markStarted(slot, generation, tid, startCpu)) {
		return undefined;
	}
	const started = performance.now();
	const sampler = new HeapSampler((peak, external) => control.setMemory(slot, generation, peak, external));
	const context = new CallControl(payload.id);
	running.set(payload.id, context);
	const result = await invoke(payload.ref, payload.args, context, sampler);
	running.delete(payload.id);
	const wallMs = performance.now() - started;
	const cpu = clock.spent(startCpu, wallMs);
	const answer: unknown | SerializedError = result.ok ? result.value : serializeError(result.error);
	control.finish(slot, generation, result.ok, wallMs, cpu, sampler.stop());
	// What the call printed reaches the main thread before its answer: a thread ended after the
	// call (a limit, the end of the run) would lose output still buffered here.
	for (const stream of [process.stdout, process.stderr]) {
		if (stream.writableLength > 0) {
			await new Promise<void>((resolve) => stream.write("", () => resolve()));
		}
	}
	return answer;
}
