import mittImport, {} from "mitt";
// mitt's types describe its CommonJS build; `import` loads its ES build, whose default export is the factory.
const mitt = mittImport;
/** Declares an event key. */
export function defineEvent(name) {
    return name;
}
/**
 * A typed emitter built on mitt. A handler that throws does not stop the others: its error goes
 * to the sink (the scheduler applies its `onException` policy to it).
 */
export class Emitter {
    #mitt = mitt();
    #wrappers = new Map();
    #sink;
    constructor(sink) {
        this.#sink = sink;
    }
    /** Replaces where handler errors go. */
    set sink(sink) {
        this.#sink = sink;
    }
    /** Subscribes `handler` to `event`; returns a function that unsubscribes it. */
    on(event, handler) {
        if (typeof handler !== "function") {
            throw new TypeError(`Expected the handler for \`${event}\` to be a function, got \`${String(handler)}\` (${typeof handler})`);
        }
        let handlers = this.#wrappers.get(event);
        if (handlers === undefined) {
            handlers = new Map();
            this.#wrappers.set(event, handlers);
        }
        const existing = handlers.get(handler);
        if (existing !== undefined) {
            return () => this.off(event, handler);
        }
        const wrapper = (args) => {
            try {
                const returned = handler(...args);
                if (returned instanceof Promise) {
                    returned.catch((error) => this.#sink(error, event));
                }
            }
            catch (error) {
                this.#sink(error, event);
            }
        };
        handlers.set(handler, wrapper);
        this.#mitt.on(event, wrapper);
        return () => this.off(event, handler);
    }
    /** Unsubscribes `handler` from `event`. Unknown handlers are ignored. */
    off(event, handler) {
        const handlers = this.#wrappers.get(event);
        const wrapper = handlers?.get(handler);
        if (handlers !== undefined && wrapper !== undefined) {
            handlers.delete(handler);
            this.#mitt.off(event, wrapper);
        }
    }
    /** Calls every handler of `event` with `args`, in the order they subscribed. */
    emit(event, ...args) {
        if (this.#wrappers.get(event)?.size) {
            this.#mitt.emit(event, args);
        }
    }
    /** How many handlers `event` has. */
    count(event) {
        return this.#wrappers.get(event)?.size ?? 0;
    }
}
