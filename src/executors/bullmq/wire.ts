import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import v8 from "node:v8";
import { DataCloneError, RemoteRefusedError } from "../../errors.ts";
import type { Usage } from "../../future.ts";
import "../../limits/errors.ts";
import type { Limits } from "../../limits/types.ts";
import type { ResolvedRef } from "../../ref.ts";
import { deserializeError, isSerializedError, type SerializedError, serializeError } from "../../serialize.ts";
import { findUncloneable } from "../../worker/uncloneable.ts";

/** What travels between a scheduler and its worker hosts through Redis: job data, outcomes, channels. */

/** byop's version: a host refuses jobs from another. */
export const BYOP_VERSION = (createRequire(import.meta.url)("byop/package.json") as { version: string }).version;

/** How long a host holds a job's lock before it must renew it (BullMQ renews at half of it). */
export const LOCK_MS = 4000;
/** How often hosts look for jobs whose host stopped renewing their lock. */
export const STALLED_CHECK_MS = 1500;

/** The pub/sub channel on which a scheduler asks hosts to stop a running job (the message is its id). */
export function cancelChannel(prefix: string, queueName: string): string {
	return `${prefix}:${queueName}:cancel`;
}

/** A job's data: only names code, never carries it. */
export interface JobData {
	/** byop's version on the scheduler. */
	readonly byop: string;
	/** A path relative to the root (posix separators), or a package specifier. */
	readonly module: string;
	readonly kind: "file" | "package";
	readonly name: string;
	/** The arguments, `v8.serialize`d, in base64. */
	readonly args: string;
	readonly limits: Limits | null;
	readonly retryOnHostLoss: boolean;
	readonly taskName: string;
	/** For a call with a comm channel (`CommPlugin`): the scheduler's id, which names its channel. */
	readonly comm: string | null;
}

/** How a job ended on its host: what the job returns, for a result and an exception alike. */
export type Envelope =
	| { readonly kind: "result"; readonly value: unknown; readonly usage: Usage | undefined }
	| { readonly kind: "exception"; readonly error: SerializedError; readonly usage: Usage | undefined }
	| { readonly kind: "cancelled"; readonly error: SerializedError; readonly usage: Usage | undefined };

/** How a call ended on its host, as the scheduler reads it. */
export type RemoteEnding =
	| { readonly kind: "result"; readonly value: unknown; readonly usage: Usage | undefined }
	| { readonly kind: "exception"; readonly error: Error; readonly usage: Usage | undefined }
	| { readonly kind: "cancelled"; readonly error: Error; readonly usage: Usage | undefined };

/** A job's return value: the envelope, `v8.serialize`d in base64 (keeps Map, Set, BigInt, Date, typed arrays). */
export interface JobReturn {
	readonly byop: string;
	readonly envelope: string;
	/** How many comm messages the host published for the call (they come before its outcome). */
	readonly comm?: number;
}

/** Serializes what BullMQ stores as JSON: `v8.serialize`, in base64. */
export function pack(value: unknown): string {
	return v8.serialize(value).toString("base64");
}

/** Reverses `pack`. */
export function unpack(text: string): unknown {
	return v8.deserialize(Buffer.from(text, "base64"));
}

/** Packs a call's arguments; a `DataCloneError` when they hold what cannot be copied. */
export function packArgs(args: unknown[]): string {
	const uncloneable = findUncloneable(args);
	if (uncloneable !== undefined) {
		throw new DataCloneError(`The call's arguments hold ${uncloneable}, which cannot be copied to the task`);
	}
	try {
		return pack(args);
	} catch (error) {
		throw new DataCloneError(`The call's arguments cannot be copied to the task: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
	}
}

/** Packs how a job ended. A result that cannot be serialized ends as a `DataCloneError`. */
export function packEnvelope(envelope: Envelope, comm = 0): JobReturn {
	try {
		return { byop: BYOP_VERSION, envelope: pack(envelope), comm };
	} catch (error) {
		const failed = new DataCloneError(`The call's result cannot be copied back to the scheduler: ${error instanceof Error ? error.message : String(error)}`);
		return { byop: BYOP_VERSION, envelope: pack({ kind: "exception", error: serializeError(failed), usage: envelope.usage }), comm };
	}
}

/** How a call ended, read from a job's return value; an `Error` that says so when it is not a byop envelope. */
export function readReturn(value: unknown): RemoteEnding {
	try {
		const returned = value as Partial<JobReturn> | null;
		if (typeof returned !== "object" || returned === null || typeof returned.envelope !== "string") {
			throw new TypeError("not a byop job's return value");
		}
		const envelope = unpack(returned.envelope) as Envelope;
		if (envelope.kind === "result") {
			return { kind: "result", value: envelope.value, usage: envelope.usage };
		}
		if ((envelope.kind === "exception" || envelope.kind === "cancelled") && isSerializedError(envelope.error)) {
			const error = deserializeError(envelope.error);
			return envelope.kind === "exception" ? { kind: "exception", error, usage: envelope.usage } : { kind: "cancelled", error, usage: envelope.usage };
		}
		throw new TypeError(`unknown ending ${String((envelope as { kind?: unknown }).kind)}`);
	} catch (error) {
		return { kind: "exception", error: new Error(`The worker host answered with a value byop cannot read (${error instanceof Error ? error.message : String(error)})`, { cause: error }), usage: undefined };
	}
}

/**
 * How a call's module travels: a file under `root` as its path from `root` (posix
 * separators), a package specifier as it is. A file outside `root` is refused.
 */
export function moduleOnTheWire(ref: ResolvedRef, root: string): { readonly module: string; readonly kind: "file" | "package" } {
	if (!/^[a-z][a-z0-9+.-]*:/i.test(ref.module)) {
		return { module: ref.module, kind: "package" };
	}
	if (!ref.module.startsWith("file:")) {
		throw new RemoteRefusedError(`Module "${ref.module}" cannot run on a worker host: only files under the scheduler's root and packages travel`, "outside-root");
	}
	const file = fileURLToPath(ref.module);
	const relative = path.relative(path.resolve(root), file);
	if (relative === "" || relative.startsWith("..") || path.isAbsolute(relative)) {
		throw new RemoteRefusedError(`Module "${file}" is outside the scheduler's root "${path.resolve(root)}": only files under it travel to worker hosts (set \`root\` in Scheduler.withBullMQ)`, "outside-root");
	}
	return { module: relative.split(path.sep).join("/"), kind: "file" };
}
