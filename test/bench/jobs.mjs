// Job modules of the benchmark: each export is a task function that byop runs in a worker
// thread or a forked process. Plain JavaScript, like the peers' workers: byop is measured as it
// ships, with no TypeScript loader in its threads or processes.
import { getHeapStatistics } from "node:v8";

/** The no-op of the dispatch benchmarks. */
export function add(a, b) {
	return a + b;
}

export async function sleep(ms) {
	await new Promise((resolve) => setTimeout(resolve, ms));
	return ms;
}

/** Busy forever: only a limit ends it. */
export function spinForever() {
	for (;;) {
		// Spins.
	}
}

/**
 * Grows the V8 heap in small allocations until it is stopped, writing the heap in use (bytes)
 * into `shared[0]` (and the largest heap size seen into `shared[1]`) as it goes, so that the
 * main thread can read the last figure after the thread is gone.
 */
export function growHeap(shared) {
	const view = new Float64Array(shared);
	const hold = [];
	for (;;) {
		hold.push(new Array(10_000).fill(1.5));
		if (hold.length % 8 === 0) {
			const stats = getHeapStatistics();
			view[0] = stats.used_heap_size;
			view[1] = Math.max(view[1] ?? 0, stats.total_heap_size);
			view[2] = stats.heap_size_limit;
		}
	}
}

/**
 * Fills resident memory as fast as it can (8 MB Buffers, each filled page by page, so the
 * resident size grows smoothly) until it is stopped.
 */
export function allocate() {
	const hold = [];
	for (;;) {
		hold.push(Buffer.allocUnsafeSlow(8 * 1024 * 1024).fill(1));
	}
}

/** Fills `mb` megabytes the way `allocate` does and returns the rate, in megabytes per second. */
export function allocationRate(mb) {
	const hold = [];
	const start = performance.now();
	for (let filled = 0; filled < mb; filled += 8) {
		hold.push(Buffer.allocUnsafeSlow(8 * 1024 * 1024).fill(1));
	}
	return (hold.length * 8) / ((performance.now() - start) / 1000);
}

/** Holds `mb` megabytes of Buffers (outside the V8 heap) for `ms` milliseconds. */
export async function holdBuffers(mb, ms) {
	const hold = [];
	for (let i = 0; i < mb; i++) {
		hold.push(Buffer.alloc(1024 * 1024, 1));
	}
	await new Promise((resolve) => setTimeout(resolve, ms));
	return hold.length;
}

/** The resident memory of the process that runs it, in bytes. */
export function residentBytes() {
	return process.memoryUsage.rss();
}
