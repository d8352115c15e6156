import { Worker } from "node:worker_threads";

/** The file descriptor of a pool process on which its watcher reports readings (see `ProcessWatcher`). */
export const REPORT_FD = 4;

/** What the watcher is told of a call it watches: its limits, and the process's CPU time at its start. */
export interface WatchedCall {
	readonly id: number;
	/** The process's CPU time at the call's start, in ms. */
	readonly baseMs: number;
	/** The call's CPU limit in ms, if it has one. */
	readonly cpuMs?: number | undefined;
	/** The call's resident-memory limit in bytes, if it has one. */
	readonly rssBytes?: number | undefined;
	/** The call's wall limit in ms, if it has one: a call it stops is read every twentieth of it, for the CPU time it used. */
	readonly wallMs?: number | undefined;
	/** The shortest time between two readings, in ms. */
	readonly sampleMs: number;
}

/**
 * The watcher thread's code (plain JavaScript: it runs with no loader). It kills the process's
 * group when the parent is gone. On the portable path, once it has the token of the readings,
 * it also reads the process's CPU time
 * (`process.cpuUsage()`, every thread of the process) and resident memory while a limited call
 * runs, however busy the main thread is, and writes each reading to the parent as a line
 * `<token> <call id> <cpu ms> <rss bytes> <peak rss bytes> <over>`; `over` is 1 once a reading
 * passes one of the call's limits, and such a reading is written at once. A call far from its
 * limits is read when it could first have passed them (the process's CPU time grows at most
 * `cores` times as fast as wall time, memory at most `growthBytesPerMs`), at least once a second,
 * so that the parent knows it lives
 * (a call with a wall limit every twentieth of it: what a call stopped by it used is its last reading).
 */
const WATCHER_SOURCE = `
const { workerData, parentPort } = require("node:worker_threads");
const { parent, fd, growthBytesPerMs, cores } = workerData;
setInterval(() => {
	if (process.ppid !== parent) {
		try { process.kill(-process.pid, "SIGKILL"); } catch {}
		process.kill(process.pid, "SIGKILL");
	}
}, 200);
const rss = process.memoryUsage.rss;
const cpuUsage = process.cpuUsage;
let out;
let token;
let call;
let timer;
let peak = 0;
const read = () => {
	timer = undefined;
	if (call === undefined) return;
	const usage = cpuUsage();
	const cpu = (usage.user + usage.system) / 1000 - call.baseMs;
	const resident = rss();
	peak = Math.max(peak, resident);
	const overCpu = call.cpuMs !== undefined && cpu >= call.cpuMs;
	const overRss = call.rssBytes !== undefined && resident > call.rssBytes;
	out.write(token + " " + call.id + " " + cpu.toFixed(3) + " " + resident + " " + peak + " " + (overCpu || overRss ? 1 : 0) + "\\n");
	let wait = call.wallMs === undefined ? 1000 : Math.min(1000, call.wallMs / 20);
	if (call.cpuMs !== undefined) wait = Math.min(wait, (call.cpuMs - cpu) / cores);
	if (call.rssBytes !== undefined) wait = Math.min(wait, (call.rssBytes - resident) / growthBytesPerMs);
	timer = setTimeout(read, Math.max(call.sampleMs, wait));
};
parentPort.on("message", (message) => {
	if (message.type === "report") {
		if (out !== undefined) return;
		token = message.token;
		out = new (require("node:net").Socket)({ fd, readable: false, writable: true });
		// Without its channel the parent could not enforce the limits: the watcher fails, and the process ends.
		const lost = (error) => {
			throw error instanceof Error ? error : new Error("the channel of its readings closed");
		};
		out.on("error", lost);
		out.on("close", lost);
		out.write(token + " 0 0 " + rss() + " " + rss() + " 0\\n");
		parentPort.postMessage("watching");
		return;
	}
	if (out === undefined) return;
	clearTimeout(timer);
	timer = undefined;
	call = message.type === "begin" ? message.call : undefined;
	peak = 0;
	if (call !== undefined) read();
});
`;

/**
 * The thread of a pool process that runs beside its main thread, which a task may keep busy in a
 * synchronous loop: it notices the parent's death, and on the portable path (no `/proc` to read the
 * process from outside) it reads what the running call uses and reports it to the parent on
 * `REPORT_FD`, with a token that the task never sees. The parent enforces the limits on these
 * readings, and stops the call as on every path.
 */
export class ProcessWatcher {
	readonly #worker: Worker;
	#reporting = false;

	/**
	 * @param parentPid the parent's pid: the process's group is killed once its parent is another.
	 * @param growthBytesPerMs how fast memory is taken to grow at most, across the process's threads.
	 * @param cores how many of the process's threads can run at once.
	 */
	constructor(parentPid: number, growthBytesPerMs: number, cores: number) {
		this.#worker = new Worker(WATCHER_SOURCE, {
			eval: true,
			workerData: { parent: parentPid, fd: REPORT_FD, growthBytesPerMs, cores },
			execArgv: [],
			stdout: false,
			stderr: false,
		});
		this.#worker.unref();
	}

	/**
	 * Has the watcher read what limited calls use and report it on `REPORT_FD`, each line with
	 * `token`, which the parent sends on the IPC channel (never in the environment, which other
	 * processes can read). Its first line tells the parent that it reads: the parent sends calls
	 * from then on, so that a call's first milliseconds are read too. Taken once.
	 */
	report(token: string): void {
		if (!this.#reporting) {
			this.#reporting = true;
			this.#worker.postMessage({ type: "report", token });
		}
	}

	/** Starts reading a call with CPU or memory limits (nothing when the parent reads `/proc`). */
	begin(call: WatchedCall): void {
		if (this.#reporting) {
			this.#worker.postMessage({ type: "begin", call });
		}
	}

	/** The call has ended: readings stop until the next. */
	end(): void {
		if (this.#reporting) {
			this.#worker.postMessage({ type: "end" });
		}
	}

	/** Calls `failed` if the watcher thread fails or ends: the process cannot be watched without it. */
	onError(failed: (error: Error) => void): void {
		this.#worker.once("error", failed);
		this.#worker.once("exit", (code) => failed(new Error(`it ended with exit code ${code}`)));
	}
}
