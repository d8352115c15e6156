// Runs inside each worker thread of a piscina pool: loads the task's function, calls it, and
// reports what it measured. Limits are enforced from the main thread, never from here.
import { BroadcastChannel, workerData } from "node:worker_threads";
import { ControlView, currentTid, openOwnSchedstat, readSchedstat } from "../src/control.ts";
import { HeapSampler, invoke } from "../src/invoke.ts";
import type { AbortMessage, CallPayload, CallReply, ThreadWorkerData } from "../src/protocol.ts";
import { deserializeError, serializeError } from "../src/serialize.ts";
import { registerLoaders } from "../src/loaders.ts";

const data = workerData as ThreadWorkerData;
const control = new ControlView(data.control);
const tid = currentTid();
const schedstat = openOwnSchedstat();
const running = new Map<number, AbortController>();
let loaded: Promise<void> | undefined;
const TYPESCRIPT = /\.[cm]?tsx?$/;

const channel = new BroadcastChannel(data.channel);
channel.unref();
channel.onmessage = (event) => {
	const message = (event as unknown as { data: AbortMessage }).data;
	running.get(message.abort)?.abort(deserializeError(message.reason));
};

function threadCpuNs(): number {
	if (schedstat >= 0) {
		return readSchedstat(schedstat);
	}
	const usage = (process as { threadCpuUsage?: () => NodeJS.CpuUsage }).threadCpuUsage?.();
	return usage === undefined ? -1 : (usage.user + usage.system) * 1000;
}

export default async function runCall(payload: CallPayload): Promise<CallReply> {
	if (TYPESCRIPT.test(payload.ref.module) && data.loaders.length > 0) {
		// Loader hooks (tsx) cost a worker about 150 ms: register them only when a module needs them.
		loaded ??= registerLoaders(data.loaders);
		await loaded;
	}
	const startCpu = threadCpuNs();
	control.markStarted(payload.slot, tid, startCpu);
	const started = performance.now();
	const sampler = new HeapSampler((peak, external) => control.setMemory(payload.slot, peak, external));
	const abort = new AbortController();
	running.set(payload.id, abort);
	const result = await invoke(payload.ref, payload.args, payload.id, abort.signal, sampler);
	running.delete(payload.id);
	const endCpu = threadCpuNs();
	const stats = {
		wallMs: performance.now() - started,
		cpuMs: startCpu < 0 || endCpu < 0 ? -1 : (endCpu - startCpu) / 1e6,
		peakMemoryBytes: sampler.stop(),
	};
	return result.ok ? { id: payload.id, ok: true, value: result.value, stats } : { id: payload.id, ok: false, error: serializeError(result.error), stats };
}
