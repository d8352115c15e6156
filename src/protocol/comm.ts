import { isSerializedError, type SerializedError } from "../serialize.ts";

/**
 * How many messages and requests a task may have sent that the main side has not yet handled:
 * past it, `comm.send()` waits (its promise resolves once there is room) and what the task sends
 * meanwhile waits in the task's own thread or process, never in the main one.
 */
export const COMM_WINDOW = 1024;

/** The main side acknowledges what it handled in batches of this many messages. */
export const COMM_ACK_EVERY = 256;

/** What a running task sends to the main side over its call's channel. */
export type CommUp =
	/** `comm.send(data)`. */
	| { readonly kind: "message"; readonly data: unknown }
	/** `comm.request(data)`: the answer comes back with the same `seq`. */
	| { readonly kind: "request"; readonly seq: number; readonly data: unknown }
	/** The call has ended where it ran: nothing more comes on this channel (threads only). */
	| { readonly kind: "end" };

/** What the main side sends back to a running task over its call's channel. */
export type CommDown =
	/** `count` more messages or requests were handled: the task may send as many more. */
	| { readonly kind: "ack"; readonly count: number }
	| { readonly kind: "response"; readonly seq: number; readonly ok: true; readonly value: unknown }
	| { readonly kind: "response"; readonly seq: number; readonly ok: false; readonly error: SerializedError };

/** The fields of each message a task sends, by kind. */
const UP_FIELDS: Readonly<Record<CommUp["kind"], readonly string[]>> = {
	message: ["kind", "data"],
	request: ["kind", "seq", "data"],
	end: ["kind"],
};

/**
 * What is wrong with a comm message from a task, as a phrase, or `undefined` when it has the
 * shape of a `CommUp`: a known kind with exactly its fields. A process's comm messages are
 * checked with it (see `childMessageProblem`).
 */
export function commUpProblem(message: unknown): string | undefined {
	if (typeof message !== "object" || message === null || Array.isArray(message)) {
		return "is not an object";
	}
	const record = message as Record<string, unknown>;
	const kind = record["kind"];
	if (typeof kind !== "string" || !Object.hasOwn(UP_FIELDS, kind)) {
		return "has an unknown kind";
	}
	const fields = UP_FIELDS[kind as CommUp["kind"]];
	const keys = Object.keys(record);
	if (keys.length !== fields.length || !fields.every((field) => Object.hasOwn(record, field))) {
		return `(${kind}) has the wrong fields`;
	}
	if (kind === "request" && !(Number.isSafeInteger(record["seq"]) && (record["seq"] as number) > 0)) {
		return "(request) has a seq that is not a positive integer";
	}
	return undefined;
}

/** Whether `message` has the shape of a `CommDown` (checked by the task's side, which receives it). */
export function isCommDown(message: unknown): message is CommDown {
	if (typeof message !== "object" || message === null) {
		return false;
	}
	const record = message as Record<string, unknown>;
	if (record["kind"] === "ack") {
		return Number.isSafeInteger(record["count"]);
	}
	return record["kind"] === "response" && Number.isSafeInteger(record["seq"]) && (record["ok"] === true || (record["ok"] === false && isSerializedError(record["error"])));
}
