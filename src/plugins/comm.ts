import { CommError } from "../errors.ts";
import { defineEvent, HANDLER_OUTCOME } from "../events.ts";
import type { CallComm } from "../executors/comm.ts";
import type { Call } from "../executors/executor.ts";
import type { Future } from "../future.ts";
import type { Task } from "../task.ts";
import type { Plugin } from "./plugin.ts";

/** What a `CommPlugin` event's handlers receive. */
export interface CommMessage {
	/** What the task sent (`undefined` for `OPEN` and `CLOSE`). */
	readonly data: unknown;
	/** The call's future. */
	readonly future: Future;
	/** The task the call belongs to. */
	readonly task: Task;
}

/** What a `REQUEST` handler receives: the question, and how to answer it. */
export interface CommRequest extends CommMessage {
	/** Answers the request: the task's `comm.request()` resolves with `value` (copied). Only the first answer counts. */
	respond(value: unknown): void;
}

/**
 * Two-way messages between a running task and the main side, on every executor. Inside the task,
 * `comm.send(data)` and `await comm.request(data)` (from `byop/worker`); here, the task's events:
 * `OPEN` when the call starts, `MESSAGE` for each `send`, `REQUEST` for each `request` (answer it
 * with `message.respond(value)`), and `CLOSE` when the call ends, however it ends. What a call
 * sends arrives in order, before its outcome's events.
 *
 * @example
 * const comm = new CommPlugin();
 * const task = scheduler.task(ref, { plugins: [comm] });
 * task.on(CommPlugin.MESSAGE, ({ data }) => console.log("progress", data));
 * task.on(CommPlugin.REQUEST, (request) => request.respond(2 * (request.data as number)));
 */
export class CommPlugin implements Plugin {
	/** A call with the plugin started: `(message)`, whose `data` is `undefined`. */
	static readonly OPEN = defineEvent<[CommMessage]>("comm:open");
	/** The task sent data: `(message)`. */
	static readonly MESSAGE = defineEvent<[CommMessage]>("comm:message");
	/** The task asks: `(request)`; `request.respond(value)` answers. */
	static readonly REQUEST = defineEvent<[CommRequest]>("comm:request");
	/** The call ended (a result, an error, a limit, a cancel, a crash): `(message)`, whose `data` is `undefined`. */
	static readonly CLOSE = defineEvent<[CommMessage]>("comm:close");

	readonly OPEN = CommPlugin.OPEN;
	readonly MESSAGE = CommPlugin.MESSAGE;
	readonly REQUEST = CommPlugin.REQUEST;
	readonly CLOSE = CommPlugin.CLOSE;

	readonly name = "comm";
	readonly events: readonly string[] = [CommPlugin.OPEN, CommPlugin.MESSAGE, CommPlugin.REQUEST, CommPlugin.CLOSE];

	preSubmit(call: Call, task: Task): void {
		call.comm = new PluginComm(call.future, task);
	}
}

/** The main side's end of one call's channel: emits the plugin's events on the task. */
class PluginComm implements CallComm {
	readonly #future: Future;
	readonly #task: Task;
	#open = false;

	constructor(future: Future, task: Task) {
		this.#future = future;
		this.#task = task;
	}

	open(): void {
		this.#open = true;
		this.#task.emit(CommPlugin.OPEN, { data: undefined, future: this.#future, task: this.#task });
	}

	message(data: unknown): void {
		this.#task.emit(CommPlugin.MESSAGE, { data, future: this.#future, task: this.#task });
	}

	request(data: unknown): Promise<unknown> {
		return new Promise((resolve, reject) => {
			let answered = false;
			const outcomes: Promise<unknown>[] = [];
			const request: CommRequest = {
				data,
				future: this.#future,
				task: this.#task,
				respond: (value) => {
					if (!answered) {
						answered = true;
						resolve(value);
					}
				},
			};
			Object.defineProperty(request, HANDLER_OUTCOME, { value: (outcome: Promise<unknown>) => outcomes.push(outcome) });
			this.#task.emit(CommPlugin.REQUEST, request);
			void Promise.allSettled(outcomes).then((settled) => {
				if (answered) {
					return;
				}
				answered = true;
				const failed = settled.find((outcome) => outcome.status === "rejected");
				if (failed !== undefined) {
					const cause: unknown = failed.reason;
					reject(new CommError(`The REQUEST handler threw: ${cause instanceof Error ? cause.message : String(cause)}`, "handler-failed", { cause }));
				} else {
					reject(new CommError(outcomes.length === 0 ? "No REQUEST handler is subscribed to answer the request" : "No REQUEST handler responded to the request", "no-handler"));
				}
			});
		});
	}

	close(): void {
		if (this.#open) {
			this.#open = false;
			this.#task.emit(CommPlugin.CLOSE, { data: undefined, future: this.#future, task: this.#task });
		}
	}
}
