/** Which limit an error or event is about. */
export type LimitKind = "wall" | "cpu" | "memory";

/** What `memoryLimit` caps. */
export type MemoryKind = "heap" | "rss" | "auto";

/** The limits of one call, in milliseconds and bytes, as `PynisherPlugin` parsed them. */
export interface Limits {
	readonly wallMs: number | undefined;
	readonly cpuMs: number | undefined;
	readonly memoryBytes: number | undefined;
	readonly memoryKind: MemoryKind;
	/** How long a call that is being stopped gets to end on its own. */
	readonly graceMs: number;
	/** Whether an `"auto"` call may be re-run in a process when its memory outside the heap passes the limit. */
	readonly escalate: boolean;
	/** How often CPU time and memory are sampled. */
	readonly sampleMs: number;
}
