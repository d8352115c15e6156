import { readdirSync } from "node:fs";
import { closeQuietly, descendants, processCpuNs, readPids, readSchedstat, readStatCpu, readStatm, statmOf, tryOpen } from "../../procfs.ts";
import type { UsageReader } from "./usage-reader.ts";

/** How long one reading of a process's tree serves (a check reads CPU time and memory in turn). */
const TREE_REUSE_MS = 1;

/**
 * Reads what a call in a process uses, from outside the process: the CPU time of the process's
 * main thread, of the threads the call starts and of the processes it starts, and the resident
 * memory of the process and its descendants. Descriptors stay open from reading to reading, so
 * a reading is a few `pread`s and one listing of the process's threads.
 *
 * Nothing the process says is taken for what it is: which threads were there before a call (its
 * background) is this reader's own listing, taken when the process starts and after each call,
 * and a call that starts threads or processes without saying so is noticed all the same: its
 * process has more threads than its background, or its main thread has children.
 */
export class ProcReader implements UsageReader {
	readonly pid: number;
	#stat: number;
	#statm: number;
	/** The main thread's `children` file: the processes it started. */
	#mainChildren: number;
	/** How many threads the process had when its background was listed. */
	#baseThreads = 0;
	/** Set when the background must be listed again before the next call (see `rebaseline`). */
	#stale = false;
	/** Called when a reading finds that the call started threads or processes it did not announce. */
	onSpawned: (() => void) | undefined;
	/** Not called: the parent's own checks read the process. */
	onOver: (() => void) | undefined;
	/** Each thread of the process, by thread id: its `schedstat` and `children` files, kept open. */
	readonly #tasks = new Map<number, { readonly schedstat: number; readonly children: number }>();
	/** Whether the call started threads or processes (then they, and the tree, are read too). */
	#spawned = false;
	/** The threads that were there before the call (V8's helpers, the parent watcher), as this reader listed them. */
	readonly #background = new Set<number>();
	/** Each counted thread's last reading; what counted threads that ended had used. */
	readonly #last = new Map<number, number>();
	#ended = 0;
	#mainBase = 0;
	#reapedBase = 0;
	/** The call's CPU time as last read: a reading never goes back. */
	#total = 0;
	#tree: number[] = [];
	#treeAt = Number.NEGATIVE_INFINITY;
	#tids: number[] = [];
	#tidsAt = Number.NEGATIVE_INFINITY;
	/** What the processes already there when the call started its own had used then (none, in a pool process). */
	#descendantBase = new Map<number, number>();

	constructor(pid: number) {
		this.pid = pid;
		this.#stat = tryOpen(`/proc/${pid}/stat`);
		this.#statm = tryOpen(`/proc/${pid}/statm`);
		this.#mainChildren = tryOpen(`/proc/${pid}/task/${pid}/children`);
		this.baseline();
	}

	/**
	 * Lists the process's threads now as its background: those no call owns. During a call (once
	 * its process registered a loader, before the call's own code ran) a thread already counted
	 * for the call stops counting.
	 */
	baseline(): void {
		this.#stale = false;
		this.#tidsAt = Number.NEGATIVE_INFINITY;
		const tids = this.#refresh();
		this.#background.clear();
		for (const tid of tids) {
			if (tid !== this.pid) {
				this.#background.add(tid);
				this.#last.delete(tid);
			}
		}
		this.#baseThreads = tids.length;
	}

	/**
	 * A call is over and the process takes the next: its background is listed again once the
	 * event loop is free (off the path of the call's result), or when the next call begins,
	 * whichever comes first.
	 */
	rebaseline(): void {
		if (!this.#stale) {
			this.#stale = true;
			setImmediate(() => {
				if (this.#stale && this.#stat >= 0) {
					this.baseline();
				}
			});
		}
	}

	/** Starts counting a call's CPU time from now (see `callCpuNs`). */
	beginCall(): void {
		if (this.#stale) {
			this.baseline();
		}
		this.#spawned = false;
		this.#last.clear();
		this.#ended = 0;
		this.#total = 0;
		this.#mainBase = Math.max(0, this.#threadNs(this.pid));
		this.#reapedBase = readStatCpu(this.#stat).children;
		this.#descendantBase.clear();
	}

	/**
	 * The call started a thread or a process (or said it would): from now on the threads not in
	 * the background, and the processes it started, count too. Returns whether this is news.
	 */
	spawned(): boolean {
		if (this.#spawned) {
			return false;
		}
		this.#spawned = true;
		this.#treeAt = Number.NEGATIVE_INFINITY;
		this.#descendantBase = new Map(this.descendants().map((pid) => [pid, processCpuNs(pid)]));
		return true;
	}

	/**
	 * The CPU time in nanoseconds a call has spent since `beginCall()`: that of the process's main
	 * thread, of the children it waited for, and, once it started threads or processes (see
	 * `spawned`), of those threads (those that ended count with what they had used when last read)
	 * and of its live descendant processes. V8's helper threads, there before the call, are not
	 * counted. A call that started threads or processes without saying so is noticed here, from
	 * the process's thread count and its main thread's children (then `onSpawned` is called,
	 * after this reading). -1 when the process cannot be read.
	 */
	callCpuNs(): number {
		const main = this.#threadNs(this.pid);
		if (main < 0) {
			return -1;
		}
		const stat = readStatCpu(this.#stat);
		let total = main - this.#mainBase + Math.max(0, stat.children - this.#reapedBase);
		if (!this.#spawned && (stat.threads > this.#baseThreads || readPids(this.#mainChildren).length > 0) && this.spawned()) {
			// Told after this reading, so that the check that made it reads closely from now on.
			const notify = this.onSpawned;
			if (notify !== undefined) {
				queueMicrotask(notify);
			}
		}
		if (this.#spawned) {
			const alive = this.#refresh();
			for (const tid of alive) {
				if (tid !== this.pid && !this.#background.has(tid)) {
					const ns = Math.max(0, this.#threadNs(tid));
					this.#last.set(tid, ns);
					total += ns;
				}
			}
			for (const [tid, ns] of this.#last) {
				if (!alive.includes(tid)) {
					this.#ended += ns;
					this.#last.delete(tid);
				}
			}
			total += this.#ended;
			for (const pid of this.descendants()) {
				total += Math.max(0, processCpuNs(pid) - (this.#descendantBase.get(pid) ?? 0));
			}
		}
		this.#total = Math.max(this.#total, total);
		return this.#total;
	}

	/** Resident memory of the process and, once the call started processes, of its descendants, in bytes. */
	rssBytes(): number {
		const own = readStatm(this.#statm);
		if (own < 0) {
			return -1;
		}
		let total = own;
		if (this.#spawned) {
			for (const pid of this.descendants()) {
				total += Math.max(0, statmOf(pid));
			}
		}
		return total;
	}

	/** The call's own figures add nothing to what is read here. */
	ended(): void {}

	/** The highest reading is kept by the checks that read it. */
	peakRssBytes(): number {
		return 0;
	}

	/** Whether the current call started threads or processes. */
	get spawnedAny(): boolean {
		return this.#spawned;
	}

	/** Whether threads the current call started were still running at the last reading. */
	get callThreadsAlive(): boolean {
		return this.#last.size > 0;
	}

	/** The processes the process started, and theirs, to any depth (one reading serves for a moment). */
	descendants(): number[] {
		if (performance.now() - this.#treeAt > TREE_REUSE_MS) {
			this.#refresh();
			const children: number[] = [];
			for (const { children: fd } of this.#tasks.values()) {
				children.push(...readPids(fd));
			}
			this.#tree = children.length === 0 ? children : [...children, ...children.flatMap((pid) => descendants(pid))];
			this.#treeAt = performance.now();
		}
		return this.#tree;
	}

	/**
	 * Lists the process's threads, opening the files of new ones and closing those of threads gone
	 * (one listing serves for a moment).
	 */
	#refresh(): number[] {
		if (performance.now() - this.#tidsAt <= TREE_REUSE_MS) {
			return this.#tids;
		}
		let tids: number[];
		try {
			tids = readdirSync(`/proc/${this.pid}/task`).map(Number);
		} catch {
			return [];
		}
		this.#tids = tids;
		this.#tidsAt = performance.now();
		for (const tid of tids) {
			if (!this.#tasks.has(tid)) {
				this.#tasks.set(tid, { schedstat: tryOpen(`/proc/${this.pid}/task/${tid}/schedstat`), children: tryOpen(`/proc/${this.pid}/task/${tid}/children`) });
			}
		}
		if (this.#tasks.size > tids.length) {
			for (const [tid, files] of this.#tasks) {
				if (!tids.includes(tid)) {
					closeQuietly(files.schedstat);
					closeQuietly(files.children);
					this.#tasks.delete(tid);
				}
			}
		}
		return tids;
	}

	/** A thread's own CPU counter, in ns (-1 when it cannot be read). */
	#threadNs(tid: number): number {
		let files = this.#tasks.get(tid);
		if (files === undefined) {
			this.#refresh();
			files = this.#tasks.get(tid);
		}
		return files === undefined || files.schedstat < 0 ? -1 : readSchedstat(files.schedstat);
	}

	close(): void {
		for (const fd of [this.#stat, this.#statm, this.#mainChildren, ...[...this.#tasks.values()].flatMap((files) => [files.schedstat, files.children])]) {
			closeQuietly(fd);
		}
		this.#tasks.clear();
		this.#stat = -1;
		this.#statm = -1;
		this.#mainChildren = -1;
		this.#stale = false;
	}
}
