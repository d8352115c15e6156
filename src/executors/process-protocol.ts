import type { CallPayload, CallReply } from "../protocol.ts";
import type { SerializedError } from "../serialize.ts";

/** Messages from the parent to a pool process. */
export type ParentMessage =
	| { readonly type: "call"; readonly payload: CallPayload }
	| { readonly type: "abort"; readonly abort: number; readonly reason: SerializedError };

/** Messages from a pool process to its parent. */
export type ChildMessage =
	| { readonly type: "ready"; readonly pid: number }
	| { readonly type: "reply"; readonly reply: CallReply }
	| { readonly type: "fatal"; readonly error: SerializedError }
	/** An error outside any call while the process was idle: it should not take another call. */
	| { readonly type: "retire"; readonly error: SerializedError };
