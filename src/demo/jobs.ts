// The demo's workload: ordinary jobs, and jobs that run away with time or memory.
import { taskSignal } from "../worker.ts";

/** Counts the primes below `limit` (a real, CPU-bound job). */
export function countPrimes(limit: number): number {
	const sieve = new Uint8Array(limit);
	let count = 0;
	for (let i = 2; i < limit; i++) {
		if (sieve[i] === 0) {
			count++;
			for (let j = i * i; j < limit; j += i) {
				sieve[j] = 1;
			}
		}
	}
	return count;
}

/** A search that never converges: it spins until its CPU limit stops it. */
export function runawaySearch(): number {
	let x = 0;
	for (;;) {
		x = (x * 1_103_515_245 + 12_345) % 2_147_483_648;
	}
}

/** Waits on a "remote service" that never answers; it watches its signal to clean up. */
export async function stuckDownload(url: string): Promise<string> {
	const signal = taskSignal();
	await new Promise((resolve) => {
		const timer = setTimeout(resolve, 60_000);
		signal.addEventListener("abort", () => clearTimeout(timer), { once: true });
	});
	return `downloaded ${url}`;
}

/** Builds an ever-growing in-memory index: V8 heap growth. */
export function leakyIndex(): number {
	const index: number[][] = [];
	for (;;) {
		index.push(Array.from({ length: 50_000 }, (_, i) => i * 1.5));
	}
}

/** Loads `mb` megabytes of "images" into Buffers: memory outside the V8 heap. */
export async function loadImages(mb: number): Promise<number> {
	const images: Buffer[] = [];
	for (let i = 0; i < mb; i++) {
		images.push(Buffer.alloc(1024 * 1024, i));
	}
	await new Promise((resolve) => setTimeout(resolve, 1500));
	return images.length;
}
