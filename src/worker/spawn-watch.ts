import { createRequire, syncBuiltinESMExports } from "node:module";
import { STARTED } from "../protocol/call-slots.ts";

/**
 * Calls `mark` whenever code in this thread starts a worker thread (`STARTED.worker`) or a child
 * process (`STARTED.process`), before it starts. A worker thread that a call starts is a thread of
 * its own, whose CPU time and memory the call's thread does not show; a child process may outlive
 * the call. Every way to start them (`new Worker`, `spawn`, `exec`, `execFile`, `fork` and the
 * synchronous ones) goes through what this wraps, for ES modules as well as CommonJS.
 */
/** The worker threads started here that are still running. */
const alive = new Set<object>();

/** How many worker threads started in this thread (since `watchSpawns`) are still running. */
export function workersAlive(): number {
	return alive.size;
}

export function watchSpawns(mark: (what: number) => void): void {
	const require = createRequire(import.meta.url);
	const threads = require("node:worker_threads") as typeof import("node:worker_threads");
	const NativeWorker = threads.Worker;
	threads.Worker = class Worker extends NativeWorker {
		constructor(...args: ConstructorParameters<typeof NativeWorker>) {
			mark(STARTED.worker);
			super(...args);
			alive.add(this);
			this.once("exit", () => alive.delete(this));
		}
	};
	const childProcess = require("node:child_process") as typeof import("node:child_process") & Record<string, unknown>;
	const prototype = childProcess.ChildProcess.prototype as unknown as { spawn(...args: unknown[]): unknown };
	const spawn = prototype.spawn;
	prototype.spawn = function (this: unknown, ...args: unknown[]) {
		mark(STARTED.process);
		return spawn.apply(this, args);
	};
	// The synchronous ones block the thread while their process runs, and call each other internally.
	for (const name of ["spawnSync", "execSync", "execFileSync"]) {
		const run = childProcess[name] as (...args: unknown[]) => unknown;
		childProcess[name] = function (this: unknown, ...args: unknown[]) {
			mark(STARTED.process);
			return run.apply(this, args);
		};
	}
	syncBuiltinESMExports();
}
