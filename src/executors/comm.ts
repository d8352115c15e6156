import { DataCloneError } from "../errors.ts";
import { COMM_ACK_EVERY, type CommDown, type CommUp } from "../protocol/comm.ts";
import { serializeError } from "../serialize.ts";
import { findUncloneable } from "../worker/uncloneable.ts";

/**
 * The main side's end of one call's channel, as a plugin gives it to the call (`call.comm`):
 * what the executors hand it of the call's messages. `CommPlugin` emits its events from it.
 */
export interface CallComm {
	/** The call starts where it runs (once per run: a call moved to a process opens again). */
	open(): void;
	/** The task sent `data`. */
	message(data: unknown): void;
	/** The task asks with `data`: resolves with the answer, rejects when there is none. */
	request(data: unknown): Promise<unknown>;
	/** The call's run has ended, however it ended. */
	close(): void;
}

/**
 * Carries one call's channel on the main side: hands what the task sends to its `CallComm`, in
 * order, acknowledges it in batches (the task's window, see `COMM_WINDOW`), and sends answers back.
 */
export class MainComm {
	readonly #comm: CallComm;
	readonly #reply: (message: CommDown) => void;
	#unacknowledged = 0;
	#closed = false;
	#ended = false;
	#onEnd: (() => void) | undefined;

	constructor(comm: CallComm, reply: (message: CommDown) => void) {
		this.#comm = comm;
		this.#reply = reply;
	}

	/** Whether the task's side said it has ended (threads), or the channel was closed. */
	get ended(): boolean {
		return this.#ended;
	}

	/** Resolves once the task's side has ended (see `end`): what it sent before has all been handled. */
	whenEnded(): Promise<void> {
		return this.#ended ? Promise.resolve() : new Promise((resolve) => (this.#onEnd = resolve));
	}

	/** Takes one message from the task (checked: a `CommUp`). */
	receive(message: CommUp): void {
		if (this.#closed) {
			return;
		}
		switch (message.kind) {
			case "message":
				this.#comm.message(message.data);
				this.#handled();
				return;
			case "request": {
				const { seq } = message;
				this.#comm.request(message.data).then(
					(value) => {
						const uncloneable = findUncloneable(value);
						if (uncloneable !== undefined) {
							this.#send({ kind: "response", seq, ok: false, error: serializeError(new DataCloneError(`The answer to a request holds ${uncloneable}, which cannot be copied to the task`)) });
							return;
						}
						this.#send({ kind: "response", seq, ok: true, value });
					},
					(error: unknown) => this.#send({ kind: "response", seq, ok: false, error: serializeError(error) }),
				);
				this.#handled();
				return;
			}
			case "end":
				this.end();
				return;
		}
	}

	/** The task's side has ended, or can no longer send (its thread or port closed). */
	end(): void {
		this.#ended = true;
		const onEnd = this.#onEnd;
		this.#onEnd = undefined;
		onEnd?.();
	}

	/** The call is over: nothing more is handed on or sent back. */
	close(): void {
		this.#closed = true;
		this.end();
	}

	#handled(): void {
		if (++this.#unacknowledged >= COMM_ACK_EVERY) {
			const count = this.#unacknowledged;
			this.#unacknowledged = 0;
			this.#send({ kind: "ack", count });
		}
	}

	#send(message: CommDown): void {
		if (this.#closed) {
			return;
		}
		try {
			this.#reply(message);
		} catch {
			// The call's thread or process is gone: the call is ending.
		}
	}
}
