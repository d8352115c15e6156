import type { Job, Queue, QueueEvents } from "bullmq";
import type { BullMQSettings } from "./options.ts";
import { probeRedis } from "./probe.ts";

/** How long connecting to Redis may take before calls fail. */
const CONNECT_MS = 5000;

/** A pub/sub connection. */
interface Subscriber {
	subscribe(channel: string): Promise<unknown>;
	on(event: "message", listener: (channel: string, message: string) => void): unknown;
	on(event: "error", listener: (error: Error) => void): unknown;
	quit(): Promise<unknown>;
}

/** A scheduler's connection to its queue: where it adds jobs, hears of them, and hears its calls' comm messages. */
export interface Connection {
	readonly queue: Queue;
	readonly events: QueueEvents;
	readonly subscriber: { quit(): Promise<unknown> };
	readonly loadJob: (queue: Queue, id: string) => Promise<Job | undefined>;
}

/** What a scheduler hears of its jobs. */
export interface JobListeners {
	active(jobId: string): void;
	completed(jobId: string, returned: unknown): void;
	failed(jobId: string, reason: string): void;
	/** A comm message on the scheduler's channel. */
	comm(text: string): void;
}

/**
 * Connects to the queue: checks that Redis answers and takes the credentials (see
 * `probeRedis`), then opens BullMQ's queue, its events and a subscriber on `commChannel`.
 * BullMQ is imported here, on the first call. Rejects with an error that names Redis without its
 * password when it cannot be reached in time or refuses the credentials.
 */
export async function openConnection(settings: BullMQSettings, commChannel: string, listeners: JobListeners): Promise<Connection> {
	const { Queue, QueueEvents, Job } = await import("bullmq");
	const { redis, queueName, prefix, where } = settings;
	const failure = (reason: unknown): Error =>
		new Error(`Cannot reach Redis at ${where} for queue "${queueName}": ${reason instanceof Error ? reason.message : String(reason)}`, { cause: reason });
	try {
		await probeRedis(redis, CONNECT_MS);
	} catch (error) {
		throw failure(error);
	}
	const connection = { ...redis, maxRetriesPerRequest: null };
	const queue = new Queue(queueName, { connection, prefix });
	let lastError: unknown;
	let refused: ((error: unknown) => void) | undefined;
	const onError = (error: unknown): void => {
		lastError = error;
		// A wrong password does not get better by trying again.
		if (error instanceof Error && /WRONGPASS|NOAUTH|invalid password|AUTH failed/i.test(error.message)) {
			refused?.(error);
		}
	};
	queue.on("error", onError);
	let timer: NodeJS.Timeout | undefined;
	const deadline = new Promise<never>((_resolve, reject) => {
		refused = reject;
		timer = setTimeout(() => reject(new Error(`no answer in ${CONNECT_MS} ms`)), CONNECT_MS);
	});
	let events: QueueEvents | undefined;
	let subscriber: Subscriber | undefined;
	try {
		await Promise.race([settledLater(queue.waitUntilReady()), deadline]);
		// Made once Redis answers: a QueueEvents that never connected cannot be closed.
		events = new QueueEvents(queueName, { connection, prefix });
		events.on("error", onError);
		events.on("active", ({ jobId }) => listeners.active(jobId));
		events.on("completed", ({ jobId, returnvalue }) => listeners.completed(jobId, returnvalue));
		events.on("failed", ({ jobId, failedReason }) => listeners.failed(jobId, failedReason));
		await Promise.race([settledLater(events.waitUntilReady()), deadline]);
		const client = (await queue.client) as unknown as { duplicate(): Subscriber };
		subscriber = client.duplicate();
		subscriber.on("error", onError);
		subscriber.on("message", (_channel, text) => listeners.comm(text));
		await Promise.race([subscriber.subscribe(commChannel), deadline]);
	} catch (error) {
		// Not awaited: a connection being closed may still be waiting for Redis.
		void Promise.allSettled([queue.close(), events?.close(), subscriber?.quit()]);
		throw failure(lastError ?? error);
	} finally {
		clearTimeout(timer);
		deadline.catch(() => {});
	}
	return { queue, events, subscriber, loadJob: (from, id) => Job.fromId(from, id) };
}

/** `promise`, whose rejection after a race was lost is not left unhandled. */
function settledLater<T>(promise: Promise<T>): Promise<T> {
	promise.catch(() => {});
	return promise;
}
