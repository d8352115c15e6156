import { WorkerCrashedError } from "../../errors.ts";
import { MemoryLimitError } from "../../limits/errors.ts";
import type { StopReason } from "../../limits/stopper.ts";
import type { Limits } from "../../limits/types.ts";
import { procAvailable } from "../../procfs.ts";
import type { ProcessCallPayload } from "../../protocol/messages.ts";
import { deserializeError, serializeError } from "../../serialize.ts";
import type { CallAdapter, Ending } from "../call.ts";
import { MainComm } from "../comm.ts";
import type { Call } from "../executor.ts";
import type { PoolProcess } from "./pool-process.ts";

/**
 * One call in a pool process. Its CPU time is that of the process's main thread, its memory the
 * resident memory of the process and its children, both read from `/proc` by the parent. On the
 * portable path (no `/proc`), its CPU time is the whole process's and its memory the process's
 * own, as the process's watcher thread reports them (see `ReportReader`). Stopping it kills the
 * process's whole group.
 */
export class ProcessCall implements CallAdapter {
	readonly where = "process" as const;
	readonly #call: Call;
	readonly #proc: PoolProcess;
	readonly #release: (proc: PoolProcess, limits: Limits | undefined, killed: boolean) => void;
	#sentAt: number | undefined;
	/** Whether the call left work running in its process, which is then not reused. */
	#leftWork = false;
	/** The main side's end of the call's comm channel, for a task with a `CommPlugin`. */
	#comm: MainComm | undefined;

	constructor(call: Call, proc: PoolProcess, release: (proc: PoolProcess, limits: Limits | undefined, killed: boolean) => void) {
		this.#call = call;
		this.#proc = proc;
		this.#release = release;
	}

	watchClosely(soon: () => void): void {
		this.#proc.onSpawned = () => soon();
	}

	watchPushed(checkNow: () => void): void {
		this.#proc.onOver = () => checkNow();
	}

	ready(): Promise<void> {
		const memoryBytes = this.#call.limits?.memoryBytes;
		if (memoryBytes === undefined) {
			return this.#proc.ready;
		}
		// A heap cap below what node needs to start aborts the process as it starts (Node 24 and
		// later use more heap before the process says it is ready than Node 20 does): under a
		// memory limit, that is the limit's doing, as an abort while the call runs is.
		return this.#proc.ready.catch((error: unknown) => {
			throw error instanceof WorkerCrashedError && aborted(error.signal, error.exitCode) ? new MemoryLimitError(memoryBytes, memoryBytes, "rss", { cause: error }) : error;
		});
	}

	startedAt(): number | undefined {
		return this.#sentAt;
	}

	cpuMs(): number {
		const ns = this.#sentAt === undefined ? -1 : (this.#proc.reader?.callCpuNs() ?? -1);
		return ns < 0 ? -1 : ns / 1e6;
	}

	rssBytes(): number {
		return this.#proc.reader?.rssBytes() ?? -1;
	}

	async run(): Promise<Ending> {
		const { id, ref, args, limits } = this.#call;
		const watch = watchOf(limits);
		this.#proc.reader?.beginCall(id, watch !== undefined);
		this.#sentAt = performance.now();
		if (this.#call.comm !== undefined) {
			// The IPC channel keeps order: what the task sent arrives before its reply.
			const main = new MainComm(this.#call.comm, (comm) => void this.#proc.send({ type: "comm", id, comm }).catch(() => {}));
			this.#comm = main;
			this.#proc.onComm = (message) => main.receive(message);
		}
		const payload: Omit<ProcessCallPayload, "token"> = { id, ref, args, ...(this.#comm === undefined ? {} : { comm: true }), ...(watch === undefined ? {} : { watch }) };
		const ended = await this.#proc.run(payload);
		if (ended.kind === "reply") {
			const { reply } = ended;
			this.#leftWork = reply.leftWork === true;
			this.#proc.reader?.ended(reply.stats);
			// The call's CPU time is read here, as the checks while it ran read it (see ProcReader);
			// the process's own figure (all its threads) serves where /proc cannot be read.
			const cpuMs = this.cpuMs();
			const peakMemoryBytes = Math.max(reply.stats.peakMemoryBytes, this.#proc.reader?.peakRssBytes() ?? 0);
			const usage = { ...reply.stats, cpuMs: cpuMs >= 0 ? cpuMs : reply.stats.cpuMs, peakMemoryBytes, where: "process" as const };
			return reply.ok ? { kind: "result", value: reply.value, usage } : { kind: "exception", error: deserializeError(reply.error), usage };
		}
		const usage = { wallMs: performance.now() - this.#sentAt, cpuMs: -1, peakMemoryBytes: 0, where: "process" as const };
		// A V8 heap cap hit aborts the process: under a memory limit that is the limit's doing.
		if (limits?.memoryBytes !== undefined && aborted(ended.signal, ended.code)) {
			return { kind: "exception", error: new MemoryLimitError(limits.memoryBytes, limits.memoryBytes, "rss", { cause: ended.error }), usage };
		}
		return { kind: "exception", error: ended.error, usage };
	}

	notify(reason: StopReason): void {
		void this.#proc.send({ type: "abort", abort: this.#call.id, reason: serializeError(reason) }).catch(() => {});
	}

	kill(): void {
		this.#proc.kill();
	}

	release(killed: boolean): void {
		this.#proc.onSpawned = undefined;
		this.#proc.onOver = undefined;
		this.#proc.onComm = undefined;
		this.#comm?.close();
		this.#proc.released();
		// A worker thread the call started and left running is work left behind too.
		if (this.#proc.reader?.callThreadsAlive === true) {
			this.#leftWork = true;
		}
		// What the call started and left running ends with the call.
		this.#proc.killDescendants();
		this.#release(this.#proc, this.#call.limits, killed || this.#leftWork);
	}
}

/**
 * What the process's watcher reads a call against, on the portable path: its CPU and memory
 * limits (a process's memory limit is on its resident memory), and its wall limit, for the CPU
 * time a call stopped by it has used. `undefined` where the parent reads `/proc`, or the call has
 * no limits.
 */
function watchOf(limits: Limits | undefined): ProcessCallPayload["watch"] {
	if (procAvailable() || limits === undefined) {
		return undefined;
	}
	return { cpuMs: limits.cpuMs, rssBytes: limits.memoryBytes, wallMs: limits.wallMs, sampleMs: limits.sampleMs };
}

/** Whether a process ended the way V8 ends it when its heap cap is hit (an abort). */
function aborted(signal: NodeJS.Signals | null, code: number | null): boolean {
	return signal === "SIGABRT" || signal === "SIGTRAP" || code === 134;
}
