import { type ChildProcess, fork } from "node:child_process";
import type { Socket } from "node:net";
import type { Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { CancelledError, WorkerCrashedError } from "../errors.ts";
import type { Outcome, Usage } from "../future.ts";
import { LimitExceededError, MemoryLimitError } from "../pynisher/errors.ts";
import { Guard } from "../pynisher/guard.ts";
import type { Watchdog } from "../pynisher/watchdog.ts";
import type { CallPayload, CallReply } from "../protocol.ts";
import { deserializeError, serializeError } from "../serialize.ts";
import type { Execution, Executor, Limits } from "./executor.ts";
import { splitLoaders } from "../loaders.ts";
import { ProcReader } from "./proc.ts";
import type { ChildMessage, ParentMessage } from "./process-protocol.ts";
import { Stopper } from "./stop.ts";

const extension = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
/** The file each pool process runs. */
export const PROCESS_ENTRY = fileURLToPath(new URL(`../../workers/process${extension}`, import.meta.url));

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
const REUSE_GROWTH_BYTES = 256 * MiB;
/** What a process may grow by loading a call's modules and still take the next memory-limited call. */
const MODULES_GROWTH_BYTES = 64 * MiB;
/** How long a process may take to start. */
const START_TIMEOUT_MS = 30_000;

/** The V8 heap cap, in megabytes, of a process that runs a call with this memory limit. */
function processHeapCap(limits: Limits | undefined): number {
	return limits?.memoryBytes === undefined ? 0 : Math.max(8, Math.ceil(limits.memoryBytes / MiB));
}

type Ended = { readonly kind: "reply"; readonly reply: CallReply } | { readonly kind: "exit"; readonly error: Error; readonly code: number | null; readonly signal: NodeJS.Signals | null };

/** One forked process of the pool. */
class PoolProcess {
	readonly child: ChildProcess;
	readonly heapCapMb: number;
	readonly ready: Promise<void>;
	#reader: ProcReader | undefined;
	#baseRss = 0;
	#alive = true;
	#started = false;
	#served = false;
	#fatal: Error | undefined;
	/** Set when an error outside any call hit the process while it was idle: it takes no new call. */
	#retiring = false;
	/** Called when the process asks to be retired. */
	onRetire: (() => void) | undefined;
	#waiting: ((ended: Ended) => void) | undefined;
	#exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;

	constructor(heapCapMb: number) {
		this.heapCapMb = heapCapMb;
		const flags = childFlags();
		const execArgv = flags.rest.filter((flag) => !/^--max[-_]old[-_]space[-_]size/.test(flag));
		if (heapCapMb > 0) {
			execArgv.push(`--max-old-space-size=${heapCapMb}`);
		}
		this.child = fork(PROCESS_ENTRY, [], {
			execArgv,
			serialization: "advanced",
			detached: true,
			// Output goes through pipes of its own, forwarded below: with "inherit" the child would
			// share this process's stdout, and when that is a socket (a node parent's "pipe"), a task's
			// process.stdout.end() would shut it down for this process too (EPIPE on its next write).
			stdio: ["ignore", "pipe", "pipe", "ipc"],
			env: { ...process.env, NODE_OPTIONS: stripHeapFlag(process.env["NODE_OPTIONS"]), BYOP_PARENT_PID: String(process.pid), BYOP_LOADERS: flags.loaders.join("\n") },
		});
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
			this.child.on("message", (message: ChildMessage) => {
				if (message.type === "ready") {
					clearTimeout(timer);
					this.#started = true;
					this.#reader = new ProcReader(message.pid);
					this.#baseRss = this.#reader.rssBytes();
					resolve();
				} else if (message.type === "reply") {
					this.#settle({ kind: "reply", reply: message.reply });
				} else if (message.type === "retire") {
					this.#retiring = true;
					this.onRetire?.();
				} else {
					this.#fatal = deserializeError(message.error);
				}
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
				this.#settle({ kind: "exit", error, code, signal });
			});
		});
		this.ready.catch(() => {});
		this.idle();
	}

	get alive(): boolean {
		return this.#alive;
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

	get reader(): ProcReader | undefined {
		return this.#reader;
	}

	/**
	 * Whether it may take another call: alive, not retiring, and its resident memory back within
	 * `growthBytes` of where it started. Memory a call freed is often kept by the allocator and
	 * still counts as resident, so it would count against the next call's memory limit.
	 */
	reusable(growthBytes = REUSE_GROWTH_BYTES): boolean {
		if (!this.#alive || this.#retiring || this.#reader === undefined) {
			return false;
		}
		const rss = this.#reader.rssBytes();
		return rss < 0 || rss - this.#baseRss < growthBytes;
	}

	#settle(ended: Ended): void {
		const waiting = this.#waiting;
		this.#waiting = undefined;
		waiting?.(ended);
	}

	/** Sends a call and resolves with its reply, or with how the process ended. */
	run(payload: CallPayload): Promise<Ended> {
		this.#served = true;
		this.busy();
		return new Promise<Ended>((resolve) => {
			if (!this.#alive) {
				const { code = null, signal = null } = this.#exit ?? {};
				resolve({ kind: "exit", error: new WorkerCrashedError("The process ended before the call was sent", { exitCode: code, signal }), code, signal });
				return;
			}
			this.#waiting = resolve;
			this.send({ type: "call", payload }).catch((error: unknown) => {
				this.#waiting = undefined;
				resolve({ kind: "reply", reply: { id: payload.id, ok: false, error: serializeError(cloneError(error)), stats: { wallMs: 0, cpuMs: 0, peakMemoryBytes: 0 } } });
			});
		});
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

	/** Kills the process and every process it started (its process group). */
	kill(): void {
		if (!this.#alive || this.child.pid === undefined) {
			return;
		}
		try {
			process.kill(-this.child.pid, "SIGKILL");
		} catch {
			this.child.kill("SIGKILL");
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
		.filter((flag) => flag !== "" && !/^--max[-_]old[-_]space[-_]size/.test(flag))
		.join(" ");
}

function cloneError(error: unknown): Error {
	const failure = new Error(`The call's arguments could not be copied to the process: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
	failure.name = "DataCloneError";
	return failure;
}

/**
 * Runs calls in forked Node processes, one call per process at a time, kept warm and reused.
 * Each process leads its own process group; stopping a call kills the group. Limits are watched
 * from this process: wall time by a timer, CPU time and resident memory from `/proc`.
 */
export class ProcessExecutor implements Executor {
	readonly where = "process" as const;
	readonly #maxWorkers: number;
	readonly #watchdog: Watchdog;
	readonly #idle: PoolProcess[] = [];
	readonly #all = new Set<PoolProcess>();
	#closed = false;

	constructor(maxWorkers: number, watchdog: Watchdog) {
		this.#maxWorkers = maxWorkers;
		this.#watchdog = watchdog;
	}

	/** The pool processes alive now. */
	get pids(): number[] {
		return [...this.#all].filter((proc) => proc.alive).map((proc) => proc.pid);
	}

	/** Starts `count` processes without a heap cap, so the first calls do not wait for a fork. */
	warm(count = this.#maxWorkers): void {
		while (this.#all.size < count) {
			const proc = this.#spawn(0);
			this.#idle.push(proc);
		}
	}

	#spawn(heapCapMb: number): PoolProcess {
		const proc = new PoolProcess(heapCapMb);
		this.#all.add(proc);
		proc.onRetire = () => {
			const index = this.#idle.indexOf(proc);
			if (index >= 0) {
				this.#idle.splice(index, 1);
				proc.kill();
			}
		};
		void proc.exited().then(() => {
			this.#all.delete(proc);
			const index = this.#idle.indexOf(proc);
			if (index >= 0) {
				this.#idle.splice(index, 1);
			}
			// A process that served calls and was then stopped, crashed or retired gets a successor
			// now, so that the next call finds one started. A process that ended before it was
			// given a call gets none: whatever ended it may end the next one too, and a call that
			// needs a process starts one anyway.
			if (!this.#closed && proc.served && this.#all.size < this.#maxWorkers) {
				this.#idle.push(this.#spawn(proc.heapCapMb));
			}
		});
		return proc;
	}

	#acquire(heapCapMb: number): PoolProcess {
		const index = this.#idle.findIndex((proc) => proc.alive && proc.heapCapMb === heapCapMb);
		if (index >= 0) {
			const proc = this.#idle.splice(index, 1)[0]!;
			proc.busy();
			return proc;
		}
		if (this.#all.size >= this.#maxWorkers && this.#idle.length > 0) {
			// Make room: an idle process with another heap cap gives way.
			this.#idle.shift()?.kill();
		}
		const proc = this.#spawn(heapCapMb);
		proc.busy();
		return proc;
	}

	#release(proc: PoolProcess, limits: Limits | undefined): void {
		if (this.#closed || !proc.alive) {
			return;
		}
		// The next call here has the same memory limit (processes are kept by heap cap): it gets
		// the process only if little of that limit is still held from this one (a tenth, or what
		// loading its modules takes, such as a TypeScript loader).
		const growth = limits?.memoryBytes === undefined ? REUSE_GROWTH_BYTES : Math.min(REUSE_GROWTH_BYTES, Math.max(MODULES_GROWTH_BYTES, limits.memoryBytes / 10));
		if ((limits?.memoryBytes !== undefined || proc.retiring) && !proc.reusable(growth)) {
			proc.kill();
			return;
		}
		proc.idle();
		this.#idle.push(proc);
	}

	async execute(execution: Execution): Promise<Outcome> {
		const { call, cancellation } = execution;
		const limits = call.limits;
		const proc = this.#acquire(processHeapCap(limits));
		let sent = false;
		let cpuBase = 0;
		const cpuMs = (): number => {
			const now = proc.reader?.cpuNs() ?? -1;
			return now < 0 ? -1 : (now - cpuBase) / 1e6;
		};
		let cpuAtKill = -1;
		const stopper = new Stopper(
			limits,
			(reason) => {
				void proc.send({ type: "abort", abort: call.id, reason: serializeError(reason) }).catch(() => {});
			},
			() => {
				// Read just before the kill, after which the process cannot be read.
				cpuAtKill = sent ? cpuMs() : -1;
				proc.kill();
			},
		);
		const guard =
			limits === undefined
				? undefined
				: new Guard(
						limits,
						{
							cpuMs,
							rssBytes: () => proc.reader?.rssBytes() ?? -1,
						},
						this.#watchdog,
						(error) => stopper.stop(error),
					);
		if (cancellation.reason !== undefined) {
			stopper.stop(cancellation.reason, true);
		} else {
			cancellation.listen((reason) => stopper.stop(reason, !sent));
		}
		let ended: Ended;
		const startedAt = performance.now();
		try {
			await proc.ready;
			if (stopper.reason !== undefined) {
				throw stopper.reason;
			}
			cpuBase = proc.reader?.cpuNs() ?? 0;
			sent = true;
			const running = proc.run({ id: call.id, ref: call.ref, args: call.args, slot: -1, generation: 0 });
			guard?.start(true);
			execution.started();
			ended = await running;
		} catch (error) {
			const failure = error instanceof Error ? error : new WorkerCrashedError(String(error), {});
			ended = { kind: "exit", error: failure, code: null, signal: null };
			proc.kill();
		}
		cancellation.listen(undefined);
		guard?.check();
		guard?.dispose();
		stopper.dispose();
		this.#release(proc, limits);
		const reason = guard?.fired ?? stopper.reason;
		const measured = ended.kind === "reply" ? ended.reply.stats : undefined;
		const usage: Usage = {
			wallMs: measured?.wallMs ?? (guard?.elapsed() || performance.now() - startedAt),
			cpuMs: measured?.cpuMs ?? (cpuAtKill >= 0 ? cpuAtKill : (guard?.cpuMs ?? -1)),
			peakMemoryBytes: Math.max(measured?.peakMemoryBytes ?? 0, guard?.peakRss ?? 0),
			where: "process",
		};
		if (reason instanceof LimitExceededError) {
			return { kind: "exception", error: reason, usage };
		}
		if (reason instanceof CancelledError) {
			return { kind: "cancelled", error: reason, usage };
		}
		if (ended.kind === "reply") {
			const { reply } = ended;
			return reply.ok ? { kind: "result", value: reply.value, usage } : { kind: "exception", error: deserializeError(reply.error), usage };
		}
		// A V8 heap cap hit aborts the process: under a memory limit that is the limit's doing.
		if (limits?.memoryBytes !== undefined && (ended.signal === "SIGABRT" || ended.signal === "SIGTRAP" || ended.code === 134)) {
			return { kind: "exception", error: new MemoryLimitError(limits.memoryBytes, Math.max(usage.peakMemoryBytes, limits.memoryBytes), "rss", { cause: ended.error }), usage };
		}
		return { kind: "exception", error: ended.error, usage };
	}

	async close(): Promise<void> {
		this.#closed = true;
		const all = [...this.#all];
		this.#idle.length = 0;
		for (const proc of all) {
			proc.kill();
		}
		await Promise.all(all.map((proc) => proc.exited()));
	}
}
