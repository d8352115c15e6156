import type { ResolvedRef } from "../ref.ts";
import type { SerializedError } from "../serialize.ts";

/** What the main side sends to run one call, in a thread or a process. */
export interface CallPayload {
	readonly id: number;
	readonly ref: ResolvedRef;
	readonly args: readonly unknown[];
}

/** A call sent to a worker thread: its place in the shared call slots (see `call-slots.ts`). */
export interface ThreadCallPayload extends CallPayload {
	readonly slot: number;
	/** Which use of the slot this call is. */
	readonly generation: number;
	/** The pool's key (see `ThreadWorkerData`): a call without it is not run. */
	readonly key: string;
}

/** What a worker measured of one call. */
export interface CallStats {
	readonly wallMs: number;
	/** CPU time of the thread (or process) during the call, or -1 when it cannot be read. */
	readonly cpuMs: number;
	/** The largest memory seen during the call, in bytes. */
	readonly peakMemoryBytes: number;
}

/** What a process answers for one call (a thread answers with the value or error alone and records the rest in its slot). */
export type CallReply = (
	| { readonly id: number; readonly ok: true; readonly value: unknown; readonly stats: CallStats }
	| { readonly id: number; readonly ok: false; readonly error: SerializedError; readonly stats: CallStats }
) & {
	/** The call left work running in the process (a timer, a handle): the process is replaced. */
	readonly leftWork?: boolean;
	/**
	 * The process's resident memory once the call had loaded its job's module, when it loaded one:
	 * what the process holds for its modules, which the next call is not charged for.
	 */
	readonly loadedRss?: number | undefined;
};

/** Sent by the main side to ask a running call to stop (the call's signal aborts). */
export interface AbortMessage {
	readonly abort: number;
	readonly reason: SerializedError;
}

/** The data each worker thread starts with. */
export interface ThreadWorkerData {
	/**
	 * The call slots (see `call-slots.ts`). Each thread takes them, the channel and the key as it
	 * starts, and removes them from its worker data: no task can reach them.
	 */
	readonly slots: SharedArrayBuffer;
	/** The broadcast channel that carries `AbortMessage`s: a random name, which no task can guess. */
	readonly channel: string;
	/** A random key that every call sent to a thread carries: a task that calls the thread's entry itself has not got it. */
	readonly key: string;
	/** Loader hooks to register before the first TypeScript call (see `tsx-hooks.ts`). */
	readonly loaders: readonly string[];
	/**
	 * The heap cap of the pool's threads, in MB, when it has one: its calls have memory limits,
	 * whose watch counts what each call grows.
	 */
	readonly cap: { readonly old: number; readonly young: number } | undefined;
}

/** Messages from the parent to a pool process. */
export type ParentMessage = { readonly type: "call"; readonly payload: CallPayload } | ({ readonly type: "abort" } & AbortMessage);

/** Messages from a pool process to its parent. */
export type ChildMessage =
	| { readonly type: "ready"; readonly pid: number }
	| { readonly type: "reply"; readonly reply: CallReply }
	| { readonly type: "fatal"; readonly error: SerializedError }
	/**
	 * The running call is about to start a worker thread or a process: its use is read closely
	 * from now on. `before` are the process's threads (ids) just before.
	 */
	| { readonly type: "spawned"; readonly before: readonly number[] }
	/** An error outside any call while the process was idle: it should not take another call. */
	| { readonly type: "retire"; readonly error: SerializedError };
