import { type ChildProcess, fork } from "node:child_process";
import { randomUUID } from "node:crypto";
import type { Socket } from "node:net";
import type { Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { WorkerCrashedError, WorkerProtocolError } from "../../errors.ts";
import { HEAP_FLAG } from "../../limits/placement.ts";
import { descendants, killAll, procAvailable } from "../../procfs.ts";
import { REPORT_FD } from "../../worker/process-watcher.ts";
import { ProcReader } from "./proc-reader.ts";
import { ReportReader } from "./report-reader.ts";
import type { UsageReader } from "./usage-reader.ts";
import type { CommUp } from "../../protocol/comm.ts";
import { type CallReply, type ChildMessage, childMessageProblem, type ParentMessage, type ProcessCallPayload } from "../../protocol/messages.ts";
import { deserializeError, serializeError } from "../../serialize.ts";
import { TYPESCRIPT_MODULE } from "../../worker/tsx-hooks.ts";
import { splitLoaders } from "../loader-flags.ts";

const extension = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
/** The file each pool process runs. */
export const PROCESS_ENTRY = fileURLToPath(new URL(`../../../workers/process${extension}`, import.meta.url));

/**
 * The flags a pool process starts with. When its entry is JavaScript, a TypeScript loader the
 * parent runs under is left out and registered only when a call loads a TypeScript module: node
 * starts in a fraction of the time without it.
 */
function childFlags(): { readonly rest: string[]; readonly loaders: string[] } {
	return extension === ".js" ? splitLoaders(process.execArgv) : { rest: [...process.execArgv], loaders: [] };
}

const MiB = 1024 * 1024;
/** A process whose resident memory grew past its start by more than this after a call is replaced. */
export const REUSE_GROWTH_BYTES = 256 * MiB;
/** How long a process may take to start. */
const START_TIMEOUT_MS = 30_000;

export type Ended = { readonly kind: "reply"; readonly reply: CallReply } | { readonly kind: "exit"; readonly error: Error; readonly code: number | null; readonly signal: NodeJS.Signals | null };

/** One forked process of a process pool. */
export class PoolProcess {
	readonly child: ChildProcess;
	readonly heapCapMb: number;
	readonly ready: Promise<void>;
	#reader: UsageReader | undefined;
	/** On the portable path, the readings the process's watcher reports (see `ReportReader`). */
	readonly #report: ReportReader | undefined;
	#baseRss = 0;
	#alive = true;
	#started = false;
	#served = false;
	#fatal: Error | undefined;
	/** Set when an error outside any call hit the process while it was idle: it takes no new call. */
	#retiring = false;
	/** Called when the process asks to be retired. */
	onRetire: (() => void) | undefined;
	/** Called when the running call started a worker thread or a process, as it said or as its readings showed. */
	onSpawned: (() => void) | undefined;
	/** Called when a reading the process reported passed one of the running call's limits (the portable path). */
	onOver: (() => void) | undefined;
	/** Takes the running call's comm messages, while it has a channel (its task has a `CommPlugin`). */
	onComm: ((message: CommUp) => void) | undefined;
	#waiting: ((ended: Ended) => void) | undefined;
	/** The call sent and not yet answered: the only one a reply is taken for, once. */
	#inFlight: { readonly id: number; readonly token: string } | undefined;
	/** Set once the process is killed: what it still sends is not read. */
	#killed = false;
	#rejectReady: ((error: Error) => void) | undefined;
	/**
	 * Whether the process starts without the TypeScript loader, registering it for its first call
	 * of a TypeScript module; cleared once that call was sent.
	 */
	#loaderPending: boolean;
	/** Set while the call in flight is the one that registers the loader, until it said it had. */
	#registering = false;
	#exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;

	constructor(heapCapMb: number) {
		this.heapCapMb = heapCapMb;
		const flags = childFlags();
		this.#loaderPending = flags.loaders.length > 0;
		const execArgv = flags.rest.filter((flag) => !HEAP_FLAG.test(flag));
		if (heapCapMb > 0) {
			execArgv.push(`--max-old-space-size=${heapCapMb}`);
		}
		// Without /proc, the process's watcher reports what its calls use on a pipe of its own
		// (`REPORT_FD`), each line with a token drawn here and sent once the process is ready
		// (on the IPC channel: the environment can be read by other processes), which the task never sees.
		const token = procAvailable() ? undefined : randomUUID();
		this.child = fork(PROCESS_ENTRY, [], {
			execArgv,
			serialization: "advanced",
			detached: true,
			// Output goes through pipes of its own, forwarded below: with "inherit" the child would
			// share this process's stdout, and when that is a socket (a node parent's "pipe"), a task's
			// process.stdout.end() would shut it down for this process too (EPIPE on its next write).
			stdio: token === undefined ? ["ignore", "pipe", "pipe", "ipc"] : ["ignore", "pipe", "pipe", "ipc", "pipe"],
			env: {
				...process.env,
				NODE_OPTIONS: stripHeapFlag(process.env["NODE_OPTIONS"]),
				BYOP_PARENT_PID: String(process.pid),
				BYOP_LOADERS: flags.loaders.join("\n"),
				// The process (and the threads it starts) takes the path this one took.
				...(token === undefined ? {} : { BYOP_PORTABLE: "1" }),
			},
		});
		const reports = token === undefined ? undefined : (this.child.stdio[REPORT_FD] as Socket | null | undefined);
		if (token !== undefined && reports != null) {
			reports.unref();
			this.#report = new ReportReader(reports, token, (what) => this.#violation(what));
		}
		// With stdio "pipe", both streams exist.
		forward(this.child.stdout as Socket, process.stdout);
		forward(this.child.stderr as Socket, process.stderr);
		this.#closed = new Promise<void>((resolve) => this.child.once("close", () => resolve()));
		this.ready = new Promise<void>((resolve, reject) => {
			const timer = setTimeout(() => {
				reject(new WorkerCrashedError(`The process did not start within ${START_TIMEOUT_MS} ms`, {}));
				this.kill();
			}, START_TIMEOUT_MS);
			timer.unref();
			this.#rejectReady = reject;
			this.child.on("message", (message: unknown) => {
				if (this.#killed) {
					return;
				}
				const problem = childMessageProblem(message);
				if (problem !== undefined) {
					this.#violation(`sent a message that ${problem}`);
					return;
				}
				this.#receive(message as ChildMessage, () => {
					clearTimeout(timer);
					resolve();
				});
			});
			this.child.on("error", (error) => {
				clearTimeout(timer);
				reject(new WorkerCrashedError(`The process could not be started: ${error.message}`, {}, { cause: error }));
			});
			this.child.on("exit", (code, signal) => {
				clearTimeout(timer);
				this.#alive = false;
				this.#exit = { code, signal };
				this.#reader?.close();
				const how = signal === null ? `exit code ${code}` : `signal ${signal}`;
				const error =
					this.#fatal === undefined
						? new WorkerCrashedError(`The process running the task ended with ${how}`, { exitCode: code, signal })
						: new WorkerCrashedError(`The process running the task failed outside the task: ${this.#fatal.message}`, { exitCode: code, signal }, { cause: this.#fatal });
				reject(new WorkerCrashedError(`The process failed to start (${how})`, { exitCode: code, signal }));
				this.#inFlight = undefined;
				this.#settle({ kind: "exit", error, code, signal });
			});
		});
		this.ready.catch(() => {});
		this.idle();
	}

	/** Whether it runs and has not been killed. */
	get alive(): boolean {
		return this.#alive && !this.#killed;
	}

	/** Whether it ever started (said it was ready) and was given a call. */
	get served(): boolean {
		return this.#started && this.#served;
	}

	get pid(): number {
		return this.child.pid ?? -1;
	}

	get retiring(): boolean {
		return this.#retiring;
	}

	get reader(): UsageReader | undefined {
		return this.#reader;
	}

	/**
	 * Whether it may take another call: alive, not retiring, and its resident memory back within
	 * `growthBytes` of where it started, or of what it held once it loaded its job modules. Memory
	 * a call freed is often kept by the allocator and still counts as resident, so it would count
	 * against the next call's memory limit.
	 */
	reusable(growthBytes = REUSE_GROWTH_BYTES): boolean {
		if (!this.alive || this.#retiring || this.#reader === undefined) {
			return false;
		}
		const rss = this.#reader.rssBytes();
		// Where the watcher reports, its first reading may come after the process said it was ready.
		const base = Math.max(this.#baseRss, this.#report?.startRss ?? -1);
		return rss < 0 || rss - base < growthBytes;
	}

	/**
	 * Acts on a message of the protocol's shape from the process, which the task may have sent:
	 * each is taken only when the process may send it now (`ready` once, a reply for the call in
	 * flight only, once); anything else is a violation.
	 */
	#receive(message: ChildMessage, started: () => void): void {
		switch (message.type) {
			case "ready": {
				if (this.#started) {
					this.#violation("said it was ready again");
					return;
				}
				this.#started = true;
				// The process this one forked, whatever the message says.
				const reader = this.#report ?? (procAvailable() ? new ProcReader(this.pid) : undefined);
				if (reader === undefined) {
					// Never a process whose limits nothing reads.
					this.#violation("has no channel for its readings");
					return;
				}
				this.#reader = reader;
				this.#reader.onSpawned = () => this.onSpawned?.();
				this.#reader.onOver = () => this.onOver?.();
				const report = this.#report;
				if (report === undefined) {
					this.#baseRss = this.#reader.rssBytes();
					started();
					return;
				}
				// Calls are sent once the watcher reads them: its first line says so.
				report.onStart = () => {
					this.#baseRss = report.rssBytes();
					started();
				};
				this.send({ type: "watch", token: report.token }).catch(() => {});
				return;
			}
			case "reply": {
				const { reply } = message;
				const inFlight = this.#inFlight;
				if (inFlight === undefined) {
					this.#violation("sent a reply while it had no call");
					return;
				}
				if (reply.id !== inFlight.id || reply.token !== inFlight.token) {
					this.#violation("sent a reply that is not for its call");
					return;
				}
				this.#inFlight = undefined;
				this.#registering = false;
				if (reply.loadedRss !== undefined) {
					// What the process holds once it has loaded a job's module is its own from then on.
					this.#baseRss = Math.max(this.#baseRss, reply.loadedRss);
				}
				this.#settle({ kind: "reply", reply });
				return;
			}
			case "comm": {
				const inFlight = this.#inFlight;
				if (inFlight === undefined || message.id !== inFlight.id || message.token !== inFlight.token) {
					this.#violation("sent a comm message that is not for its call");
					return;
				}
				if (this.onComm === undefined) {
					this.#violation("sent a comm message for a call without a channel");
					return;
				}
				this.onComm(message.comm);
				return;
			}
			case "spawned":
				// Harmless whoever sent it: the call's use is read closely from now on.
				if (this.#inFlight !== undefined && this.#reader?.spawned() === true) {
					this.onSpawned?.();
				}
				return;
			case "retire":
				this.#retiring = true;
				this.onRetire?.();
				return;
			case "fatal":
				this.#fatal = deserializeError(message.error);
				return;
			case "registered":
				if (!this.#registering || this.#inFlight === undefined) {
					this.#violation("said it registered a loader it had not been asked to");
					return;
				}
				this.#registering = false;
				this.#reader?.baseline();
				return;
		}
	}

	/**
	 * The process broke the protocol (`what` it did, after "The process running the task"): it is
	 * killed with its group and replaced, and the call in flight, if any, ends with a
	 * `WorkerProtocolError`.
	 */
	#violation(what: string): void {
		const error = new WorkerProtocolError(`The process running the task ${what}`);
		this.#retiring = true;
		this.#inFlight = undefined;
		this.#rejectReady?.(error);
		this.#settle({ kind: "exit", error, code: null, signal: "SIGKILL" });
		this.kill();
		this.onRetire?.();
	}

	#settle(ended: Ended): void {
		const waiting = this.#waiting;
		this.#waiting = undefined;
		waiting?.(ended);
	}

	/**
	 * Sends a call and resolves with its reply, or with how the process ended. The call goes with
	 * a token of its own, which its reply must carry back.
	 */
	run(payload: Omit<ProcessCallPayload, "token">): Promise<Ended> {
		this.#served = true;
		this.busy();
		return new Promise<Ended>((resolve) => {
			if (!this.alive) {
				const { code = null, signal = null } = this.#exit ?? {};
				resolve({ kind: "exit", error: new WorkerCrashedError("The process ended before the call was sent", { exitCode: code, signal }), code, signal });
				return;
			}
			const token = randomUUID();
			this.#inFlight = { id: payload.id, token };
			// Only the first call of a TypeScript module registers the loader, which the process
			// says before the call's own code runs (see `registered`).
			this.#registering = this.#loaderPending && TYPESCRIPT_MODULE.test(payload.ref.module);
			if (this.#registering) {
				this.#loaderPending = false;
			}
			this.#waiting = resolve;
			this.send({ type: "call", payload: { ...payload, token } }).catch((error: unknown) => {
				this.#waiting = undefined;
				this.#inFlight = undefined;
				resolve({ kind: "reply", reply: { id: payload.id, token, ok: false, error: serializeError(cloneError(error)), stats: { wallMs: 0, cpuMs: 0, peakMemoryBytes: 0 } } });
			});
		});
	}

	/** The call is over and the process goes back to the pool: it lists its threads again, soon, as those the next call does not own. */
	released(): void {
		this.#reader?.rebaseline();
	}

	send(message: ParentMessage): Promise<void> {
		return new Promise<void>((resolve, reject) => {
			try {
				this.child.send(message, (error) => (error ? reject(error) : resolve()));
			} catch (error) {
				reject(error);
			}
		});
	}

	/**
	 * Kills the process and every process it started: its process group, and its descendants
	 * found in `/proc` (those that left the group or the session too), listed before the kill,
	 * since a killed parent's children are no longer its own.
	 */
	kill(): void {
		if (!this.#alive || this.child.pid === undefined) {
			return;
		}
		this.#killed = true;
		this.#inFlight = undefined;
		const tree = descendants(this.child.pid);
		try {
			process.kill(-this.child.pid, "SIGKILL");
		} catch {
			this.child.kill("SIGKILL");
		}
		killAll(tree);
		// The call it was running is over now: its end does not wait for the kernel to tear the
		// process down (tens of milliseconds for a large one), which the exit event would.
		this.#settle({ kind: "exit", error: new WorkerCrashedError("The process running the task was killed", { signal: "SIGKILL" }), code: null, signal: "SIGKILL" });
	}

	/** Kills what the process started and left running (its descendants), leaving the process itself. */
	killDescendants(): void {
		if (this.#alive && this.#reader?.spawnedAny === true) {
			killAll(this.#reader.descendants());
		}
	}

	/** Lets the parent exit while this process waits for work. */
	idle(): void {
		this.child.unref();
		(this.child.channel as { unref?: () => void } | undefined)?.unref?.();
		(this.child.stdout as Socket).unref();
		(this.child.stderr as Socket).unref();
	}

	busy(): void {
		this.child.ref();
		(this.child.channel as { ref?: () => void } | undefined)?.ref?.();
		(this.child.stdout as Socket).ref();
		(this.child.stderr as Socket).ref();
	}

	/** Resolves once the process has exited. */
	exited(): Promise<void> {
		return this.#closed;
	}

	/** Resolves once the process has exited and its output has been read to the end and forwarded. */
	readonly #closed: Promise<void>;
}

/** Copies a pool process's output to this process's stream, without ever ending that stream. */
function forward(from: Socket, to: Writable): void {
	from.on("data", (chunk: Buffer) => to.write(chunk));
	from.on("error", () => {});
}

function stripHeapFlag(options: string | undefined): string {
	return (options ?? "")
		.split(/\s+/)
		.filter((flag) => flag !== "" && !HEAP_FLAG.test(flag))
		.join(" ");
}

function cloneError(error: unknown): Error {
	const failure = new Error(`The call's arguments could not be copied to the process: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
	failure.name = "DataCloneError";
	return failure;
}
