import { DataCloneError, WorkerCrashedError } from "../../errors.ts";
import { MemoryLimitError } from "../../limits/errors.ts";
import type { Limits } from "../../limits/types.ts";

/** Whether piscina failed a call because its thread hit the pool's heap cap. */
export function isOutOfMemory(error: unknown): boolean {
	return typeof error === "object" && error !== null && (error as { code?: unknown }).code === "ERR_WORKER_OUT_OF_MEMORY";
}

/**
 * Turns why piscina gave no answer into the error the call reports: a heap cap hit under a
 * memory limit is that limit's `MemoryLimitError`; values that could not be copied a
 * `DataCloneError`; anything else a `WorkerCrashedError` with the thread's exit code.
 */
export function threadFailure(error: unknown, limits: Limits | undefined, capBytes: number): Error {
	if (isOutOfMemory(error)) {
		if (capBytes > 0 && limits?.memoryBytes !== undefined) {
			return new MemoryLimitError(limits.memoryBytes, capBytes, "heap", { cause: error });
		}
		return new WorkerCrashedError("The worker thread ran out of memory", { exitCode: 1 }, { cause: error });
	}
	if (error instanceof Error && (error.name === "DataCloneError" || (error as { code?: unknown }).code === "ERR_DATA_CLONE")) {
		return new DataCloneError(`A value of the call could not be copied between threads: ${error.message}`, { cause: error });
	}
	const message = error instanceof Error ? error.message : String(error);
	// piscina says "worker exited with code: 3" (with a colon): the exit code of process.exit() in the task.
	const exit = /exited with code:? (\d+)|exit code:? (\d+)/i.exec(message);
	const exitCode = exit === null ? null : Number(exit[1] ?? exit[2]);
	return new WorkerCrashedError(`The worker thread running the task ended without answering: ${message}`, { exitCode }, { cause: error });
}
