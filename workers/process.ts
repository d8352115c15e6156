// Runs inside each forked process of a byop process pool: one call at a time, sent over IPC.
// Limits are enforced by the parent, which kills this process's whole group.
import { Worker } from "node:worker_threads";
import { HeapSampler, invoke } from "../src/invoke.ts";
import type { ChildMessage, ParentMessage } from "../src/executors/process-protocol.ts";
import { deserializeError, serializeError } from "../src/serialize.ts";

const parentPid = process.ppid;

// The main thread may be stuck in a task's synchronous loop; a thread of its own notices when
// the parent is gone and kills this process group, so no orphan goes on running a task.
const watcher = new Worker(
	`const { workerData } = require("node:worker_threads");
	setInterval(() => {
		if (process.ppid !== workerData) {
			try { process.kill(-process.pid, "SIGKILL"); } catch {}
			process.kill(process.pid, "SIGKILL");
		}
	}, 200);`,
	{ eval: true, workerData: parentPid, execArgv: [], stdout: false, stderr: false },
);
watcher.unref();

const running = new Map<number, AbortController>();

function send(message: ChildMessage): void {
	process.send?.(message);
}

function fatal(error: unknown): void {
	// The parent turns this into the running call's error, then this process is replaced.
	send({ type: "fatal", error: serializeError(error) });
	process.exitCode = 70;
	setTimeout(() => process.exit(70), 20).unref();
}

process.on("uncaughtException", fatal);
process.on("unhandledRejection", fatal);
process.on("disconnect", () => process.exit(0));

process.on("message", (message: ParentMessage) => {
	if (message.type === "abort") {
		running.get(message.abort)?.abort(deserializeError(message.reason));
		return;
	}
	void runCall(message);
});

async function runCall(message: Extract<ParentMessage, { type: "call" }>): Promise<void> {
	const { payload } = message;
	const startCpu = process.cpuUsage();
	const started = performance.now();
	const sampler = new HeapSampler();
	const abort = new AbortController();
	running.set(payload.id, abort);
	const result = await invoke(payload.ref, payload.args, payload.id, abort.signal, sampler);
	running.delete(payload.id);
	const cpu = process.cpuUsage(startCpu);
	const stats = {
		wallMs: performance.now() - started,
		cpuMs: (cpu.user + cpu.system) / 1000,
		peakMemoryBytes: Math.max(sampler.stop(), process.memoryUsage.rss()),
	};
	const reply = result.ok ? { id: payload.id, ok: true as const, value: result.value, stats } : { id: payload.id, ok: false as const, error: serializeError(result.error), stats };
	try {
		send({ type: "reply", reply });
	} catch (error) {
		send({ type: "reply", reply: { id: payload.id, ok: false, error: serializeError(cloneFailure(error)), stats } });
	}
}

function cloneFailure(error: unknown): Error {
	const failure = new Error(`The task's result could not be copied to the parent process: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
	failure.name = "DataCloneError";
	return failure;
}

send({ type: "ready", pid: process.pid });
