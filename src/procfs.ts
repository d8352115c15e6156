import { closeSync, openSync, readdirSync, readFileSync, readlinkSync, readSync } from "node:fs";

/**
 * Readers of Linux's `/proc`: a thread's CPU time (`schedstat`), a process's resident memory
 * (`statm`) and its children. Every reader returns -1 (or nothing) where `/proc` cannot be read.
 */

const PAGE_SIZE = 4096;
const scratch = Buffer.alloc(256);

/** Opens a file for reading, or returns -1. */
export function tryOpen(file: string): number {
	try {
		return openSync(file, "r");
	} catch {
		return -1;
	}
}

/** Reads the first field of an open `schedstat` file: CPU time in nanoseconds; -1 when it cannot. */
export function readSchedstat(fd: number): number {
	try {
		const length = readSync(fd, scratch, 0, 128, 0);
		let value = 0;
		for (let i = 0; i < length; i++) {
			const code = scratch[i]!;
			if (code < 48 || code > 57) {
				break;
			}
			value = value * 10 + (code - 48);
		}
		return value;
	} catch {
		return -1;
	}
}

/** The OS thread id of the calling thread, or 0 where `/proc/thread-self` does not exist. */
export function currentTid(): number {
	try {
		return Number(readlinkSync("/proc/thread-self").split("/").pop()) || 0;
	} catch {
		return 0;
	}
}

/** Opens the calling thread's `schedstat`, or returns -1 where there is none. */
export function openOwnSchedstat(): number {
	return tryOpen("/proc/thread-self/schedstat");
}

/** Nanoseconds per clock tick of `/proc/<pid>/stat` (USER_HZ is 100 on Linux). */
const TICK_NS = 10_000_000;

/**
 * Reads what a process and everything it started use: the CPU time that a call in it spends,
 * and the resident memory of the process and its descendants.
 */
export class ProcReader {
	readonly pid: number;
	#stat: number;
	#statm: number;
	/** The `schedstat` of each thread counted for the call, by thread id. */
	readonly #threads = new Map<number, number>();
	/** The threads that were there before the call (V8's helpers, the parent watcher): not the call's. */
	#background = new Set<number>();
	/** Each counted thread's last reading, and what threads that ended had used. */
	readonly #last = new Map<number, number>();
	#ended = 0;
	#mainBase = 0;
	#groupBase = 0;
	/** Each background thread's counter when the call began, and what it has used since, as last read. */
	#backgroundBase = new Map<number, number>();
	readonly #backgroundUsed = new Map<number, number>();
	/** Set once a background thread ended: the whole process's time then holds some of its time that was never read. */
	#backgroundEnded = false;
	/** The call's CPU time as last read: a reading never goes back. */
	#total = 0;
	#reapedBase = 0;
	/** What the processes already there when the call began had used then. */
	#descendantBase = new Map<number, number>();

	constructor(pid: number) {
		this.pid = pid;
		this.#stat = tryOpen(`/proc/${pid}/stat`);
		this.#statm = tryOpen(`/proc/${pid}/statm`);
	}

	/** Starts counting a call's CPU time from now (see `callCpuNs`). */
	beginCall(): void {
		const group = readStatCpu(this.#stat);
		this.#groupBase = group.own;
		this.#reapedBase = group.children;
		this.#background = new Set(this.#tids().filter((tid) => tid !== this.pid));
		for (const [tid, fd] of this.#threads) {
			if (tid !== this.pid) {
				closeQuietly(fd);
				this.#threads.delete(tid);
			}
		}
		this.#last.clear();
		this.#ended = 0;
		this.#mainBase = Math.max(0, this.#threadNs(this.pid));
		this.#backgroundBase = new Map([...this.#background].map((tid) => [tid, Math.max(0, this.#threadNs(tid))]));
		this.#backgroundUsed.clear();
		this.#backgroundEnded = false;
		this.#total = 0;
		this.#descendantBase = new Map(descendants(this.pid).map((pid) => [pid, processCpuNs(pid)]));
	}

	/**
	 * The CPU time in nanoseconds a call has spent since `beginCall()`: that of the process's main
	 * thread, of the threads started since (nested workers, those that ended included), and of the
	 * processes it started (alive, or ended and waited for). V8's helper threads, there before the
	 * call, are not counted. -1 when the process cannot be read.
	 */
	callCpuNs(): number {
		const main = this.#threadNs(this.pid);
		const group = readStatCpu(this.#stat);
		if (main < 0 || group.own < 0) {
			return -1;
		}
		// Exact: the main thread and the threads started since, from their own counters.
		let exact = main - this.#mainBase + this.#ended;
		const alive = new Set(this.#tids());
		for (const tid of alive) {
			if (tid === this.pid) {
				continue;
			}
			const ns = Math.max(0, this.#threadNs(tid));
			if (this.#background.has(tid)) {
				this.#backgroundUsed.set(tid, ns - (this.#backgroundBase.get(tid) ?? ns));
			} else {
				this.#last.set(tid, ns);
				exact += ns;
			}
		}
		for (const [tid, ns] of this.#last) {
			if (!alive.has(tid)) {
				this.#ended += ns;
				exact += ns;
				this.#last.delete(tid);
				closeQuietly(this.#threads.get(tid) ?? -1);
				this.#threads.delete(tid);
			}
		}
		// A background thread that ended counts with what it had used when last read.
		let background = 0;
		for (const [tid, used] of this.#backgroundUsed) {
			background += used;
			if (!alive.has(tid)) {
				this.#backgroundEnded = true;
			}
		}
		// A thread that started and ended between two readings is seen only in the whole process's
		// time (in clock ticks, which includes ended threads): less the threads there before, it
		// counts when it is more than a tick above the exact sum.
		const whole = group.own - this.#groupBase - background;
		let total = whole > exact + TICK_NS && !this.#backgroundEnded ? whole : exact;
		total += Math.max(0, group.children - this.#reapedBase);
		for (const pid of descendants(this.pid)) {
			total += Math.max(0, processCpuNs(pid) - (this.#descendantBase.get(pid) ?? 0));
		}
		this.#total = Math.max(this.#total, total);
		return this.#total;
	}

	#tids(): number[] {
		try {
			return readdirSync(`/proc/${this.pid}/task`).map(Number);
		} catch {
			return [];
		}
	}

	/** A thread's own CPU counter, in ns (-1 when it cannot be read). */
	#threadNs(tid: number): number {
		// Counters of threads the reader keeps open: the main thread, the background ones and those counted.
		let fd = this.#threads.get(tid);
		if (fd === undefined) {
			fd = tryOpen(`/proc/${this.pid}/task/${tid}/schedstat`);
			this.#threads.set(tid, fd);
		}
		return fd < 0 ? -1 : readSchedstat(fd);
	}

	/** Resident memory of the process and of every process it started, in bytes. */
	rssBytes(): number {
		const own = readStatm(this.#statm);
		if (own < 0) {
			return -1;
		}
		let total = own;
		for (const pid of descendants(this.pid)) {
			total += Math.max(0, statmOf(pid));
		}
		return total;
	}

	close(): void {
		for (const fd of [this.#stat, this.#statm, ...this.#threads.values()]) {
			closeQuietly(fd);
		}
		this.#threads.clear();
		this.#stat = -1;
		this.#statm = -1;
	}
}

function closeQuietly(fd: number): void {
	if (fd >= 0) {
		try {
			closeSync(fd);
		} catch {
			// Already closed.
		}
	}
}

/** The CPU time in `/proc/<pid>/stat` (an open descriptor, or read by pid): the process's own and that of the children it waited for, in ns. */
function readStatCpu(fd: number, pid?: number): { own: number; children: number } {
	let text: string;
	try {
		if (fd >= 0) {
			const length = readSync(fd, statScratch, 0, statScratch.length, 0);
			text = statScratch.toString("latin1", 0, length);
		} else {
			text = readFileSync(`/proc/${pid}/stat`, "latin1");
		}
	} catch {
		return { own: -1, children: 0 };
	}
	// Fields after the command name (which may hold spaces): state is field 3; utime, stime, cutime, cstime are 14 to 17.
	const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
	const ticks = (index: number): number => Number(fields[index - 3]) || 0;
	return { own: (ticks(14) + ticks(15)) * TICK_NS, children: (ticks(16) + ticks(17)) * TICK_NS };
}

const statScratch = Buffer.alloc(1024);

/** The CPU time of a process and of the children it waited for, in ns (0 when it cannot be read). */
function processCpuNs(pid: number): number {
	const cpu = readStatCpu(-1, pid);
	return Math.max(0, cpu.own) + cpu.children;
}

/** The processes `pid` started, and theirs, to any depth: children of each of its threads. */
export function descendants(pid: number): number[] {
	const found: number[] = [];
	const queue = [pid];
	const seen = new Set<number>([pid]);
	while (queue.length > 0 && found.length < 4096) {
		const parent = queue.shift()!;
		for (const child of childrenOfProcess(parent)) {
			if (!seen.has(child)) {
				seen.add(child);
				found.push(child);
				queue.push(child);
			}
		}
	}
	return found;
}

/** The processes one thread of this process started, and their descendants. */
export function threadDescendants(tid: number): number[] {
	const direct = parsePids(readQuietly(`/proc/self/task/${tid}/children`));
	return [...direct, ...direct.flatMap((pid) => descendants(pid))];
}

/** Kills each pid with SIGKILL; pids already gone are skipped. */
export function killAll(pids: readonly number[]): void {
	for (const pid of pids) {
		try {
			process.kill(pid, "SIGKILL");
		} catch {
			// Already gone.
		}
	}
}

function childrenOfProcess(pid: number): number[] {
	let tasks: string[];
	try {
		tasks = readdirSync(`/proc/${pid}/task`);
	} catch {
		return [];
	}
	return tasks.flatMap((tid) => parsePids(readQuietly(`/proc/${pid}/task/${tid}/children`)));
}

function readQuietly(file: string): string {
	try {
		return readFileSync(file, "latin1");
	} catch {
		return "";
	}
}

function statmOf(pid: number): number {
	const fields = readQuietly(`/proc/${pid}/statm`).split(" ");
	return fields.length > 1 ? Number(fields[1]) * PAGE_SIZE : -1;
}

function readStatm(fd: number): number {
	if (fd < 0) {
		return -1;
	}
	try {
		const length = readSync(fd, scratch, 0, scratch.length, 0);
		const fields = scratch.toString("latin1", 0, length).split(" ");
		return Number(fields[1]) * PAGE_SIZE;
	} catch {
		return -1;
	}
}

function parsePids(text: string): number[] {
	const trimmed = text.trim();
	return trimmed === "" ? [] : trimmed.split(" ").map(Number);
}
