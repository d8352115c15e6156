import type { ResolvedRef } from "./ref.ts";
import type { SerializedError } from "./serialize.ts";

/** What the main side sends to a thread or a process to run one call. */
export interface CallPayload {
	readonly id: number;
	readonly ref: ResolvedRef;
	readonly args: readonly unknown[];
	/** The control slot of the call (threads only). */
	readonly slot: number;
	/** Which use of the slot this call is (threads only). */
	readonly generation: number;
}

/** What a process answers for one call (a thread answers with the value or error alone; see `ControlView.finish`). */
export type CallReply =
	| { readonly id: number; readonly ok: true; readonly value: unknown; readonly stats: CallStats }
	| { readonly id: number; readonly ok: false; readonly error: SerializedError; readonly stats: CallStats };

/** What a worker measured of one call. */
export interface CallStats {
	readonly wallMs: number;
	/** CPU time of the thread (or process) during the call, or -1 when it cannot be read. */
	readonly cpuMs: number;
	/** The largest heap (+ external) size seen during the call, in bytes. */
	readonly peakMemoryBytes: number;
}

/** Sent by the main side to ask a running call to stop (the call's signal aborts). */
export interface AbortMessage {
	readonly abort: number;
	readonly reason: SerializedError;
}

/** The data each worker thread starts with. */
export interface ThreadWorkerData {
	readonly control: SharedArrayBuffer;
	readonly channel: string;
	/** Loader hooks to register before the first call (see `threadLoaders`). */
	readonly loaders: readonly string[];
	/** Whether the pool's heap is capped: its calls have memory limits, whose watch counts what each call grows. */
	readonly capped: boolean;
}
