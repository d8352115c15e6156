import { CommError, DataCloneError } from "../errors.ts";
import { COMM_WINDOW, type CommDown, type CommUp, isCommDown } from "../protocol/comm.ts";
import { deserializeError } from "../serialize.ts";
import { parseDuration, type Duration } from "../units.ts";
import { timers } from "./builtins.ts";
import { type CallControl, COMM, contextStorage } from "./context.ts";
import { findUncloneable } from "./uncloneable.ts";

/** How a call's channel carries what its task sends to the main side. */
export type CommPost = (message: CommUp) => void;

/** The options of `comm.request()`. */
export interface RequestOptions {
	/** How long to wait for an answer; it rejects with a `CommError` (`timeout`) after. @default no limit */
	readonly timeout?: Duration;
}

/** A request waiting for its answer. */
interface Pending {
	readonly resolve: (value: unknown) => void;
	readonly reject: (error: unknown) => void;
	readonly timer: ReturnType<typeof setTimeout> | undefined;
}

/** A message waiting for room in the window, and what resolves its `send()`. */
interface Queued {
	readonly message: CommUp;
	readonly posted: () => void;
}

const RESOLVED = Promise.resolve();

/**
 * The task's end of one call's channel, where the call runs. It keeps at most `COMM_WINDOW`
 * messages and requests in flight (sent, not yet acknowledged by the main side); what the task
 * sends past that waits here, in order, and its `send()` resolves once it has gone.
 */
export class TaskComm {
	readonly #post: CommPost;
	readonly #pending = new Map<number, Pending>();
	readonly #queue: Queued[] = [];
	#inFlight = 0;
	#seq = 0;
	/** Why the channel closed, once it did. */
	#closed: CommError | undefined;
	#drained: (() => void) | undefined;

	constructor(post: CommPost) {
		this.#post = post;
	}

	/** Sends `data` to the main side, where the task's `CommPlugin` emits `MESSAGE` with it. */
	send(data: unknown): Promise<void> {
		this.#check(data, "send");
		return this.#enqueue({ kind: "message", data });
	}

	/** Asks the main side: the task's `CommPlugin` emits `REQUEST`, and what its handler passes to `respond()` comes back. */
	request(data: unknown, options: RequestOptions = {}): Promise<unknown> {
		this.#check(data, "request");
		const timeoutMs = options.timeout === undefined ? undefined : parseDuration("timeout", options.timeout);
		const seq = ++this.#seq;
		return new Promise<unknown>((resolve, reject) => {
			const timer =
				timeoutMs === undefined
					? undefined
					: timers.setTimeout(() => {
							this.#pending.delete(seq);
							reject(new CommError(`The request got no answer within ${timeoutMs} ms`, "timeout"));
						}, timeoutMs);
			this.#pending.set(seq, { resolve, reject, timer });
			void this.#enqueue({ kind: "request", seq, data });
		});
	}

	/** Takes what the main side sent back: an acknowledgement or an answer. Anything else is ignored. */
	receive(message: unknown): void {
		if (!isCommDown(message)) {
			return;
		}
		const down: CommDown = message;
		if (down.kind === "ack") {
			this.#inFlight = Math.max(0, this.#inFlight - down.count);
			this.#drain();
			return;
		}
		const pending = this.#pending.get(down.seq);
		if (pending === undefined) {
			return;
		}
		this.#pending.delete(down.seq);
		if (pending.timer !== undefined) {
			timers.clearTimeout(pending.timer);
		}
		if (down.ok) {
			pending.resolve(down.value);
		} else {
			pending.reject(deserializeError(down.error));
		}
	}

	/** Resolves once everything the task sent has been handed to the channel (none waits for room). */
	flush(): Promise<void> {
		if (this.#queue.length === 0 || this.#closed !== undefined) {
			return RESOLVED;
		}
		return new Promise((resolve) => {
			this.#drained = resolve;
		});
	}

	/**
	 * Closes the channel: the call is being stopped (`reason` is why) or has ended. Requests still
	 * waiting reject, and so does every later `send()` or `request()`.
	 */
	close(reason?: unknown): void {
		if (this.#closed !== undefined) {
			return;
		}
		this.#closed = new CommError(reason === undefined ? "The call has ended: its channel is closed" : "The call is being stopped: its channel is closed", "closed", reason === undefined ? undefined : { cause: reason });
		for (const pending of this.#pending.values()) {
			if (pending.timer !== undefined) {
				timers.clearTimeout(pending.timer);
			}
			pending.reject(this.#closed);
		}
		this.#pending.clear();
		this.#queue.length = 0;
		this.#drained?.();
	}

	#check(data: unknown, what: string): void {
		if (this.#closed !== undefined) {
			throw this.#closed;
		}
		const uncloneable = findUncloneable(data);
		if (uncloneable !== undefined) {
			throw new DataCloneError(`comm.${what}() was given ${uncloneable}, which cannot be copied to the main side`);
		}
	}

	#enqueue(message: CommUp): Promise<void> {
		if (this.#queue.length === 0 && this.#inFlight < COMM_WINDOW) {
			this.#inFlight++;
			this.#post(message);
			return RESOLVED;
		}
		return new Promise((resolve) => {
			this.#queue.push({ message, posted: resolve });
		});
	}

	#drain(): void {
		while (this.#queue.length > 0 && this.#inFlight < COMM_WINDOW) {
			const next = this.#queue.shift() as Queued;
			this.#inFlight++;
			this.#post(next.message);
			next.posted();
		}
		if (this.#queue.length === 0 && this.#drained !== undefined) {
			const drained = this.#drained;
			this.#drained = undefined;
			drained();
		}
	}
}

/** The channel of the call running now. */
function channel(): TaskComm {
	const context = contextStorage().getStore() as Partial<Pick<CallControl, typeof COMM>> | undefined;
	if (context === undefined) {
		throw new CommError("comm can only be used inside a running task", "unavailable");
	}
	const comm = context[COMM];
	if (comm === undefined) {
		throw new CommError("comm is not available for this call: give its task a CommPlugin (plugins: [new CommPlugin()])", "unavailable");
	}
	return comm;
}

/**
 * Two-way messages between a running task and the main side, for a task given a `CommPlugin`.
 * Outside a task, or in a task without the plugin, each method throws a `CommError`
 * (`unavailable`).
 *
 * @example
 * import { comm } from "byop/worker";
 * export async function train(epochs) {
 *   for (let i = 1; i <= epochs; i++) {
 *     await comm.send({ epoch: i });
 *   }
 *   return await comm.request("next dataset?", { timeout: [5, "s"] });
 * }
 */
export const comm = {
	/**
	 * Sends `data` (structured-cloned) to the main side, where `CommPlugin.MESSAGE` is emitted.
	 * Resolves at once while the main side keeps up; otherwise once there is room again.
	 *
	 * @throws {DataCloneError} When `data` cannot be copied.
	 */
	send(data: unknown): Promise<void> {
		return channel().send(data);
	},
	/**
	 * Asks the main side: `CommPlugin.REQUEST` is emitted, and this resolves with what a handler
	 * passes to `respond()`. Rejects with a `CommError` on timeout, when no handler responds, when
	 * the handler throws, or when the call is stopped meanwhile.
	 */
	request(data: unknown, options?: RequestOptions): Promise<unknown> {
		return channel().request(data, options);
	},
} as const;
