// The pools byop is compared with, behind one small interface. Their workers are plain .mjs files:
// a worker thread of these pools gets no TypeScript loader.
import { Piscina } from "piscina";
import { Tinypool } from "tinypool";
import workerpool from "workerpool";
import { withTimeout } from "./harness.ts";

/** A started pool of 2 threads that runs the no-op `(a, b) => a + b`. */
export interface Peer {
	add(a: number, b: number): Promise<unknown>;
	close(): Promise<void>;
}

export type PeerName = "piscina" | "tinypool" | "workerpool";

const worker = new URL("./peer-worker.mjs", import.meta.url).href;
const workerpoolWorker = new URL("./peer-workerpool.mjs", import.meta.url);

export function startPeer(name: PeerName): Peer {
	if (name === "piscina") {
		const pool = new Piscina<{ a: number; b: number }, number>({ filename: worker, minThreads: 2, maxThreads: 2 });
		return { add: (a, b) => pool.run({ a, b }), close: () => pool.destroy() };
	}
	if (name === "tinypool") {
		const pool = new Tinypool({ filename: worker, minThreads: 2, maxThreads: 2 });
		return { add: (a, b) => pool.run({ a, b }), close: () => pool.destroy() };
	}
	const pool = workerpool.pool(workerpoolWorker.pathname, { minWorkers: 2, maxWorkers: 2, workerType: "thread" });
	return {
		add: (a, b) => pool.exec("add", [a, b]),
		close: async () => {
			await pool.terminate();
		},
	};
}

/** Runs `count` no-op calls at once and resolves when all have ended; returns the milliseconds. */
export async function peerBurst(peer: Peer, count: number): Promise<number> {
	const calls: Promise<unknown>[] = new Array(count);
	const start = performance.now();
	for (let i = 0; i < count; i++) {
		calls[i] = peer.add(i, 1);
	}
	await withTimeout(Promise.all(calls), 120_000, `${count} calls`);
	return performance.now() - start;
}
