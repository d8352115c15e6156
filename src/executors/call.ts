import { CancelledError } from "../errors.ts";
import type { Usage, Where } from "../future.ts";
import { CallMonitor, type Probe, type Watchers } from "../limits/monitor.ts";
import { Escalation } from "../limits/off-heap.ts";
import { Stopper, type StopReason } from "../limits/stopper.ts";
import type { Execution, Settled } from "./executor.ts";

/** How a call ended where it ran, as its adapter saw it (before limits and stops are counted). */
export type Ending =
	| { readonly kind: "result"; readonly value: unknown; readonly usage: Usage }
	| { readonly kind: "exception"; readonly error: unknown; readonly usage: Usage };

/**
 * What an executor does for one call: send it, tell it to stop, end it, and read what it uses
 * (the `Probe`). The call lifecycle (`runCall`) does everything else, the same on every executor.
 */
export interface CallAdapter extends Probe {
	readonly where: Where;
	/** Resolves once the call can be sent (its process has started); rejects when it cannot be. */
	ready?(): Promise<void>;
	/** Sends the call and resolves with how it ended where it ran. Never rejects. */
	run(): Promise<Ending>;
	/** Tells the running call that it is being stopped: its signal aborts, its grace period begins. */
	notify(reason: StopReason): void;
	/** Ends the call for good: terminates its thread, kills its process. */
	kill(reason: StopReason): void;
	/** The call is over; `killed` when its thread or process was told to die, which is then never reused. */
	release(killed: boolean): void;
	/** Takes what it calls when the call starts something whose use must be read closely from then on. */
	watchClosely?(soon: () => void): void;
	/** Takes what it calls when where the call runs reports a reading past one of its limits: the limits are checked at once. */
	watchPushed?(checkNow: () => void): void;
}

/**
 * The one lifecycle of a call on any executor: watch its limits from its start, stop it (with
 * its grace period) on a limit or a cancel, check its limits once more with its final readings,
 * and sort its ending into result, exception, cancelled, or a move to a process.
 */
export async function runCall(execution: Execution, adapter: CallAdapter, watchers: Watchers): Promise<Settled> {
	const { call, cancellation } = execution;
	if (cancellation.reason !== undefined) {
		return { kind: "cancelled", error: cancellation.reason, usage: undefined };
	}
	const limits = call.limits;
	let killed = false;
	let cpuAtKill = -1;
	const stopper = new Stopper(
		limits?.graceMs ?? 0,
		(reason) => adapter.notify(reason),
		(reason) => {
			// Read just before the end, after which the thread or process cannot be read.
			cpuAtKill = adapter.cpuMs();
			killed = true;
			adapter.kill(reason);
		},
	);
	const monitor = limits === undefined ? undefined : new CallMonitor(limits, adapter, watchers, (reason, immediately) => stopper.stop(reason, immediately));
	if (monitor !== undefined) {
		adapter.watchClosely?.(() => monitor.closely());
		adapter.watchPushed?.(() => monitor.checkNow());
	}
	// A call that has not started where it runs is ended without a grace period.
	cancellation.listen((reason) => stopper.stop(reason, adapter.startedAt() === undefined));
	let ending: Ending | undefined;
	try {
		await adapter.ready?.();
	} catch (error) {
		stopper.stop(error instanceof Error ? error : new Error(String(error)), true);
	}
	if (stopper.reason === undefined) {
		// OPEN comes before anything the task sends, CLOSE after all of it and before its outcome.
		call.comm?.open();
		const running = adapter.run();
		monitor?.start();
		execution.started();
		try {
			ending = await running;
		} finally {
			call.comm?.close();
		}
	}
	cancellation.listen(undefined);
	const measured = ending?.usage ?? { wallMs: 0, cpuMs: -1, peakMemoryBytes: 0, where: adapter.where };
	const usage: Usage = {
		wallMs: measured.wallMs,
		cpuMs: measured.cpuMs >= 0 ? measured.cpuMs : cpuAtKill >= 0 ? cpuAtKill : (monitor?.cpuMs ?? -1),
		peakMemoryBytes: Math.max(measured.peakMemoryBytes, monitor?.peakRss ?? 0),
		where: measured.where,
	};
	// The limits are checked once more on what the call reports, so that no result reports usage past them.
	monitor?.finish(usage);
	stopper.dispose();
	adapter.release(killed);
	const reason = stopper.reason;
	// A cancel that came first wins over a move the call's ending asks for: a cancelled call does not run again.
	if (reason instanceof CancelledError) {
		return { kind: "cancelled", error: reason, usage };
	}
	// The call moves to a process: stopped for it, or refused where it was sent.
	const escalation = reason instanceof Escalation ? reason : ending?.kind === "exception" && ending.error instanceof Escalation ? ending.error : undefined;
	if (escalation !== undefined) {
		return { kind: "escalate", escalation, usage };
	}
	if (reason !== undefined || ending === undefined) {
		// A limit's error, or why the call could not be sent.
		return { kind: "exception", error: reason, usage };
	}
	return ending.kind === "result" ? { kind: "result", value: ending.value, usage } : { kind: "exception", error: ending.error, usage };
}
