import type { Readable } from "node:stream";
import type { CallStats } from "../../protocol/messages.ts";
import type { UsageReader } from "./usage-reader.ts";

/**
 * How long a call sent with limits to watch may go without a reading before its process is taken
 * to have stopped reporting (its watcher reads at least once a second), in ms.
 */
export const STALE_MS = 10_000;
/** The longest line a watcher writes (six fields of numbers and a token), with room to spare. */
const MAX_LINE = 256;

/**
 * The portable path's reader of a pool process (no `/proc`): the process's watcher thread reads
 * its CPU time and resident memory while a limited call runs, however busy the call keeps its
 * main thread, and writes them on a pipe of their own (see `worker/process-watcher.ts`). A reading
 * that passed a limit is written at once, and acted on at once (`onOver`).
 *
 * What is read is the whole process: every thread's CPU time (V8's helpers and the watcher
 * included), its own resident memory. Processes the call starts are not reached: neither counted
 * nor listed. A line without the process's token, or of another shape, is a violation of the
 * protocol (the task wrote it), as is a call sent with limits that goes `STALE_MS` without a reading.
 */
export class ReportReader implements UsageReader {
	onSpawned: (() => void) | undefined;
	onOver: (() => void) | undefined;
	/** Called once the watcher's first line has come: it reads the process from then on. */
	onStart: (() => void) | undefined;
	readonly #token: string;
	readonly #violation: (what: string) => void;
	#pending = "";
	#callId = -1;
	#watched = false;
	#cpuMs = -1;
	#rss = -1;
	#peak = 0;
	#lastAt = 0;
	#spawned = false;
	#startRss = -1;

	/**
	 * @param stream the pipe the watcher writes on.
	 * @param token what each of the watcher's lines begins with.
	 * @param violation called with what the process did, after "The process running the task".
	 */
	constructor(stream: Readable, token: string, violation: (what: string) => void) {
		this.#token = token;
		this.token = token;
		this.#violation = violation;
		stream.setEncoding("latin1");
		stream.on("data", (chunk: string) => this.#receive(chunk));
		stream.on("error", () => {});
	}

	/** What each of the watcher's lines begins with, which the parent sends the process once it is ready. */
	readonly token: string;

	/** The process's resident memory when its watcher started, in bytes (-1 before it said). */
	get startRss(): number {
		return this.#startRss;
	}

	#receive(chunk: string): void {
		const text = this.#pending + chunk;
		const lines = text.split("\n");
		this.#pending = lines.pop() ?? "";
		if (this.#pending.length > MAX_LINE) {
			this.#pending = "";
			this.#violation("wrote a line on its readings' channel that is no reading");
			return;
		}
		for (const line of lines) {
			if (!this.#take(line)) {
				this.#violation("wrote a line on its readings' channel that is no reading");
				return;
			}
		}
	}

	/** Takes one line; `false` when it is not a reading of the watcher's. */
	#take(line: string): boolean {
		const fields = line.split(" ");
		if (fields.length !== 6 || fields[0] !== this.#token) {
			return false;
		}
		const [id, cpu, rss, peak, over] = fields.slice(1).map(Number) as [number, number, number, number, number];
		if (!Number.isSafeInteger(id) || !(cpu >= -1) || !Number.isSafeInteger(rss) || rss < 0 || !Number.isSafeInteger(peak) || (over !== 0 && over !== 1)) {
			return false;
		}
		if (id === 0) {
			if (this.#startRss < 0) {
				this.#startRss = rss;
				this.#rss = Math.max(this.#rss, rss);
				this.onStart?.();
			}
			return true;
		}
		if (id !== this.#callId) {
			// A reading of an earlier call that came after its reply: the channels do not keep each other's order.
			return true;
		}
		this.#cpuMs = Math.max(this.#cpuMs, cpu, 0);
		this.#rss = rss;
		this.#peak = Math.max(this.#peak, peak, rss);
		this.#lastAt = performance.now();
		if (over === 1) {
			this.onOver?.();
		}
		return true;
	}

	baseline(): void {}

	rebaseline(): void {}

	beginCall(id: number, watched: boolean): void {
		this.#callId = id;
		this.#watched = watched;
		this.#cpuMs = -1;
		this.#peak = 0;
		this.#spawned = false;
		this.#lastAt = performance.now();
	}

	ended(stats: CallStats): void {
		this.#watched = false;
		this.#callId = -1;
		this.#cpuMs = Math.max(this.#cpuMs, stats.cpuMs);
		// The process's own figure at the end: its resident memory then, or its heap's peak if higher.
		this.#rss = stats.peakMemoryBytes;
	}

	spawned(): boolean {
		if (this.#spawned) {
			return false;
		}
		this.#spawned = true;
		return true;
	}

	callCpuNs(): number {
		if (this.#watched && performance.now() - this.#lastAt > STALE_MS) {
			this.#watched = false;
			this.#violation(`gave no reading of what its call uses for ${STALE_MS / 1000} s`);
			return -1;
		}
		return this.#cpuMs < 0 ? -1 : this.#cpuMs * 1e6;
	}

	rssBytes(): number {
		return this.#rss;
	}

	peakRssBytes(): number {
		return this.#peak;
	}

	get spawnedAny(): boolean {
		return this.#spawned;
	}

	/** What the call started cannot be listed here: once it started any, they are taken to run on. */
	get callThreadsAlive(): boolean {
		return this.#spawned;
	}

	descendants(): number[] {
		return [];
	}

	close(): void {
		this.#watched = false;
	}
}
