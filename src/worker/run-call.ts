// Abort reasons that are limit errors keep their class in the task's signal.
import "../limits/errors.ts";
import type { CallPayload } from "../protocol/messages.ts";
import { activeResources, now } from "./builtins.ts";
import type { Clock } from "./clocks.ts";
import type { TaskComm } from "./comm.ts";
import type { RunningCalls } from "./context.ts";
import { HeapSampler } from "./heap-sampler.ts";
import { FULL_CHECK_AFTER_MS, IntrinsicsWatch } from "./intrinsics.ts";
import { type Invocation, invoke } from "./invoke.ts";
import { loadedFunction, loadFunction } from "./job-module.ts";
import { workersAlive } from "./spawn-watch.ts";
import { loadersFor } from "./tsx-hooks.ts";

/** The built-ins of this thread or process, as calls should find them (see `IntrinsicsWatch`). */
const intrinsics = new IntrinsicsWatch();

/** A load that failed: the call ends with its error. */
export type FailedLoad = { readonly ok: false; readonly error: unknown };

/** Returned by a load when the call must not run (it was stopped meanwhile). */
export const STOPPED = "stopped";

/** What differs between running a call in a worker thread and in a pool process. */
export interface CallSite {
	/** Loader hooks to register before the first TypeScript module. */
	readonly loaders: readonly string[];
	readonly clock: Clock;
	/** Runs a module load for the call: resolves `STOPPED` when the call must not run, else the load's failure if it failed. */
	underLoad(load: () => Promise<unknown>): Promise<typeof STOPPED | FailedLoad | undefined>;
	/** Called just before the call's start is read. */
	prepare?(): void;
	/** Marks the call's start, with the CPU reading at that moment; `false` when the call must not run. */
	begin(startCpuNs: number): boolean;
	/** Receives each memory sample: the peak so far, and how far memory outside the heap grew. */
	report?(peak: number, external: number): void;
	/** Memory outside the heap that V8's count leaves out (see `countSharedBuffers`), where a call's is held to its limit. */
	readonly extraExternal?: (() => number) | undefined;
	/** Called once the call has loaded its job's module for the first time where it runs. */
	loaded?(): void;
}

/** What one call did where it ran. */
export interface Ran {
	readonly result: Invocation;
	readonly wallMs: number;
	readonly cpuMs: number;
	readonly peakMemoryBytes: number;
	/** How far the memory outside the heap grew during the call, at most. */
	readonly externalGrowth: number;
	/**
	 * Whether the call left work running after it ended (a timer, an immediate, an open handle it
	 * made): the thread or process that ran it is replaced, so that the work is stopped and the
	 * next call does not pay for it.
	 */
	readonly leftWork: boolean;
}

/**
 * Runs one call where this code runs (a worker thread or a pool process): registers the loader
 * hooks its module needs, marks its start, loads its function (counted towards the call), calls
 * it in its context and measures it. Resolves `undefined` when the call must not run. Rejects
 * when the loader hooks cannot be registered. With `comm`, the call has a channel to the main side,
 * on which everything it sent has gone before this resolves.
 */
export async function runCall(payload: CallPayload, site: CallSite, calls: RunningCalls, comm?: TaskComm): Promise<Ran | undefined> {
	// Loader hooks are registered before the call starts: they are the worker's, not the call's.
	const loading = loadersFor(payload.ref.module, site.loaders);
	if (loading !== undefined) {
		const loaded = await site.underLoad(() => loading);
		if (loaded === STOPPED) {
			return undefined;
		}
		if (loaded !== undefined) {
			throw loaded.error;
		}
	}
	site.prepare?.();
	const startCpu = site.clock.start();
	if (!site.begin(startCpu)) {
		return undefined;
	}
	const started = now();
	// Registered before the load, so that a stop's notice during the load reaches the call.
	const context = calls.add(payload.id, comm);
	// From the start, so that what the job's module allocates as it loads counts as the call's.
	const sampler = new HeapSampler(site.report, site.extraExternal);
	try {
		let failedLoad: FailedLoad | undefined;
		if (loadedFunction(payload.ref) === undefined) {
			const loaded = await site.underLoad(() => loadFunction(payload.ref));
			if (loaded === STOPPED) {
				return undefined;
			}
			failedLoad = loaded;
			if (loaded === undefined) {
				site.loaded?.();
				// What the module changed as it loaded is its own, the same for every call of it.
				intrinsics.retake();
			}
		}
		// Counted once the job's module has loaded: what its module keeps running is not the call's.
		const resources = activeWork();
		const workers = workersAlive();
		const result = failedLoad ?? (await invoke(payload.ref, payload.args, context, sampler));
		const wallMs = now() - started;
		const cpuMs = site.clock.spent(startCpu, wallMs);
		const peakMemoryBytes = sampler.stop();
		// What the task sent and still waits for room goes before the call's answer; then the
		// channel closes, with the timers of requests left unanswered.
		if (comm !== undefined) {
			await comm.flush();
			comm.close();
		}
		// A built-in it replaced is work left behind, which the next call (and the worker's own
		// machinery) would use. Checked first: a getter it put in a built-in's place runs in the
		// check, and what that getter starts is counted below. A call that threw or ran long gets
		// the full check (see `IntrinsicsWatch`).
		const patched = intrinsics.changedAfterCall(!result.ok || wallMs >= FULL_CHECK_AFTER_MS);
		// A worker thread it started and left running is work left behind too.
		const leftWork = patched || activeWork() > resources || workersAlive() > workers;
		return { result, wallMs, cpuMs, peakMemoryBytes, externalGrowth: sampler.externalGrowth, leftWork };
	} finally {
		comm?.close();
		calls.delete(payload.id);
	}
}

/**
 * How many timers, immediates and handles keep this thread's event loop busy. A worker thread's
 * stdout and stderr show as message ports while they flush: those are not work.
 */
function activeWork(): number {
	let count = 0;
	for (const resource of activeResources()) {
		if (resource !== "MessagePort") {
			count++;
		}
	}
	return count;
}
