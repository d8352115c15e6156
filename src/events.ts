import mittImport, { type Emitter as Mitt } from "mitt";
import { describeExpected } from "./units.ts";

// mitt's types describe its CommonJS build; `import` loads its ES build, whose default export is the factory.
const mitt = mittImport as unknown as typeof mittImport.default;

declare const payload: unique symbol;

/**
 * The name of an event whose handlers receive `Args`. Event keys are plain strings at run time;
 * the type parameter lets `on()` check each handler against its event.
 */
export type EventKey<Args extends unknown[]> = string & { readonly [payload]: Args };

/** The handler arguments of an event key. */
export type ArgsOf<K> = K extends EventKey<infer Args> ? Args : never;

export type AnyEventKey = EventKey<any[]>;

/** A handler for an event whose payload is `Args`. It may return a promise; a rejection is reported like a throw. */
export type Handler<Args extends unknown[]> = (...args: Args) => unknown;

/** Declares an event key. */
export function defineEvent<Args extends unknown[]>(name: string): EventKey<Args> {
	return name as EventKey<Args>;
}

/**
 * An event payload (the first argument) may carry a function under this key: it is then given
 * each handler's outcome, as a promise that rejects when the handler throws or its promise
 * rejects, and such failures are its to report instead of the sink's. `CommPlugin` uses it to
 * answer a request whose handler threw.
 */
export const HANDLER_OUTCOME = Symbol("byop.handlerOutcome");

/** What may observe the handlers of an event (see `HANDLER_OUTCOME`). */
type Observed = { readonly [HANDLER_OUTCOME]?: (outcome: Promise<unknown>) => void };

/** The outcome observer of an event's first argument, if it has one. */
function observerOf(payload: unknown): ((outcome: Promise<unknown>) => void) | undefined {
	if (typeof payload !== "object" || payload === null) {
		return undefined;
	}
	const observer = (payload as Observed)[HANDLER_OUTCOME];
	return typeof observer === "function" ? observer : undefined;
}

/** Called with the error when a handler throws or its promise rejects. */
export type HandlerErrorSink = (error: unknown, event: string) => void;

/**
 * A typed emitter built on mitt. A handler that throws does not stop the others: its error goes
 * to the sink (the scheduler applies its `onException` policy to it).
 */
export class Emitter {
	readonly #mitt: Mitt<Record<string, unknown[]>> = mitt();
	readonly #wrappers = new Map<string, Map<Handler<never>, (args: unknown[]) => void>>();
	readonly #sink: HandlerErrorSink;

	constructor(sink: HandlerErrorSink) {
		this.#sink = sink;
	}

	/** Subscribes `handler` to `event`; returns a function that unsubscribes it. */
	on<K extends AnyEventKey>(event: K, handler: Handler<ArgsOf<K>>): () => void {
		if (typeof handler !== "function") {
			// Same wording as every other option: strings are shown quoted.
			throw new TypeError(describeExpected(`handler for ${event}`, "a function", handler));
		}
		let handlers = this.#wrappers.get(event);
		if (handlers === undefined) {
			handlers = new Map();
			this.#wrappers.set(event, handlers);
		}
		const existing = handlers.get(handler as Handler<never>);
		if (existing !== undefined) {
			return () => this.off(event, handler);
		}
		const wrapper = (args: unknown[]): void => {
			const observe = observerOf(args[0]);
			if (observe !== undefined) {
				let outcome: Promise<unknown>;
				try {
					outcome = Promise.resolve(handler(...(args as ArgsOf<K>)));
				} catch (error) {
					outcome = Promise.reject(error);
				}
				observe(outcome);
				return;
			}
			try {
				const returned = handler(...(args as ArgsOf<K>));
				if (returned instanceof Promise) {
					returned.catch((error: unknown) => this.#sink(error, event));
				}
			} catch (error) {
				this.#sink(error, event);
			}
		};
		handlers.set(handler as Handler<never>, wrapper);
		this.#mitt.on(event, wrapper);
		return () => this.off(event, handler);
	}

	/** Unsubscribes `handler` from `event`. Unknown handlers are ignored. */
	off<K extends AnyEventKey>(event: K, handler: Handler<ArgsOf<K>>): void {
		const handlers = this.#wrappers.get(event);
		const wrapper = handlers?.get(handler as Handler<never>);
		if (handlers !== undefined && wrapper !== undefined) {
			handlers.delete(handler as Handler<never>);
			this.#mitt.off(event, wrapper);
		}
	}

	/** Calls every handler of `event` with `args`, in the order they subscribed. */
	emit<Args extends unknown[]>(event: EventKey<Args>, ...args: Args): void {
		const handlers = this.#mitt.all.get(event) as ((args: unknown[]) => void)[] | undefined;
		if (handlers === undefined || handlers.length === 0) {
			return;
		}
		if (handlers.length === 1) {
			handlers[0]!(args);
		} else {
			// A handler may unsubscribe others while they are called: call the ones subscribed now.
			for (const handler of handlers.slice()) {
				handler(args);
			}
		}
	}
}
