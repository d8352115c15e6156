import type { CallStats } from "../../protocol/messages.ts";

/**
 * Reads what the call in a pool process uses, for its limits and its `usage`: from `/proc` by the
 * parent (`ProcReader`), or, on the portable path, from the readings the process's watcher thread
 * reports (`ReportReader`).
 */
export interface UsageReader {
	/** Called when a reading finds that the call started threads or processes it did not announce. */
	onSpawned: (() => void) | undefined;
	/** Called when a reading has passed one of the call's limits, so that it is acted on at once. */
	onOver: (() => void) | undefined;
	/** Lists what the process holds now as no call's (its threads). */
	baseline(): void;
	/** A call is over: the next one's background is listed again soon. */
	rebaseline(): void;
	/** Starts counting call `id` from now; `watched` when it was sent with limits for the process to read it against. */
	beginCall(id: number, watched: boolean): void;
	/** The call ended with these figures of its own. */
	ended(stats: CallStats): void;
	/** The call started a thread or a process; returns whether this is news. */
	spawned(): boolean;
	/** The call's CPU time since `beginCall`, in ns; -1 when it cannot be read. */
	callCpuNs(): number;
	/** The process's resident memory (and its children's, where they can be read), in bytes; -1 when unread. */
	rssBytes(): number;
	/** The most resident memory read during the call, between the checks too, in bytes (0: none). */
	peakRssBytes(): number;
	/** Whether the call started threads or processes. */
	readonly spawnedAny: boolean;
	/** Whether threads or processes the call started may still run after it (then the process is not reused). */
	readonly callThreadsAlive: boolean;
	/** The processes the process started, to any depth, where they can be listed. */
	descendants(): number[];
	close(): void;
}
