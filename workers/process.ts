// The entry of each forked process of a byop process pool: one call at a time, sent over IPC.
// Limits are enforced by the parent, which kills this process's whole group.
import type { ChildMessage, ParentMessage, ProcessCallPayload } from "../src/protocol/messages.ts";
import { deserializeError, serializeError } from "../src/serialize.ts";
import { ProcessClock } from "../src/worker/clocks.ts";
import { TaskComm } from "../src/worker/comm.ts";
import { RunningCalls } from "../src/worker/context.ts";
import { type CallSite, runCall } from "../src/worker/run-call.ts";
import { MEMORY_GROWTH_BYTES_PER_MS, CORES } from "../src/limits/watchdog.ts";
import { ProcessWatcher } from "../src/worker/process-watcher.ts";
import { watchSpawns } from "../src/worker/spawn-watch.ts";
import { loadersRegistered } from "../src/worker/tsx-hooks.ts";

// What the protocol uses of `process`, taken before any job module loads: a task may replace
// them (`process.send = ...`), and what it replaces must not reach another call's reply.
type Send = (message: unknown, handle?: undefined, options?: object, callback?: (error: Error | null) => void) => boolean;
const ipc = process as unknown as { send: Send | undefined; _send: unknown; emit: unknown };
const sendOnChannel = ipc.send?.bind(process);
const original = { send: ipc.send, _send: ipc._send, emit: ipc.emit };
const exit = process.exit.bind(process);
const chdir = process.chdir.bind(process);
const cwd = process.cwd.bind(process);
const rss = process.memoryUsage.rss;
const schedule = setTimeout;
/** The working directory each call starts in. */
const startDir = cwd();

// The parent names itself: if it died while this process was starting, process.ppid is already
// another process (init), and comparing against it would never notice.
const parentPid = Number(process.env["BYOP_PARENT_PID"]) || process.ppid;
if (process.ppid !== parentPid || !process.connected) {
	process.exit(0);
}

// The main thread may be stuck in a task's synchronous loop; a thread of its own notices when
// the parent is gone and kills this process group, so no orphan goes on running a task. Where the
// parent cannot read this process from /proc, it sends a token, and that thread also reads what
// each limited call uses and reports it to the parent with the token, which no task sees.
const watcher = new ProcessWatcher(parentPid, MEMORY_GROWTH_BYTES_PER_MS * CORES, CORES);

const calls = new RunningCalls();

/** The running call's comm channel, when its task has a `CommPlugin`, with the call's id. */
let channel: { readonly id: number; readonly comm: TaskComm } | undefined;

// A thread or process that a call starts is read closely by the parent from then on, so that one
// that starts and ends between two of its readings is still seen.
let spawnedInCall = false;
watchSpawns(() => {
	if (calls.size > 0 && !spawnedInCall) {
		spawnedInCall = true;
		send({ type: "spawned" });
	}
});

// A TypeScript loader (tsx) the parent runs under: registered when a call first needs it.
const loaders = (process.env["BYOP_LOADERS"] ?? "").split("\n").filter((loader) => loader !== "");
delete process.env["BYOP_LOADERS"];

/** Whether the parent was told that the TypeScript loader is registered (see `underLoad`). */
let announced = false;

/** This process's resident memory once the current call had loaded its job's module, when it loaded one. */
let loadedRss: number | undefined;

/** The running call's id and the limits its watcher reads it against (on the portable path). */
let watched: { readonly id: number; readonly watch: ProcessCallPayload["watch"] } | undefined;

const site: CallSite = {
	loaders,
	clock: new ProcessClock(),
	loaded: () => {
		loadedRss = rss();
	},
	// The loader is registered before any of the call's code runs: the thread it starts is not
	// the call's, which the parent learns before the call could send anything itself.
	underLoad: (load) =>
		load().then(
			() => {
				if (!announced && loadersRegistered()) {
					announced = true;
					send({ type: "registered" });
				}
				return undefined;
			},
			(error: unknown) => ({ ok: false as const, error }),
		),
	begin: (startCpu) => {
		if (watched?.watch !== undefined && startCpu >= 0) {
			watcher.begin({ id: watched.id, baseMs: startCpu / 1e6, ...watched.watch });
		}
		return true;
	},
};

// Output goes to the parent through pipes. Blocking writes complete before a call replies, so
// nothing a task printed is lost when the process is stopped after it.
for (const stream of [process.stdout, process.stderr]) {
	(stream as unknown as { _handle: { setBlocking(blocking: boolean): void } })._handle.setBlocking(true);
}

function send(message: ChildMessage, callback?: (error: Error | null) => void): void {
	sendOnChannel?.(message, undefined, {}, callback);
}

/**
 * Puts back what a call replaced of the protocol's tools on `process` (its `send`, the internal
 * `_send` that `send` goes through, `emit`, which delivers the parent's messages) and tells
 * whether it had replaced any, or listens to the parent's messages itself: a process a call
 * tampered with that way is replaced, so that no later call's messages pass through the task's code.
 */
function restoreTools(): boolean {
	let tampered = process.listenerCount("message") !== 1;
	for (const key of ["send", "_send", "emit"] as const) {
		if (ipc[key] !== original[key]) {
			tampered = true;
			try {
				Object.defineProperty(process, key, { value: original[key], writable: true, configurable: true, enumerable: false });
			} catch {
				// Made unconfigurable: the process is replaced anyway.
			}
		}
	}
	return tampered;
}

let dying = false;

function fatal(error: unknown): void {
	if (calls.size === 0) {
		// Nothing runs: a leftover of an earlier call (a timer, a rejected promise) failed. No call
		// is blamed; the parent retires this process once it is idle, and a call already on its way
		// here still runs.
		send({ type: "retire", error: serializeError(error) });
		return;
	}
	if (dying) {
		return;
	}
	// The running call fails with this error: its own reply is never sent, so the outcome does not
	// depend on whether the reply or the exit reaches the parent first. The process is replaced.
	dying = true;
	process.exitCode = 70;
	try {
		send({ type: "fatal", error: serializeError(error) }, () => exit(70));
	} catch {
		exit(70);
	}
	schedule(() => exit(70), 1000).unref();
}

process.on("uncaughtException", fatal);
process.on("unhandledRejection", fatal);
process.on("disconnect", () => exit(0));

process.on("message", (message: ParentMessage) => {
	if (message.type === "watch") {
		watcher.report(message.token);
		return;
	}
	if (message.type === "abort") {
		calls.abort(message.abort, deserializeError(message.reason));
		return;
	}
	if (message.type === "comm") {
		if (channel?.id === message.id) {
			channel.comm.receive(message.comm);
		}
		return;
	}
	void runProcessCall(message.payload);
});

async function runProcessCall(payload: ProcessCallPayload): Promise<void> {
	loadedRss = undefined;
	spawnedInCall = false;
	// The call's token stays here, out of the task's reach: only this reply and the call's comm
	// messages carry it back.
	const { token, comm: hasComm, watch, ...call } = payload;
	const comm = hasComm === true ? new TaskComm((message) => send({ type: "comm", id: call.id, token, comm: message })) : undefined;
	channel = comm === undefined ? undefined : { id: call.id, comm };
	// Each call starts where the process started, wherever the last one went.
	try {
		if (cwd() !== startDir) {
			chdir(startDir);
		}
	} catch {
		// The directory is gone: the call runs where it is.
	}
	watched = { id: call.id, watch };
	const ran = await runCall(call, site, calls, comm).catch((error: unknown) => ({
		result: { ok: false as const, error },
		wallMs: 0,
		cpuMs: 0,
		peakMemoryBytes: 0,
		externalGrowth: 0,
		leftWork: false,
	}));
	watcher.end();
	watched = undefined;
	comm?.close();
	channel = undefined;
	if (dying || ran === undefined) {
		return;
	}
	const { result } = ran;
	const stats = { wallMs: ran.wallMs, cpuMs: ran.cpuMs, peakMemoryBytes: Math.max(ran.peakMemoryBytes, rss()) };
	const leftWork = restoreTools() || ran.leftWork;
	const reply = result.ok
		? { id: call.id, token, ok: true as const, value: result.value, stats, leftWork, loadedRss }
		: { id: call.id, token, ok: false as const, error: serializeError(result.error), stats, leftWork, loadedRss };
	try {
		send({ type: "reply", reply });
	} catch (error) {
		send({ type: "reply", reply: { id: call.id, token, ok: false, error: serializeError(cloneFailure(error)), stats, leftWork } });
	}
}

function cloneFailure(error: unknown): Error {
	const failure = new Error(`The task's result could not be copied to the parent process: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
	failure.name = "DataCloneError";
	return failure;
}

// The watcher starts on a thread of its own even while this thread is busy in a task (about
// 40 ms here): calls are taken at once (without /proc, once the watcher reads them).
send({ type: "ready" });
watcher.onError((error) => {
	process.stderr.write(`byop: the parent watcher of process ${process.pid} failed: ${error.message}\n`);
	process.exit(71);
});
