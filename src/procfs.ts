import * as fs from "node:fs";

// Taken as the module loads: a task in a worker thread that replaces these (and syncs the ES
// module bindings) does not reach what the worker reads its CPU time with.
const { closeSync, openSync, readdirSync, readFileSync, readlinkSync, readSync } = fs;

/**
 * Readers of Linux's `/proc`: a thread's CPU time (`schedstat`), a process's resident memory
 * (`statm`) and its children. Every reader returns -1 (or nothing) where `/proc` cannot be read,
 * or is not to be (`procAvailable()`).
 */

const PAGE_SIZE = 4096;
const scratch = Buffer.alloc(256);

let available: boolean | undefined;

/**
 * Whether byop reads Linux's `/proc`: `/proc/self/stat` can be read and `BYOP_PORTABLE` is not
 * `1`. Decided once per thread or process, at the first question. Where it is `false` (macOS,
 * Windows, or the switch), every reader here reads nothing, and the limits take the portable
 * path (see `docs/limits.md`). A process or thread that byop starts inherits the switch through
 * its environment.
 */
export function procAvailable(): boolean {
	if (available === undefined) {
		available = process.env["BYOP_PORTABLE"] !== "1" && readable("/proc/self/stat");
	}
	return available;
}

function readable(file: string): boolean {
	try {
		closeSync(openSync(file, "r"));
		return true;
	} catch {
		return false;
	}
}

/** Opens a file for reading, or returns -1 (always, where `/proc` is not read). */
export function tryOpen(file: string): number {
	if (!procAvailable()) {
		return -1;
	}
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
	if (!procAvailable()) {
		return 0;
	}
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

export function closeQuietly(fd: number): void {
	if (fd >= 0) {
		try {
			closeSync(fd);
		} catch {
			// Already closed.
		}
	}
}

/**
 * The CPU time in `/proc/<pid>/stat` (an open descriptor, or read by pid): the process's own and
 * that of the children it waited for, in ns; and how many threads it has (0 when unread).
 */
export function readStatCpu(fd: number, pid?: number): { own: number; children: number; threads: number } {
	let text: string;
	try {
		if (fd < 0 && !procAvailable()) {
			return { own: -1, children: 0, threads: 0 };
		}
		if (fd >= 0) {
			const length = readSync(fd, statScratch, 0, statScratch.length, 0);
			text = statScratch.toString("latin1", 0, length);
		} else {
			text = readFileSync(`/proc/${pid}/stat`, "latin1");
		}
	} catch {
		return { own: -1, children: 0, threads: 0 };
	}
	// Fields after the command name (which may hold spaces): state is field 3; utime, stime, cutime,
	// cstime are 14 to 17, num_threads 20.
	const fields = text.slice(text.lastIndexOf(")") + 2).split(" ", 18);
	const field = (index: number): number => Number(fields[index - 3]) || 0;
	return { own: (field(14) + field(15)) * TICK_NS, children: (field(16) + field(17)) * TICK_NS, threads: field(20) };
}

const statScratch = Buffer.alloc(1024);

/** The CPU time of a process and of the children it waited for, in ns (0 when it cannot be read). */
export function processCpuNs(pid: number): number {
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
	if (!procAvailable()) {
		return [];
	}
	let tasks: string[];
	try {
		tasks = readdirSync(`/proc/${pid}/task`);
	} catch {
		return [];
	}
	return tasks.flatMap((tid) => parsePids(readQuietly(`/proc/${pid}/task/${tid}/children`)));
}

function readQuietly(file: string): string {
	if (!procAvailable()) {
		return "";
	}
	try {
		return readFileSync(file, "latin1");
	} catch {
		return "";
	}
}

export function statmOf(pid: number): number {
	const fields = readQuietly(`/proc/${pid}/statm`).split(" ");
	return fields.length > 1 ? Number(fields[1]) * PAGE_SIZE : -1;
}

export function readStatm(fd: number): number {
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

const pidScratch = Buffer.alloc(4096);

/** The pids in an open `children` file; none when it cannot be read. */
export function readPids(fd: number): number[] {
	if (fd < 0) {
		return [];
	}
	try {
		const length = readSync(fd, pidScratch, 0, pidScratch.length, 0);
		if (length === 0) {
			return [];
		}
		// More children than the buffer holds: read the whole file.
		return parsePids(length === pidScratch.length ? readFileSync(`/proc/self/fd/${fd}`, "latin1") : pidScratch.toString("latin1", 0, length));
	} catch {
		return [];
	}
}

function parsePids(text: string): number[] {
	const trimmed = text.trim();
	return trimmed === "" ? [] : trimmed.split(" ").map(Number);
}
