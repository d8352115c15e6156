// The demo's workload: ordinary jobs, and jobs that run away with time or memory.
import { execFile } from "node:child_process";
import { comm, taskSignal } from "../worker.ts";

/** Tells the main side how far the call has come (the demo gives every task a `CommPlugin`). */
function progress(text: string): void {
	void comm.send({ progress: text });
}

/** Counts the primes below `limit` (a real, CPU-bound job). */
export function countPrimes(limit: number): number {
	const sieve = new Uint8Array(limit);
	let count = 0;
	const step = Math.ceil(limit / 4);
	for (let i = 2; i < limit; i++) {
		if (i % step === 0) {
			progress(`${Math.round((100 * i) / limit)}% sieved, ${count} primes`);
		}
		if (sieve[i] === 0) {
			count++;
			for (let j = i * i; j < limit; j += i) {
				sieve[j] = 1;
			}
		}
	}
	return count;
}

/** Looks `key` up in a "remote service" that answers after `ms` milliseconds (waiting, not CPU). */
export async function slowLookup(key: string, ms: number): Promise<string> {
	await new Promise((resolve) => setTimeout(resolve, ms));
	return `${key}: ok`;
}

/** Parses a configuration file's text: malformed text throws an ordinary `SyntaxError`. */
export function parseConfig(text: string): unknown {
	return JSON.parse(text);
}

/** A search that never converges: it spins until its CPU limit stops it. */
export function runawaySearch(): number {
	let x = 0;
	for (let tried = 1; ; tried++) {
		x = (x * 1_103_515_245 + 12_345) % 2_147_483_648;
		if (tried % 4_000_000 === 0) {
			progress(`${tried / 1_000_000}M candidates, none converged`);
		}
	}
}

/** Waits on a "remote service" that never answers; when its signal aborts it gives up at once, cleaning up. */
export async function stuckDownload(url: string): Promise<string> {
	const signal = taskSignal();
	progress(`waiting for ${url}`);
	await new Promise((resolve, reject) => {
		const timer = setTimeout(resolve, 60_000);
		const giveUp = () => {
			clearTimeout(timer);
			reject(signal.reason);
		};
		if (signal.aborted) {
			giveUp();
		}
		signal.addEventListener("abort", giveUp, { once: true });
	});
	return `downloaded ${url}`;
}

/** Builds an ever-growing in-memory index of 8 MB blocks: V8 heap growth. */
export function leakyIndex(): number {
	const index: number[][] = [];
	for (;;) {
		index.push(new Array<number>(1_000_000).fill(1.5));
	}
}

/**
 * Loads `mb` megabytes of "images" into Buffers (memory outside the V8 heap) and holds them for
 * `holdMs` milliseconds, awaiting between images as a real loader reading files would.
 */
export async function loadImages(mb: number, holdMs = 200): Promise<number> {
	const images: Buffer[] = [];
	for (let i = 0; i < mb; i++) {
		images.push(Buffer.alloc(1024 * 1024, i));
		if (i % 64 === 63) {
			progress(`${i + 1} of ${mb} MB loaded`);
		}
		if (i % 16 === 15) {
			await new Promise((resolve) => setImmediate(resolve));
		}
	}
	await new Promise((resolve) => setTimeout(resolve, holdMs));
	return images.length;
}

/**
 * Decodes a "video" of `mb` megabytes of frames into Buffers (memory outside the V8 heap),
 * awaiting between frames as a streaming decoder would, and hands them on.
 */
export async function decodeVideo(mb: number): Promise<number> {
	const frames: Buffer[] = [];
	for (let i = 0; i < mb; i++) {
		frames.push(Buffer.alloc(1024 * 1024, i));
		if (i % 32 === 31) {
			progress(`${i + 1} of ${mb} MB decoded`);
		}
		await new Promise((resolve) => setImmediate(resolve));
	}
	await new Promise((resolve) => setTimeout(resolve, 200));
	return frames.length;
}

/** Archives `files` log files with a helper program: a child process of its own. */
export async function archiveLogs(files: number): Promise<string> {
	await new Promise<void>((resolve, reject) => execFile("true", (error) => (error ? reject(error) : resolve())));
	return `${files} files archived`;
}

