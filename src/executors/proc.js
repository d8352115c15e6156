import { openSync, readFileSync, readSync, closeSync } from "node:fs";
import { readSchedstat } from "../control.js";
const PAGE_SIZE = 4096;
const scratch = Buffer.alloc(256);
/** Reads numbers about a process from `/proc` (Linux); every reader returns -1 where it cannot. */
export class ProcReader {
    pid;
    #schedstat;
    #statm;
    constructor(pid) {
        this.pid = pid;
        this.#schedstat = tryOpen(`/proc/${pid}/task/${pid}/schedstat`);
        this.#statm = tryOpen(`/proc/${pid}/statm`);
    }
    /** CPU time of the process's main thread, in nanoseconds. */
    cpuNs() {
        return this.#schedstat < 0 ? -1 : readSchedstat(this.#schedstat);
    }
    /** Resident memory of the process and, recursively, of the children it started, in bytes. */
    rssBytes() {
        const own = readStatm(this.#statm);
        if (own < 0) {
            return -1;
        }
        let total = own;
        for (const child of childrenOf(this.pid)) {
            total += treeRss(child, 0);
        }
        return total;
    }
    close() {
        for (const fd of [this.#schedstat, this.#statm]) {
            if (fd >= 0) {
                try {
                    closeSync(fd);
                }
                catch {
                    // Already closed.
                }
            }
        }
        this.#schedstat = -1;
        this.#statm = -1;
    }
}
function tryOpen(file) {
    try {
        return openSync(file, "r");
    }
    catch {
        return -1;
    }
}
function readStatm(fd) {
    if (fd < 0) {
        return -1;
    }
    try {
        const length = readSync(fd, scratch, 0, scratch.length, 0);
        const fields = scratch.toString("latin1", 0, length).split(" ");
        return Number(fields[1]) * PAGE_SIZE;
    }
    catch {
        return -1;
    }
}
function childrenOf(pid) {
    try {
        const text = readFileSync(`/proc/${pid}/task/${pid}/children`, "latin1").trim();
        return text === "" ? [] : text.split(" ").map(Number);
    }
    catch {
        return [];
    }
}
function treeRss(pid, depth) {
    let total = 0;
    try {
        const fields = readFileSync(`/proc/${pid}/statm`, "latin1").split(" ");
        total = Number(fields[1]) * PAGE_SIZE;
    }
    catch {
        return 0;
    }
    if (depth < 8) {
        for (const child of childrenOf(pid)) {
            total += treeRss(child, depth + 1);
        }
    }
    return total;
}
