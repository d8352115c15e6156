/**
 * The longest delay `setTimeout` takes, in milliseconds (2^31 − 1, about 24.8 days). Node fires a
 * longer one after 1 ms, with a `TimeoutOverflowWarning`.
 */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** Options of `setLongTimeout`. */
export interface LongTimeoutOptions {
	/** Whether the timer keeps the process alive. @default true */
	readonly ref?: boolean;
	/** The longest single timer of the chain, in milliseconds (tests use a short one). @default MAX_TIMEOUT_MS */
	readonly stepMs?: number;
}

/** A timer of `setLongTimeout`: a plain timer, or a chain of them for a delay longer than one can wait. */
export type LongTimeout = NodeJS.Timeout | TimerChain;

/** A delay longer than one timer can wait, waited in steps: each step arms the next until the whole delay has passed. */
class TimerChain {
	#timer: NodeJS.Timeout | undefined;
	readonly #fn: () => void;
	readonly #ref: boolean;
	readonly #stepMs: number;

	constructor(fn: () => void, ms: number, ref: boolean, stepMs: number) {
		this.#fn = fn;
		this.#ref = ref;
		this.#stepMs = stepMs;
		this.#arm(ms);
	}

	#arm(leftMs: number): void {
		const waitMs = Math.min(leftMs, this.#stepMs);
		this.#timer = setTimeout(() => {
			if (leftMs > waitMs) {
				this.#arm(leftMs - waitMs);
			} else {
				this.#timer = undefined;
				this.#fn();
			}
		}, waitMs);
		if (!this.#ref) {
			this.#timer.unref();
		}
	}

	clear(): void {
		clearTimeout(this.#timer);
		this.#timer = undefined;
	}
}

/**
 * Calls `fn` after `ms` milliseconds, however long that is: a delay that one `setTimeout` cannot
 * wait (`MAX_TIMEOUT_MS` or more, such as a limit of `[720, "h"]`) is waited in a chain of timers.
 * A delay within one timer costs what `setTimeout` costs. Clear it with `clearLongTimeout`.
 */
export function setLongTimeout(fn: () => void, ms: number, options: LongTimeoutOptions = {}): LongTimeout {
	const { ref = true, stepMs = MAX_TIMEOUT_MS } = options;
	const step = Math.max(1, Math.min(MAX_TIMEOUT_MS, stepMs));
	if (ms > step) {
		return new TimerChain(fn, ms, ref, step);
	}
	const timer = setTimeout(fn, ms);
	if (!ref) {
		timer.unref();
	}
	return timer;
}

/** Clears a timer of `setLongTimeout` (nothing for `undefined` or one that has fired). */
export function clearLongTimeout(timer: LongTimeout | undefined): void {
	if (timer instanceof TimerChain) {
		timer.clear();
	} else {
		clearTimeout(timer);
	}
}
