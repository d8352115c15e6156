import { CancelledError, DataCloneError, SchedulerStateError, TaskLoadError, WorkerCrashedError } from "./errors.js";
import { CpuTimeLimitError, LimitExceededError, MemoryLimitError, WallTimeLimitError } from "./pynisher/errors.js";
const CLASSES = {
    Error,
    TypeError,
    RangeError,
    SyntaxError,
    ReferenceError,
    EvalError,
    URIError,
    AggregateError,
    CancelledError,
    SchedulerStateError,
    TaskLoadError,
    DataCloneError,
    WorkerCrashedError,
    LimitExceededError,
    WallTimeLimitError,
    CpuTimeLimitError,
    MemoryLimitError,
};
function cloneable(value) {
    if (value === null || typeof value !== "object") {
        return typeof value !== "function" && typeof value !== "symbol";
    }
    try {
        structuredClone(value);
        return true;
    }
    catch {
        return false;
    }
}
function describe(value) {
    if (typeof value === "string") {
        return JSON.stringify(value);
    }
    try {
        return String(value);
    }
    catch {
        return Object.prototype.toString.call(value);
    }
}
/** Turns anything thrown into a plain, cloneable object that keeps class name, message, stack, cause and own properties. */
export function serializeError(error, depth = 0) {
    if (!(error instanceof Error)) {
        return {
            __byopError: true,
            name: "Error",
            message: `Task threw a non-Error value: ${describe(error)}`,
            stack: undefined,
            props: {},
            thrown: { value: cloneable(error) ? error : describe(error), type: error === null ? "null" : typeof error },
        };
    }
    const props = {};
    for (const key of Object.keys(error)) {
        if (key === "cause" || key === "name" || key === "message" || key === "stack") {
            continue;
        }
        const value = error[key];
        if (cloneable(value)) {
            props[key] = value;
        }
    }
    if (error instanceof AggregateError) {
        props["errors"] = error.errors.map((inner) => inner instanceof Error && depth < 8 ? serializeError(inner, depth + 1) : cloneable(inner) ? inner : describe(inner));
    }
    const name = typeof error.name === "string" && error.name !== "Error" ? error.name : error.constructor?.name ?? "Error";
    const serialized = {
        __byopError: true,
        name,
        message: String(error.message),
        stack: typeof error.stack === "string" ? error.stack : undefined,
        props,
        ...("cause" in error && error.cause !== undefined
            ? {
                cause: error.cause instanceof Error && depth < 8
                    ? serializeError(error.cause, depth + 1)
                    : { value: cloneable(error.cause) ? error.cause : describe(error.cause) },
            }
            : {}),
    };
    return serialized;
}
/** Rebuilds an error from its serialized form; byop's own and the built-in error classes keep their class. */
export function deserializeError(serialized) {
    const prototype = Object.hasOwn(CLASSES, serialized.name) ? CLASSES[serialized.name].prototype : Error.prototype;
    const error = Object.create(prototype);
    const define = (key, value) => {
        Object.defineProperty(error, key, { value, writable: true, configurable: true, enumerable: false });
    };
    define("message", serialized.message);
    define("stack", serialized.stack ?? `${serialized.name}: ${serialized.message}`);
    if (prototype.name !== serialized.name || Object.hasOwn(CLASSES, serialized.name)) {
        Object.defineProperty(error, "name", { value: serialized.name, writable: true, configurable: true, enumerable: false });
    }
    for (const [key, value] of Object.entries(serialized.props)) {
        error[key] =
            key === "errors" && Array.isArray(value) ? value.map((inner) => (isSerializedError(inner) ? deserializeError(inner) : inner)) : value;
    }
    if (serialized.thrown !== undefined) {
        Object.assign(error, { value: serialized.thrown.value });
    }
    if (serialized.cause !== undefined) {
        define("cause", isSerializedError(serialized.cause) ? deserializeError(serialized.cause) : serialized.cause.value);
    }
    return error;
}
/** Whether `value` is an error serialized by `serializeError`. */
export function isSerializedError(value) {
    return typeof value === "object" && value !== null && value.__byopError === true;
}
