import { CommError } from "../../errors.ts";
import { deserializeError, isSerializedError, serializeError } from "../../serialize.ts";
import type { CallComm } from "../comm.ts";
import { pack, unpack } from "./wire.ts";

/**
 * A call's comm channel between a worker host and its scheduler, over Redis pub/sub. The host
 * publishes what the task sends on the scheduler's channel (`upChannel`), and the scheduler
 * answers requests on the host's (`downChannel`). What one connection publishes arrives in order.
 */

/** The channel on which a scheduler hears the comm messages of its calls. */
export function upChannel(prefix: string, queueName: string, schedulerId: string): string {
	return `${prefix}:${queueName}:comm:${schedulerId}`;
}

/** The channel on which a host hears the answers to its calls' requests. */
export function downChannel(prefix: string, queueName: string, hostId: string): string {
	return `${prefix}:${queueName}:host:${hostId}`;
}

/** A comm message from a host: `data` and `value` are packed (`pack`). */
export interface UpMessage {
	readonly job: string;
	/** The host's id, for the answers to requests. */
	readonly host: string;
	readonly kind: "open" | "message" | "request" | "close";
	readonly seq?: number;
	readonly data?: string;
}

/** An answer to a request, from a scheduler. */
export interface DownMessage {
	readonly job: string;
	readonly seq: number;
	readonly ok: boolean;
	/** The answer (ok) or the serialized error, packed. */
	readonly payload: string;
}

/** Reads a pub/sub message as JSON; `undefined` when it is not an object. */
export function parseMessage(text: string): Record<string, unknown> | undefined {
	try {
		const value: unknown = JSON.parse(text);
		return typeof value === "object" && value !== null ? (value as Record<string, unknown>) : undefined;
	} catch {
		return undefined;
	}
}

/** The host's end of one call's channel: hands what the task sends to the scheduler. */
export class HostComm implements CallComm {
	readonly #job: string;
	readonly #host: string;
	readonly #publish: (message: UpMessage) => void;
	readonly #pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: unknown) => void }>();
	#seq = 0;
	#published = 0;

	constructor(job: string, host: string, publish: (message: UpMessage) => void) {
		this.#job = job;
		this.#host = host;
		this.#publish = (message) => {
			this.#published++;
			publish(message);
		};
	}

	/** How many messages it published: the scheduler waits for as many before the call's outcome. */
	get published(): number {
		return this.#published;
	}

	open(): void {
		this.#publish({ job: this.#job, host: this.#host, kind: "open" });
	}

	message(data: unknown): void {
		this.#publish({ job: this.#job, host: this.#host, kind: "message", data: pack(data) });
	}

	request(data: unknown): Promise<unknown> {
		const seq = ++this.#seq;
		return new Promise((resolve, reject) => {
			this.#pending.set(seq, { resolve, reject });
			this.#publish({ job: this.#job, host: this.#host, kind: "request", seq, data: pack(data) });
		});
	}

	/** An answer came from the scheduler. */
	answer(message: DownMessage): void {
		const pending = this.#pending.get(message.seq);
		if (pending === undefined) {
			return;
		}
		this.#pending.delete(message.seq);
		try {
			const payload = unpack(message.payload);
			if (message.ok) {
				pending.resolve(payload);
			} else {
				pending.reject(isSerializedError(payload) ? deserializeError(payload) : new CommError("The scheduler's answer could not be read", "handler-failed"));
			}
		} catch (error) {
			pending.reject(new CommError("The scheduler's answer could not be read", "handler-failed", { cause: error }));
		}
	}

	close(): void {
		for (const pending of this.#pending.values()) {
			pending.reject(new CommError("The call ended before its request was answered", "closed"));
		}
		this.#pending.clear();
		this.#publish({ job: this.#job, host: this.#host, kind: "close" });
	}
}

/**
 * Hands one comm message from a host to the call's `CallComm` on the scheduler; a request's
 * answer goes back through `reply`. Returns whether the message closed the channel.
 */
export function deliverUp(comm: CallComm, message: Record<string, unknown>, reply: (down: DownMessage) => void): boolean {
	const data = (): unknown => (typeof message["data"] === "string" ? unpack(message["data"]) : undefined);
	switch (message["kind"]) {
		case "open":
			comm.open();
			return false;
		case "message":
			comm.message(data());
			return false;
		case "request": {
			const seq = message["seq"];
			const job = message["job"];
			if (typeof seq !== "number" || typeof job !== "string") {
				return false;
			}
			comm.request(data()).then(
				(value) => {
					let payload: string;
					try {
						payload = pack(value);
					} catch (error) {
						reply({ job, seq, ok: false, payload: pack(serializeError(new CommError(`The answer to a request cannot be copied to the task: ${error instanceof Error ? error.message : String(error)}`, "handler-failed"))) });
						return;
					}
					reply({ job, seq, ok: true, payload });
				},
				(error: unknown) => reply({ job, seq, ok: false, payload: pack(serializeError(error)) }),
			);
			return false;
		}
		case "close":
			comm.close();
			return true;
		default:
			return false;
	}
}
