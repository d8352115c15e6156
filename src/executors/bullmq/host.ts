import type { Job, Worker } from "bullmq";
import { CancelledError, HostLostError, RemoteRefusedError } from "../../errors.ts";
import { Future, type Outcome } from "../../future.ts";
import type { Limits } from "../../limits/types.ts";
import { serializeError } from "../../serialize.ts";
import { Dispatcher, type Ticket } from "../dispatcher.ts";
import type { Call } from "../executor.ts";
import { randomUUID } from "node:crypto";
import { type HostPolicy, resolveOnHost } from "./host-refs.ts";
import { type DownMessage, downChannel, HostComm, parseMessage, upChannel } from "./remote-comm.ts";
import type { RedisOptions } from "./options.ts";
import { probeRedis } from "./probe.ts";
import { BYOP_VERSION, cancelChannel, type Envelope, type JobData, type JobReturn, LOCK_MS, packEnvelope, STALLED_CHECK_MS, unpack } from "./wire.ts";

/** How long a host waits for Redis as it starts. */
const CONNECT_MS = 10_000;
/** How long a cancel that came before its job is remembered. */
const CANCEL_MEMORY_MS = 60_000;
/**
 * How long a module file resolved under the root is trusted before it is resolved again (its real
 * path looked up, symlinks followed): a burst of jobs of one task looks it up once, not per job.
 */
const RESOLVED_MS = 1000;

/** What a worker host is started with (`byop worker`'s options, checked). */
export interface HostOptions {
	readonly redis: RedisOptions;
	/** The Redis address for logs, its password masked. */
	readonly where: string;
	readonly queueName: string;
	readonly prefix: string;
	readonly concurrency: number;
	readonly executor: "threads" | "processes";
	readonly policy: HostPolicy;
	/** The host's name in usage and logs. */
	readonly name: string;
	/** Writes one line of log. */
	readonly log: (line: string) => void;
}

/** One job's call on this host, until its outcome. */
class Running {
	readonly outcome: Promise<Outcome>;
	done!: (outcome: Outcome) => void;

	constructor() {
		this.outcome = new Promise((resolve) => {
			this.done = resolve;
		});
	}
}

/** The subscriber connection's commands used here. */
interface Subscriber {
	subscribe(channel: string): Promise<unknown>;
	on(event: "message", listener: (channel: string, message: string) => void): unknown;
	quit(): Promise<unknown>;
}

let nextCallId = 1;

/**
 * A worker host: takes jobs from a BullMQ queue and runs each on a local byop executor (threads
 * or processes) under the job's limits, so limit errors, the move of a call to a process and
 * usage come from the same code as locally. A job only names its function: the host loads files
 * under its root and allowed packages, and refuses anything else before importing it.
 */
export class WorkerHost {
	readonly #options: HostOptions;
	readonly #dispatcher: Dispatcher<Running>;
	readonly #running = new Map<string, Ticket>();
	readonly #cancelled = new Map<string, number>();
	/** Module files resolved lately: what to import, and when it was resolved. */
	readonly #resolved = new Map<string, { readonly url: string; readonly at: number }>();
	/** The comm channels of the calls running here, by job id. */
	readonly #comms = new Map<string, HostComm>();
	/** This host's id in comm messages: the channel it hears answers on. */
	readonly #id = randomUUID();
	#publisher: { publish(channel: string, message: string): Promise<unknown> } | undefined;
	#worker: Worker | undefined;
	#subscriber: Subscriber | undefined;
	#stopping = false;
	#graceMs = 0;

	private constructor(options: HostOptions) {
		this.#options = options;
		// A host is a service: all its threads start with it, as a process pool's processes do.
		this.#dispatcher = new Dispatcher<Running>(
			options.executor,
			options.concurrency,
			{
				started: () => {},
				settled: (running, _call, outcome) => running.done(outcome),
			},
			options.concurrency,
		);
	}

	/** Connects to Redis and starts taking jobs. Rejects when Redis cannot be reached in time. */
	static async start(options: HostOptions): Promise<WorkerHost> {
		const host = new WorkerHost(options);
		await host.#start();
		return host;
	}

	/** Calls running now. */
	get running(): number {
		return this.#running.size;
	}

	async #start(): Promise<void> {
		const { redis, queueName, prefix, concurrency, where, log } = this.#options;
		try {
			await probeRedis(redis, CONNECT_MS);
		} catch (error) {
			throw new Error(`Cannot reach Redis at ${where}: ${error instanceof Error ? error.message : String(error)}`);
		}
		const { Worker } = await import("bullmq");
		this.#dispatcher.open();
		const worker = new Worker(queueName, (job: Job) => this.#process(job), {
			connection: { ...redis, maxRetriesPerRequest: null },
			prefix,
			concurrency,
			autorun: false,
			lockDuration: LOCK_MS,
			stalledInterval: STALLED_CHECK_MS,
			maxStalledCount: 1,
		});
		this.#worker = worker;
		let lastError: unknown;
		let refused: ((error: unknown) => void) | undefined;
		let ready = false;
		worker.on("error", (error: Error) => {
			lastError = error;
			if (!ready) {
				// A wrong password does not get better by trying again.
				if (/WRONGPASS|NOAUTH|invalid password|AUTH failed/i.test(error.message)) {
					refused?.(error);
				}
			} else if (!this.#stopping) {
				log(`error: ${error.message}`);
			}
		});
		let timer: NodeJS.Timeout | undefined;
		try {
			const connected = worker.waitUntilReady();
			connected.catch(() => {});
			await Promise.race([
				connected,
				new Promise((_resolve, reject) => {
					refused = reject;
					timer = setTimeout(() => reject(new Error(`no answer in ${CONNECT_MS} ms`)), CONNECT_MS);
				}),
			]);
			ready = true;
			const client = (await worker.client) as unknown as { duplicate(): Subscriber };
			const subscriber = client.duplicate();
			this.#subscriber = subscriber;
			const cancels = cancelChannel(prefix, queueName);
			subscriber.on("message", (channel, message) => (channel === cancels ? this.#cancel(message) : this.#answer(message)));
			await subscriber.subscribe(cancels);
			await subscriber.subscribe(downChannel(prefix, queueName, this.#id));
			// The connection that completes jobs: a call's comm messages go out before its outcome.
			this.#publisher = client as unknown as { publish(channel: string, message: string): Promise<unknown> };
		} catch (error) {
			await this.#close();
			const reason = lastError ?? error;
			throw new Error(`Cannot reach Redis at ${where}: ${reason instanceof Error ? reason.message : String(reason)}`);
		} finally {
			clearTimeout(timer);
		}
		void worker.run().catch((error: unknown) => log(`error: ${error instanceof Error ? error.message : String(error)}`));
	}

	/** A scheduler cancelled a job: stop its call if it runs here, or remember it for when it arrives. */
	#cancel(jobId: string): void {
		const ticket = this.#running.get(jobId);
		if (ticket !== undefined) {
			ticket.cancel(new CancelledError("The call was cancelled"));
			return;
		}
		const now = performance.now();
		for (const [id, at] of this.#cancelled) {
			if (now - at > CANCEL_MEMORY_MS) {
				this.#cancelled.delete(id);
			}
		}
		this.#cancelled.set(jobId, now);
	}

	/** A scheduler answered a request of one of the calls running here. */
	#answer(text: string): void {
		const message = parseMessage(text);
		if (message === undefined || typeof message["job"] !== "string" || typeof message["seq"] !== "number" || typeof message["ok"] !== "boolean" || typeof message["payload"] !== "string") {
			return;
		}
		this.#comms.get(message["job"])?.answer(message as unknown as DownMessage);
	}

	/** Runs one job and returns how its call ended; throws only for what is no call's fault. */
	async #process(job: Job): Promise<JobReturn> {
		const jobId = String(job.id);
		const envelope = await this.#run(job, jobId);
		const comm = this.#comms.get(jobId);
		this.#comms.delete(jobId);
		return packEnvelope(envelope, comm?.published);
	}

	async #run(job: Job, jobId: string): Promise<Envelope> {
		let call: Call;
		try {
			const data = checkJobData(job.data);
			if (job.stalledCounter > 0 && !data.retryOnHostLoss) {
				throw new HostLostError(
					"The worker host running the call was lost (it stopped renewing its job's lock: killed, or its machine gone) and the task did not opt in to a retry (retryOnHostLoss)",
				);
			}
			const module = this.#resolve(data);
			const args = unpack(data.args);
			if (!Array.isArray(args)) {
				throw new RemoteRefusedError("This worker host refuses a job whose arguments are not a list", "malformed");
			}
			call = { id: nextCallId++, ref: { module, name: data.name }, args, limits: data.limits ?? undefined, taskName: data.taskName, future: new Future(data.taskName, args) };
			if (typeof data.comm === "string" && /^[\w-]+$/.test(data.comm)) {
				const channel = upChannel(this.#options.prefix, this.#options.queueName, data.comm);
				const comm = new HostComm(jobId, this.#id, (message) => {
					void this.#publisher?.publish(channel, JSON.stringify(message)).catch(() => {});
				});
				this.#comms.set(jobId, comm);
				call.comm = comm;
			}
		} catch (error) {
			return { kind: "exception", error: serializeError(error), usage: undefined };
		}
		const running = new Running();
		const ticket = this.#dispatcher.submit(call, running);
		this.#running.set(jobId, ticket);
		if (this.#cancelled.delete(jobId)) {
			ticket.cancel(new CancelledError("The call was cancelled"));
		}
		const outcome = await running.outcome;
		this.#running.delete(jobId);
		const usage = outcome.usage === undefined ? undefined : { ...outcome.usage, host: this.#options.name };
		if (outcome.kind === "result") {
			return { kind: "result", value: outcome.value, usage };
		}
		if (outcome.kind === "cancelled" && this.#stopping && outcome.error.message === SHUTDOWN) {
			const lost = new HostLostError(`The worker host "${this.#options.name}" shut down and stopped the call after its grace period of ${this.#graceMs} ms`);
			return { kind: "exception", error: serializeError(lost), usage };
		}
		return { kind: outcome.kind, error: serializeError(outcome.error), usage };
	}

	/** What to import for a job's module: `resolveOnHost`, its answer for a file reused for `RESOLVED_MS`. */
	#resolve(data: JobData): string {
		if (data.kind !== "file") {
			return resolveOnHost(data.module, data.kind, data.name, this.#options.policy);
		}
		const now = performance.now();
		const known = this.#resolved.get(data.module);
		if (known !== undefined && now - known.at < RESOLVED_MS) {
			return known.url;
		}
		const url = resolveOnHost(data.module, data.kind, data.name, this.#options.policy);
		if (this.#resolved.size >= 1000) {
			this.#resolved.clear();
		}
		this.#resolved.set(data.module, { url, at: now });
		return url;
	}

	/**
	 * Stops taking jobs, lets the running ones end for up to `graceMs`, then stops them (their
	 * calls end with a `HostLostError`), and closes the executor and the connections.
	 */
	async stop(graceMs: number): Promise<void> {
		this.#stopping = true;
		this.#graceMs = graceMs;
		const closing = this.#worker?.close() ?? Promise.resolve();
		const timer = setTimeout(() => this.#dispatcher.cancelAll(() => new CancelledError(SHUTDOWN)), graceMs);
		try {
			await closing;
		} finally {
			clearTimeout(timer);
		}
		await this.#close();
	}

	/** Ends at once what is still running (its calls end as after the grace period). */
	hurry(): void {
		this.#stopping = true;
		this.#dispatcher.cancelAll(() => new CancelledError(SHUTDOWN));
	}

	async #close(): Promise<void> {
		await Promise.allSettled([this.#worker?.close(), this.#subscriber?.quit(), this.#dispatcher.close()]);
	}
}

const SHUTDOWN = "The worker host shut down";

/** Checks a job's data (anyone who can write to Redis can make a job): what it names, and its byop version. */
function checkJobData(data: unknown): JobData {
	if (typeof data !== "object" || data === null) {
		throw new RemoteRefusedError("This worker host refuses a job that is not a byop call", "malformed");
	}
	const job = data as Partial<Record<keyof JobData, unknown>>;
	if (typeof job.byop !== "string") {
		throw new RemoteRefusedError("This worker host refuses a job that is not a byop call (it has no byop version)", "malformed");
	}
	if (job.byop !== BYOP_VERSION) {
		throw new RemoteRefusedError(
			`This worker host runs byop ${BYOP_VERSION} and refuses a job sent by byop ${job.byop}: run the same byop version on the scheduler and its hosts`,
			"version",
		);
	}
	const text = (value: unknown): value is string => typeof value === "string" && value !== "";
	if (!text(job.module) || (job.kind !== "file" && job.kind !== "package") || !text(job.name) || typeof job.args !== "string" || !text(job.taskName)) {
		throw new RemoteRefusedError("This worker host refuses a job that is not a byop call (its module, export or arguments are missing)", "malformed");
	}
	if (job.limits !== null && !validLimits(job.limits)) {
		throw new RemoteRefusedError("This worker host refuses a job whose limits are malformed", "malformed");
	}
	return { ...(job as JobData), retryOnHostLoss: job.retryOnHostLoss === true };
}

function validLimits(value: unknown): value is Limits {
	if (typeof value !== "object" || value === null) {
		return false;
	}
	const limits = value as Record<string, unknown>;
	const optional = (key: string): boolean => limits[key] === undefined || (typeof limits[key] === "number" && Number.isFinite(limits[key]) && (limits[key] as number) > 0);
	return (
		optional("wallMs") &&
		optional("cpuMs") &&
		optional("memoryBytes") &&
		(limits["memoryKind"] === "heap" || limits["memoryKind"] === "rss" || limits["memoryKind"] === "auto") &&
		typeof limits["graceMs"] === "number" &&
		limits["graceMs"] >= 0 &&
		typeof limits["sampleMs"] === "number" &&
		limits["sampleMs"] > 0 &&
		typeof limits["escalate"] === "boolean"
	);
}
