// The benchmark measures byop as it ships: the JavaScript that `npm run build` writes to dist/
// (`npm run bench` builds it first), not the sources run through tsx. The types are the
// sources', which dist/ is built from.
import type * as Index from "../../src/index.ts";
import type * as Pynisher from "../../src/pynisher/index.ts";
import type * as Hooks from "../../src/test-hooks.ts";

const dist = new URL("../../dist/src/", import.meta.url);
const index = (await import(new URL("index.js", dist).href)) as typeof Index;
const pynisher = (await import(new URL("pynisher/index.js", dist).href)) as typeof Pynisher;
const { viewOf } = (await import(new URL("test-hooks.js", dist).href)) as typeof Hooks;

export const { CommPlugin, Scheduler, Task } = index;
export type Scheduler = Index.Scheduler;
export type Task<Args extends unknown[] = unknown[], R = unknown> = Index.Task<Args, R>;
export type Future<R = unknown> = Index.Future<R>;
export type Plugin = Index.Plugin;

export const { CpuTimeLimitError, LimitExceededError, MemoryLimitError, PynisherPlugin, WallTimeLimitError } = pynisher;
export type CpuTimeLimitError = Pynisher.CpuTimeLimitError;
export type LimitExceededError = Pynisher.LimitExceededError;
export type MemoryLimitError = Pynisher.MemoryLimitError;
export type PynisherPlugin = Pynisher.PynisherPlugin;
export type PynisherOptions = Pynisher.PynisherOptions;
export type WallTimeLimitError = Pynisher.WallTimeLimitError;

function part(scheduler: Scheduler, name: string): object | undefined {
	const dispatcher = viewOf<object>(scheduler, "dispatcher");
	return dispatcher === undefined ? undefined : viewOf<object>(dispatcher, name);
}

/** How many times the scheduler's watchdog has fired so far. */
export function watchdogTicks(scheduler: Scheduler): number {
	const watchdog = part(scheduler, "watchdog");
	return (watchdog === undefined ? undefined : viewOf<{ ticks: number }>(watchdog, "state"))?.ticks ?? 0;
}

/** Starts the scheduler's idle pool processes again, if it has a process pool. */
export function warmProcesses(scheduler: Scheduler): void {
	(part(scheduler, "processes") as { warm(): void } | undefined)?.warm();
}

/** The ids of the scheduler's live pool processes, if it has a process pool. */
export function processIds(scheduler: Scheduler): number[] {
	const processes = part(scheduler, "processes");
	return (processes === undefined ? undefined : viewOf<number[]>(processes, "pids")) ?? [];
}
