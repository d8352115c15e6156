import { registerErrors } from "./serialize.ts";

/** A future that was cancelled before it produced a result. `await future` rejects with it. */
export class CancelledError extends Error {
	readonly code = "ERR_CANCELLED";
	override name = "CancelledError";

	constructor(message = "The task was cancelled", options?: ErrorOptions) {
		super(message, options);
	}
}

/** `task.submit()` while the scheduler is not running, or a second `run()` while one is under way. */
export class SchedulerStateError extends Error {
	readonly code = "ERR_SCHEDULER_STATE";
	override name = "SchedulerStateError";
}

/** The function a task refers to could not be loaded: a missing module, a missing export or one that is not a function. */
export class TaskLoadError extends Error {
	readonly code = "ERR_TASK_LOAD";
	override name = "TaskLoadError";
	readonly module: string;
	readonly export: string;

	constructor(message: string, module: string, exportName: string, options?: ErrorOptions) {
		super(message, options);
		this.module = module;
		this.export = exportName;
	}
}

/** The arguments or the result of a call could not be copied between threads or processes. */
export class DataCloneError extends Error {
	readonly code = "ERR_DATA_CLONE";
	override name = "DataCloneError";
}

/**
 * The thread or process that ran a task ended without answering: `process.exit()`, a fatal
 * signal, an uncaught error outside the task, or a worker that failed to start.
 */
export class WorkerCrashedError extends Error {
	readonly code = "ERR_WORKER_CRASHED";
	override name = "WorkerCrashedError";
	/** The exit code of the process or thread, when it exited. */
	readonly exitCode: number | null;
	/** The signal that ended the process, when one did. */
	readonly signal: NodeJS.Signals | null;

	constructor(message: string, details: { exitCode?: number | null; signal?: NodeJS.Signals | null }, options?: ErrorOptions) {
		super(message, options);
		this.exitCode = details.exitCode ?? null;
		this.signal = details.signal ?? null;
	}
}

/**
 * The process running a task broke the protocol between it and the scheduler: it sent a message
 * the scheduler did not ask for (a reply for another call, a second reply, a second `ready`) or
 * of a shape the protocol does not have, as a task that writes to its process's IPC channel
 * (`process.send`) does. The process is killed (with its whole group) and replaced; the call it
 * was running ends with this error.
 */
export class WorkerProtocolError extends Error {
	readonly code = "ERR_WORKER_PROTOCOL";
	override name = "WorkerProtocolError";
}

/** Why a `comm` call inside a task failed (see `CommPlugin`). */
export type CommFailure = "unavailable" | "timeout" | "no-handler" | "handler-failed" | "closed";

/**
 * A `comm.send()` or `comm.request()` inside a task failed: `comm` was used outside a task or on
 * a task without a `CommPlugin` (`unavailable`), a request got no answer in time (`timeout`), no
 * handler answered it (`no-handler`), the handler threw (`handler-failed`, its error is the
 * `cause`), or the call was being stopped or had ended (`closed`).
 */
export class CommError extends Error {
	readonly code = "ERR_COMM";
	override name = "CommError";
	/** Which failure it was. */
	readonly failure: CommFailure;

	constructor(message: string, failure: CommFailure = "closed", options?: ErrorOptions) {
		super(message, options);
		this.failure = failure;
	}
}

/** Why a worker host refused a job (see `RemoteRefusedError`). */
export type RemoteRefusal = "outside-root" | "not-allowed" | "version" | "malformed";

/**
 * A worker host (`byop worker`), or the scheduler before sending, refused a call: its module is
 * a file outside the host's `--root` (or the scheduler's `root`), a package the host was not
 * told to `--allow`, the job came from another byop version, or it was not a byop job at all.
 * Nothing of the module was imported.
 */
export class RemoteRefusedError extends Error {
	readonly code = "ERR_REMOTE_REFUSED";
	override name = "RemoteRefusedError";
	/** Why it was refused. */
	readonly refusal: RemoteRefusal;

	constructor(message: string, refusal: RemoteRefusal, options?: ErrorOptions) {
		super(message, options);
		this.refusal = refusal;
	}
}

/**
 * The worker host running a call was lost (killed, its machine gone, or shut down past its
 * grace period) before the call ended. The call is run again on another host only when its task
 * opted in (`retryOnHostLoss: true`), and then at most once.
 */
export class HostLostError extends Error {
	readonly code = "ERR_HOST_LOST";
	override name = "HostLostError";
}

registerErrors(CancelledError, SchedulerStateError, TaskLoadError, DataCloneError, WorkerCrashedError, WorkerProtocolError, CommError, RemoteRefusedError, HostLostError);
