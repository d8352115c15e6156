import { getHeapStatistics as nativeHeapStatistics } from "node:v8";

/**
 * The builtins that measure and mark calls where they run, taken when the worker's modules load,
 * before any job's module does. A task shares its thread's globals: one that replaces
 * `performance.now`, `Atomics.compareExchange` or `setInterval` changes them for every later
 * call in its thread, but not these copies, so that what the worker records of later calls, and
 * so their limits, stay true.
 */

const { load, store, compareExchange, notify } = Atomics;
/** `Atomics` operations on the call slots. */
export const atomics = { load, store, compareExchange, notify } as const;

const performanceNow = performance.now.bind(performance);
/** `performance.now()`. */
export const now: () => number = performanceNow;

const hrtimeBigint = process.hrtime.bigint.bind(process.hrtime);
/**
 * The process's monotonic clock in milliseconds (`process.hrtime`): the same in every thread of
 * the process, unlike `performance.now()`, which counts from each thread's own start.
 */
export function monotonicMs(): number {
	return Number(hrtimeBigint()) / 1e6;
}

export const { min, max } = Math;
export const { isFinite } = Number;

/** `setInterval`, `clearInterval`, `setTimeout` and `clearTimeout`. */
export const timers = {
	setInterval: globalThis.setInterval,
	clearInterval: globalThis.clearInterval,
	setTimeout: globalThis.setTimeout,
	clearTimeout: globalThis.clearTimeout,
} as const;

/** `process.nextTick`. */
export const nextTick = process.nextTick.bind(process);

/** `process.threadCpuUsage()`, where Node has it. */
export const threadCpuUsage = (process as { threadCpuUsage?: () => NodeJS.CpuUsage }).threadCpuUsage?.bind(process);

/** `process.cpuUsage()`. */
export const cpuUsage = process.cpuUsage.bind(process);

/** `process.getActiveResourcesInfo()`. */
export const activeResources = process.getActiveResourcesInfo.bind(process);

/** `v8.getHeapStatistics()`. */
export const getHeapStatistics: typeof nativeHeapStatistics = nativeHeapStatistics;

/** `Reflect.construct`. */
export const { construct } = Reflect;
