import type { MessagePort } from "node:worker_threads";
import type { ResolvedRef } from "../ref.ts";
import { type CommDown, type CommUp, commUpProblem } from "./comm.ts";
import { isSerializedError, type SerializedError } from "../serialize.ts";

/** What the main side sends to run one call, in a thread or a process. */
export interface CallPayload {
	readonly id: number;
	readonly ref: ResolvedRef;
	readonly args: readonly unknown[];
}

/**
 * A call sent to a pool process. `token` is drawn at random for each call and sent only with it:
 * the process's entry keeps it out of the task's reach and returns it with the call's reply, so
 * that a reply the task forged is told from the real one.
 */
export interface ProcessCallPayload extends CallPayload {
	readonly token: string;
	/** The call has a comm channel (its task has a `CommPlugin`): its messages go as `comm` messages with its id and token. */
	readonly comm?: boolean;
	/**
	 * On the portable path (no `/proc`), the limits the process's watcher reads the call against
	 * and reports on (see `worker/process-watcher.ts`); the parent enforces them.
	 */
	readonly watch?: { readonly cpuMs?: number | undefined; readonly rssBytes?: number | undefined; readonly wallMs?: number | undefined; readonly sampleMs: number } | undefined;
}

/** A call sent to a worker thread: its place in the shared call slots (see `call-slots.ts`). */
export interface ThreadCallPayload extends CallPayload {
	readonly slot: number;
	/** Which use of the slot this call is. */
	readonly generation: number;
	/** The pool's key (see `ThreadWorkerData`): a call without it is not run. */
	readonly key: string;
	/**
	 * The call's own channel to the main side, for a task with a `CommPlugin` (transferred with
	 * the call): what the task sends (`CommUp`), then an `end` before the call answers, so that
	 * the main side has everything the task sent before it settles the call (unlike piscina's
	 * answer, which travels on another port).
	 */
	readonly port?: MessagePort | undefined;
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
	| { readonly id: number; readonly token: string; readonly ok: true; readonly value: unknown; readonly stats: CallStats }
	| { readonly id: number; readonly token: string; readonly ok: false; readonly error: SerializedError; readonly stats: CallStats }
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
export type ParentMessage =
	| { readonly type: "call"; readonly payload: ProcessCallPayload }
	| ({ readonly type: "abort" } & AbortMessage)
	/** An acknowledgement or an answer on call `id`'s comm channel. */
	| { readonly type: "comm"; readonly id: number; readonly comm: CommDown }
	/** Without `/proc`: the token with which the process's watcher reports its readings (see `worker/process-watcher.ts`). */
	| { readonly type: "watch"; readonly token: string };

/**
 * Messages from a pool process to its parent. The task runs in that process and can send any of
 * them too (`process.send`): the parent checks each one (`childMessageProblem`) and trusts none
 * of what it says about the process (its pid, its threads).
 */
export type ChildMessage =
	/** The process has started and takes calls (once). */
	| { readonly type: "ready" }
	| { readonly type: "reply"; readonly reply: CallReply }
	| { readonly type: "fatal"; readonly error: SerializedError }
	/**
	 * The running call is about to start a worker thread or a process: its use is read closely
	 * from now on. Which threads were there before is the parent's own reading.
	 */
	| { readonly type: "spawned" }
	/** An error outside any call while the process was idle: it should not take another call. */
	| { readonly type: "retire"; readonly error: SerializedError }
	/**
	 * The process registered its TypeScript loader for the call in flight, before any of the
	 * call's own code ran: the threads it has now are no call's. Taken once per process, and only
	 * for a call the parent knows to need the loader.
	 */
	| { readonly type: "registered" }
	/** A message on the running call's comm channel, with the call's id and token, as its reply carries them. */
	| { readonly type: "comm"; readonly id: number; readonly token: string; readonly comm: CommUp };

/** The fields each message from a pool process has, by type; a field with `?` may be left out. */
const CHILD_FIELDS: Readonly<Record<ChildMessage["type"], readonly string[]>> = {
	ready: ["type"],
	reply: ["type", "reply"],
	fatal: ["type", "error"],
	spawned: ["type"],
	retire: ["type", "error"],
	registered: ["type"],
	comm: ["type", "id", "token", "comm"],
};

/** The fields of a reply: those of a result or of a failure, and those any reply may have. */
const REPLY_FIELDS = { always: ["id", "token", "ok", "stats"], result: ["value"], failure: ["error"], optional: ["leftWork", "loadedRss"] } as const;

/**
 * What is wrong with a message from a pool process, as a phrase ("has no reply"), or `undefined`
 * when it has the shape of a `ChildMessage`: a known type, the fields of that type (no others)
 * with values of their types. Whether the process may send it now is the receiver's to judge.
 */
export function childMessageProblem(message: unknown): string | undefined {
	if (!isRecord(message)) {
		return `is not an object but ${describeType(message)}`;
	}
	const type = message["type"];
	if (typeof type !== "string" || !Object.hasOwn(CHILD_FIELDS, type)) {
		return typeof type === "string" ? `has an unknown type (${JSON.stringify(type.slice(0, 40))})` : "has no type";
	}
	const problem = fieldsProblem(message, CHILD_FIELDS[type as ChildMessage["type"]], []);
	if (problem !== undefined) {
		return `(${type}) ${problem}`;
	}
	if (type === "reply") {
		const reply = replyProblem(message["reply"]);
		return reply === undefined ? undefined : `(reply) ${reply}`;
	}
	if (type === "comm") {
		if (!Number.isSafeInteger(message["id"])) {
			return "(comm) has an id that is not an integer";
		}
		if (typeof message["token"] !== "string") {
			return "(comm) has a token that is not a string";
		}
		const comm = commUpProblem(message["comm"]);
		return comm === undefined ? undefined : `(comm) ${comm}`;
	}
	if (type === "fatal" || type === "retire") {
		return isSerializedError(message["error"]) ? undefined : `(${type}) carries no error`;
	}
	return undefined;
}

function replyProblem(reply: unknown): string | undefined {
	if (!isRecord(reply)) {
		return `is not an object but ${describeType(reply)}`;
	}
	if (typeof reply["ok"] !== "boolean") {
		return "has no ok";
	}
	const own = reply["ok"] ? REPLY_FIELDS.result : REPLY_FIELDS.failure;
	const problem = fieldsProblem(reply, [...REPLY_FIELDS.always, ...own], REPLY_FIELDS.optional);
	if (problem !== undefined) {
		return problem;
	}
	if (!Number.isSafeInteger(reply["id"])) {
		return "has an id that is not an integer";
	}
	if (typeof reply["token"] !== "string") {
		return "has a token that is not a string";
	}
	if (!reply["ok"] && !isSerializedError(reply["error"])) {
		return "has an error of the wrong shape";
	}
	const stats = reply["stats"];
	if (!isRecord(stats) || fieldsProblem(stats, ["wallMs", "cpuMs", "peakMemoryBytes"], []) !== undefined || !Object.values(stats).every(Number.isFinite)) {
		return "has stats of the wrong shape";
	}
	if (reply["leftWork"] !== undefined && typeof reply["leftWork"] !== "boolean") {
		return "has a leftWork that is not a boolean";
	}
	const loadedRss = reply["loadedRss"];
	if (loadedRss !== undefined && !(typeof loadedRss === "number" && Number.isFinite(loadedRss) && loadedRss >= 0)) {
		return "has a loadedRss that is not a size";
	}
	return undefined;
}

/** What is wrong with the fields of `record`: one of `required` missing, or one neither required nor `optional`. */
function fieldsProblem(record: Record<string, unknown>, required: readonly string[], optional: readonly string[]): string | undefined {
	for (const field of required) {
		if (!Object.hasOwn(record, field)) {
			return `has no ${field}`;
		}
	}
	for (const field of Object.keys(record)) {
		if (!required.includes(field) && !optional.includes(field)) {
			return `has a field it should not have (${JSON.stringify(field.slice(0, 40))})`;
		}
	}
	return undefined;
}

/** A plain object (not an array, not null). */
function isRecord(value: unknown): value is Record<string, unknown> {
	return typeof value === "object" && value !== null && !Array.isArray(value);
}

function describeType(value: unknown): string {
	return value === null ? "null" : Array.isArray(value) ? "an array" : `a ${typeof value}`;
}
