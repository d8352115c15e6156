import { closeSync, openSync, readFileSync, readlinkSync, readSync } from "node:fs";

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

/** Reads the CPU time of a process's main thread and the resident memory of the process and its children. */
export class ProcReader {
	readonly pid: number;
	#schedstat: number;
	#statm: number;
	/** The children of the process's main thread, read again at each look (a pread of an open file). */
	#children: number;

	constructor(pid: number) {
		this.pid = pid;
		this.#schedstat = tryOpen(`/proc/${pid}/task/${pid}/schedstat`);
		this.#statm = tryOpen(`/proc/${pid}/statm`);
		this.#children = tryOpen(`/proc/${pid}/task/${pid}/children`);
	}

	/** CPU time of the process's main thread, in nanoseconds. */
	cpuNs(): number {
		return this.#schedstat < 0 ? -1 : readSchedstat(this.#schedstat);
	}

	/** Resident memory of the process and, recursively, of the children it started, in bytes. */
	rssBytes(): number {
		const own = readStatm(this.#statm);
		if (own < 0) {
			return -1;
		}
		let total = own;
		for (const child of readChildren(this.#children)) {
			total += treeRss(child, 0);
		}
		return total;
	}

	close(): void {
		for (const fd of [this.#schedstat, this.#statm, this.#children]) {
			if (fd >= 0) {
				try {
					closeSync(fd);
				} catch {
					// Already closed.
				}
			}
		}
		this.#schedstat = -1;
		this.#statm = -1;
		this.#children = -1;
	}
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

const childrenScratch = Buffer.alloc(4096);

/** The pids in an open `children` file; none when it cannot be read. */
function readChildren(fd: number): number[] {
	if (fd < 0) {
		return [];
	}
	try {
		const length = readSync(fd, childrenScratch, 0, childrenScratch.length, 0);
		if (length === childrenScratch.length) {
			// More children than the buffer holds: read the whole file.
			return parsePids(readFileSync(`/proc/self/fd/${fd}`, "latin1"));
		}
		return parsePids(childrenScratch.toString("latin1", 0, length));
	} catch {
		return [];
	}
}

function parsePids(text: string): number[] {
	const trimmed = text.trim();
	return trimmed === "" ? [] : trimmed.split(" ").map(Number);
}

function childrenOf(pid: number): number[] {
	try {
		return parsePids(readFileSync(`/proc/${pid}/task/${pid}/children`, "latin1"));
	} catch {
		return [];
	}
}

function treeRss(pid: number, depth: number): number {
	let total = 0;
	try {
		const fields = readFileSync(`/proc/${pid}/statm`, "latin1").split(" ");
		total = Number(fields[1]) * PAGE_SIZE;
	} catch {
		return 0;
	}
	if (depth < 8) {
		for (const child of childrenOf(pid)) {
			total += treeRss(child, depth + 1);
		}
	}
	return total;
}
