import { randomUUID } from "node:crypto";
import type { Queue } from "bullmq";
import { CancelledError, HostLostError } from "../../errors.ts";
import type { Execution, Executor, Settled } from "../executor.ts";
import type { BullMQSettings } from "./options.ts";
import { type Connection, openConnection } from "./connection.ts";
import { deliverUp, downChannel, parseMessage, upChannel } from "./remote-comm.ts";
import { BYOP_VERSION, cancelChannel, type JobData, moduleOnTheWire, packArgs, readReturn } from "./wire.ts";

/** How often jobs in flight are looked at directly (events missed, hosts lost, cancels unanswered). */
const POLL_MS = 1000;
/** How long a cancel of a running job waits for its host to confirm before the call ends anyway. */
const CANCEL_GIVE_UP_MS = 5000;
/** How long a job whose host was lost may wait for another host to take it back (`retryOnHostLoss`). */
const RETRY_WAIT_MS = 8000;
/** How long a call's outcome waits for the last of its comm messages. */
const COMM_CLOSE_WAIT_MS = 2000;

/** One call on the queue. */
interface InFlight {
	readonly jobId: string;
	readonly execution: Execution;
	readonly retry: boolean;
	readonly resolve: (settled: Settled) => void;
	readonly addedAt: number;
	added: boolean;
	started: boolean;
	settled: boolean;
	cancelAt: number | undefined;
	lockMissingSince: number | undefined;
	/** Whether the host opened the call's comm channel, and closed it. */
	commOpen: boolean;
	commClosed: boolean;
	/** Comm messages received for the call. */
	commReceived: number;
	/** How the call ended, held until all its host sent on its comm channel has arrived (it comes before the outcome). */
	held: { readonly settled: Settled; readonly expected: number; readonly timer: NodeJS.Timeout } | undefined;
}

/** The plain Redis commands used here, which BullMQ's client type leaves out. */
interface RedisCommands {
	publish(channel: string, message: string): Promise<number>;
	exists(key: string): Promise<number>;
}

/**
 * Runs each call as a BullMQ job on the hosts that take jobs from the queue (`byop worker`). A
 * host runs it on its own byop executor, under the call's limits, and completes the job with how
 * the call ended (a result or an error alike). BullMQ and ioredis are imported when the first
 * call is sent, never before.
 */
export class BullMQExecutor implements Executor {
	readonly where = "process" as const;
	readonly #settings: BullMQSettings;
	readonly #id = randomUUID();
	readonly #inFlight = new Map<string, InFlight>();
	#connection: Promise<Connection> | undefined;
	#poll: NodeJS.Timeout | undefined;
	#polling = false;
	#closed = false;

	constructor(settings: BullMQSettings) {
		this.#settings = settings;
	}

	execute(execution: Execution): Promise<Settled> {
		const { call, cancellation } = execution;
		if (cancellation.reason !== undefined) {
			return Promise.resolve({ kind: "cancelled", error: cancellation.reason, usage: undefined });
		}
		let data: JobData;
		try {
			const { module, kind } = moduleOnTheWire(call.ref, this.#settings.root);
			data = {
				byop: BYOP_VERSION,
				module,
				kind,
				name: call.ref.name,
				args: packArgs(call.args),
				limits: call.limits ?? null,
				retryOnHostLoss: call.retryOnHostLoss === true,
				taskName: call.taskName,
				comm: call.comm === undefined ? null : this.#id,
			};
		} catch (error) {
			return Promise.resolve({ kind: "exception", error, usage: undefined });
		}
		return new Promise<Settled>((resolve) => {
			const entry: InFlight = {
				jobId: `${this.#id}-${call.id}`,
				execution,
				retry: data.retryOnHostLoss,
				resolve,
				addedAt: performance.now(),
				added: false,
				started: false,
				settled: false,
				cancelAt: undefined,
				lockMissingSince: undefined,
				commOpen: false,
				commClosed: false,
				commReceived: 0,
				held: undefined,
			};
			this.#inFlight.set(entry.jobId, entry);
			cancellation.listen((reason) => void this.#cancel(entry, reason));
			void this.#send(entry, data);
		});
	}

	async #send(entry: InFlight, data: JobData): Promise<void> {
		try {
			const { queue } = await this.#connect();
			await queue.add(data.taskName, data, {
				jobId: entry.jobId,
				attempts: 1,
				removeOnComplete: { age: 3600 },
				removeOnFail: { age: 3600 },
			});
			entry.added = true;
			this.#startPolling();
			const reason = entry.execution.cancellation.reason;
			if (reason !== undefined) {
				await this.#cancel(entry, reason);
			}
		} catch (error) {
			this.#settle(entry, { kind: "exception", error: error instanceof Error ? error : new Error(String(error)), usage: undefined });
		}
	}

	/** Connects once, on the first call: the queue to add jobs to, and its events. */
	#connect(): Promise<Connection> {
		this.#connection ??= this.#open().catch((error: unknown) => {
			// The next call tries again.
			this.#connection = undefined;
			throw error;
		});
		return this.#connection;
	}

	#open(): Promise<Connection> {
		return openConnection(this.#settings, upChannel(this.#settings.prefix, this.#settings.queueName, this.#id), {
			active: (jobId) => this.#active(jobId),
			completed: (jobId, returned) => this.#completed(jobId, returned),
			failed: (jobId, reason) => this.#failed(jobId, reason),
			comm: (text) => this.#commMessage(text),
		});
	}

	#active(jobId: string): void {
		const entry = this.#inFlight.get(jobId);
		if (entry !== undefined && !entry.started) {
			entry.started = true;
			entry.execution.started();
		}
	}

	#completed(jobId: string, returned: unknown): void {
		const entry = this.#inFlight.get(jobId);
		if (entry === undefined) {
			return;
		}
		if (entry.held !== undefined) {
			return;
		}
		const ending = readReturn(returned);
		const settled: Settled =
			ending.kind === "cancelled"
				? { kind: "cancelled", error: entry.execution.cancellation.reason ?? asCancelled(ending.error), usage: ending.usage }
				: ending.kind === "exception"
					? { kind: "exception", error: ending.error, usage: ending.usage }
					: { kind: "result", value: ending.value, usage: ending.usage };
		// The host says how many comm messages it sent: the outcome waits until they are all here.
		const sent = (returned as { comm?: unknown } | null)?.comm;
		const expected = typeof sent === "number" ? sent : 0;
		if (entry.execution.call.comm !== undefined && entry.commReceived < expected) {
			entry.held = { settled, expected, timer: setTimeout(() => this.#release(entry), COMM_CLOSE_WAIT_MS) };
			return;
		}
		this.#settle(entry, settled, true);
	}

	/** Settles a call whose outcome waited for its comm messages. */
	#release(entry: InFlight): void {
		const held = entry.held;
		if (held !== undefined) {
			clearTimeout(held.timer);
			entry.held = undefined;
			this.#settle(entry, held.settled, true);
		}
	}

	#failed(jobId: string, reason: string): void {
		const entry = this.#inFlight.get(jobId);
		if (entry === undefined) {
			return;
		}
		const error = /stalled/i.test(reason)
			? new HostLostError(`The worker hosts running the call were lost twice (BullMQ: ${reason}); the call is not run again`)
			: new Error(`The worker host failed the call's job: ${reason}`);
		this.#settle(entry, { kind: "exception", error, usage: undefined }, true);
	}

	/** A comm message from a host, for one of this scheduler's calls. */
	#commMessage(text: string): void {
		const message = parseMessage(text);
		const entry = typeof message?.["job"] === "string" ? this.#inFlight.get(message["job"]) : undefined;
		const comm = entry?.execution.call.comm;
		if (message === undefined || entry === undefined || comm === undefined || entry.settled) {
			return;
		}
		const host = message["host"];
		entry.commReceived++;
		if (message["kind"] === "open") {
			entry.commOpen = true;
			entry.commClosed = false;
		}
		let closed: boolean;
		try {
			closed = deliverUp(comm, message, (down) => {
				if (typeof host === "string") {
					void this.#publish(downChannel(this.#settings.prefix, this.#settings.queueName, host), JSON.stringify(down)).catch(() => {});
				}
			});
		} catch {
			// A message that cannot be read is dropped.
			closed = false;
		}
		if (closed) {
			entry.commClosed = true;
		}
		if (entry.held !== undefined && entry.commReceived >= entry.held.expected) {
			this.#release(entry);
		}
	}

	/** Ends a call once; `remove` (its host's own ending) deletes its finished job from Redis. */
	#settle(entry: InFlight, settled: Settled, remove = false): void {
		if (entry.settled) {
			return;
		}
		if (entry.held !== undefined) {
			clearTimeout(entry.held.timer);
			entry.held = undefined;
		}
		const comm = entry.execution.call.comm;
		// CLOSE comes before the outcome, however the call ended.
		if (comm !== undefined && entry.commOpen && !entry.commClosed) {
			entry.commClosed = true;
			comm.close();
		}
		entry.settled = true;
		this.#inFlight.delete(entry.jobId);
		entry.execution.cancellation.listen(undefined);
		if (remove) {
			void this.#connection?.then(({ queue }) => queue.remove(entry.jobId)).catch(() => {});
		}
		// A call that ran reports its start before its end.
		if (!entry.started && settled.usage !== undefined) {
			entry.started = true;
			entry.execution.started();
		}
		entry.resolve(settled);
	}

	/** A waiting job is removed; a running one is stopped by its host, which then completes it as cancelled. */
	async #cancel(entry: InFlight, reason: CancelledError): Promise<void> {
		if (entry.settled || !entry.added) {
			// Not on the queue yet: `#send` cancels it once it is.
			return;
		}
		if (entry.cancelAt === undefined) {
			entry.cancelAt = performance.now();
		}
		try {
			const { queue } = await this.#connect();
			if (!entry.started && (await queue.remove(entry.jobId)) === 1) {
				this.#settle(entry, { kind: "cancelled", error: reason, usage: undefined });
				return;
			}
			await this.#publishCancel(entry.jobId);
		} catch {
			// The poll tries again, and gives up in time.
		}
	}

	async #publishCancel(jobId: string): Promise<void> {
		await this.#publish(cancelChannel(this.#settings.prefix, this.#settings.queueName), jobId);
	}

	async #publish(channel: string, message: string): Promise<void> {
		const { queue } = await this.#connect();
		const client = (await queue.client) as unknown as RedisCommands;
		await client.publish(channel, message);
	}

	#startPolling(): void {
		if (this.#poll === undefined && !this.#closed) {
			this.#poll = setInterval(() => void this.#pollOnce(), POLL_MS);
		}
	}

	/**
	 * Looks at every job in flight: one that finished without its event reaching here is read
	 * directly; one whose host stopped renewing its lock has lost its host; a cancel that got no
	 * answer is sent again, and given up on after a while.
	 */
	async #pollOnce(): Promise<void> {
		if (this.#polling) {
			return;
		}
		if (this.#inFlight.size === 0) {
			clearInterval(this.#poll);
			this.#poll = undefined;
			return;
		}
		this.#polling = true;
		try {
			const connection = await this.#connect();
			const client = (await connection.queue.client) as unknown as RedisCommands;
			const now = performance.now();
			const due = [...this.#inFlight.values()].filter((entry) => entry.added && now - entry.addedAt >= POLL_MS);
			await Promise.all(due.map((entry) => this.#look(entry, connection, client, now)));
		} catch {
			// Redis is unreachable for now: the next poll tries again.
		} finally {
			this.#polling = false;
		}
	}

	async #look(entry: InFlight, { queue, loadJob }: Connection, client: RedisCommands, now: number): Promise<void> {
		const state = await queue.getJobState(entry.jobId);
		if (entry.settled) {
			return;
		}
		if (state === "completed" || state === "failed") {
			const job = await loadJob(queue, entry.jobId);
			if (job !== undefined && state === "completed") {
				this.#completed(entry.jobId, job.returnvalue);
			} else if (job !== undefined) {
				this.#failed(entry.jobId, job.failedReason);
			}
			return;
		}
		if (entry.cancelAt !== undefined) {
			if (now - entry.cancelAt >= CANCEL_GIVE_UP_MS || state === "unknown") {
				const reason = entry.execution.cancellation.reason ?? new CancelledError();
				this.#settle(entry, { kind: "cancelled", error: reason, usage: undefined });
				return;
			}
			void this.#cancel(entry, entry.execution.cancellation.reason ?? new CancelledError());
		}
		if (state === "unknown") {
			this.#settle(entry, { kind: "exception", error: new Error(`The call's job ${entry.jobId} is gone from the queue: it was removed from Redis by something other than this scheduler`), usage: undefined });
			return;
		}
		if (state === "active") {
			this.#active(entry.jobId);
			const locked = (await client.exists(`${this.#settings.prefix}:${this.#settings.queueName}:${entry.jobId}:lock`)) === 1;
			if (locked) {
				entry.lockMissingSince = undefined;
				return;
			}
			entry.lockMissingSince ??= now;
			const missing = now - entry.lockMissingSince;
			if ((!entry.retry && missing >= POLL_MS / 2) || missing >= RETRY_WAIT_MS) {
				this.#hostLost(entry, queue);
			}
			return;
		}
		if (entry.started && !entry.retry && state === "waiting") {
			// Moved back to the queue by a host's stalled check: its host was lost.
			this.#hostLost(entry, queue);
		}
	}

	#hostLost(entry: InFlight, queue: Queue): void {
		const message = entry.retry
			? "The worker host running the call was lost (it stopped renewing its job's lock) and no other host took the call back"
			: "The worker host running the call was lost (it stopped renewing its job's lock: killed, or its machine gone) and the task did not opt in to a retry (retryOnHostLoss)";
		this.#settle(entry, { kind: "exception", error: new HostLostError(message), usage: undefined });
		// A host that takes it from the queue again refuses it (see the host), so it never runs twice.
		void queue.remove(entry.jobId).catch(() => {});
	}

	async close(): Promise<void> {
		this.#closed = true;
		clearInterval(this.#poll);
		this.#poll = undefined;
		const left = [...this.#inFlight.values()];
		await Promise.allSettled(left.map((entry) => this.#cancel(entry, new CancelledError("The executor closed before the call ended"))));
		for (const entry of left) {
			this.#settle(entry, { kind: "cancelled", error: entry.execution.cancellation.reason ?? new CancelledError("The executor closed before the call ended"), usage: undefined });
		}
		const connection = this.#connection;
		this.#connection = undefined;
		if (connection !== undefined) {
			const opened = await connection.catch(() => undefined);
			await Promise.allSettled([opened?.events.close(), opened?.queue.close(), opened?.subscriber.quit()]);
		}
	}
}

function asCancelled(error: Error): CancelledError {
	return error instanceof CancelledError ? error : new CancelledError(error.message, { cause: error });
}

