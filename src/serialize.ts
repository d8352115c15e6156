/** An error as it crosses a thread or process boundary. */
export interface SerializedError {
	readonly __byopError: true;
	readonly name: string;
	readonly message: string;
	readonly stack: string | undefined;
	readonly cause?: SerializedError | { readonly value: unknown };
	readonly props: Record<string, unknown>;
	/** Set when the thrown value was not an Error (`throw 42`). */
	readonly thrown?: { readonly value: unknown; readonly type: string };
}

/** The classes an error keeps when it crosses a boundary, by name: the built-in ones and those registered. */
const classes = new Map<string, { prototype: object }>(
	[Error, TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError, AggregateError].map((type) => [type.name, type]),
);

/**
 * Registers error classes that keep their class when they cross a thread or process boundary
 * (matched by class name). Each module that defines such errors registers its own.
 */
export function registerErrors(...types: { readonly name: string; readonly prototype: object }[]): void {
	for (const type of types) {
		classes.set(type.name, type);
	}
}

function cloneable(value: unknown): boolean {
	if (value === null || typeof value !== "object") {
		return typeof value !== "function" && typeof value !== "symbol";
	}
	try {
		structuredClone(value);
		return true;
	} catch {
		return false;
	}
}

function describe(value: unknown): string {
	if (typeof value === "string") {
		return JSON.stringify(value);
	}
	try {
		return String(value);
	} catch {
		return Object.prototype.toString.call(value);
	}
}

/** Turns anything thrown into a plain, cloneable object that keeps class name, message, stack, cause and own properties. */
export function serializeError(error: unknown, depth = 0): SerializedError {
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
	const props: Record<string, unknown> = {};
	for (const key of Object.keys(error)) {
		if (key === "cause" || key === "name" || key === "message" || key === "stack") {
			continue;
		}
		const value = (error as unknown as Record<string, unknown>)[key];
		if (cloneable(value)) {
			props[key] = value;
		}
	}
	if (error instanceof AggregateError) {
		props["errors"] = error.errors.map((inner: unknown) =>
			inner instanceof Error && depth < 8 ? serializeError(inner, depth + 1) : cloneable(inner) ? inner : describe(inner),
		);
	}
	const name = typeof error.name === "string" && error.name !== "Error" ? error.name : error.constructor?.name ?? "Error";
	const serialized: SerializedError = {
		__byopError: true,
		name,
		message: String(error.message),
		stack: typeof error.stack === "string" ? error.stack : undefined,
		props,
		...("cause" in error && error.cause !== undefined
			? {
					cause:
						error.cause instanceof Error && depth < 8
							? serializeError(error.cause, depth + 1)
							: { value: cloneable(error.cause) ? error.cause : describe(error.cause) },
				}
			: {}),
	};
	return serialized;
}

/** How deep `deserializeError` follows causes and aggregated errors (as deep as `serializeError` writes them). */
const MAX_DEPTH = 8;

/**
 * Rebuilds an error from its serialized form; byop's own and the built-in error classes keep
 * their class. It never throws: what came from another process may be anything, and a field of
 * the wrong shape is left out (a value that is no serialized error at all gives an `Error` that
 * says so).
 */
export function deserializeError(serialized: SerializedError, depth = 0): Error {
	if (!isSerializedError(serialized)) {
		return malformed(serialized);
	}
	try {
		return rebuild(serialized, depth);
	} catch (error) {
		return malformed(serialized, error);
	}
}

function rebuild(serialized: SerializedError, depth: number): Error {
	const known = classes.get(serialized.name);
	const prototype = known?.prototype ?? Error.prototype;
	const error = Object.create(prototype) as Error;
	const define = (key: string, value: unknown): void => {
		Object.defineProperty(error, key, { value, writable: true, configurable: true, enumerable: false });
	};
	define("message", serialized.message);
	define("stack", typeof serialized.stack === "string" ? serialized.stack : `${serialized.name}: ${serialized.message}`);
	if ((prototype as Error).name !== serialized.name || known !== undefined) {
		define("name", serialized.name);
	}
	for (const [key, value] of Object.entries(serialized.props)) {
		// Defined, not assigned: a key such as "__proto__" is a property like any other.
		Object.defineProperty(error, key, {
			value: key === "errors" && Array.isArray(value) ? value.map((inner: unknown) => (isSerializedError(inner) && depth < MAX_DEPTH ? deserializeError(inner, depth + 1) : inner)) : value,
			writable: true,
			configurable: true,
			enumerable: true,
		});
	}
	const thrown: unknown = serialized.thrown;
	if (typeof thrown === "object" && thrown !== null && "value" in thrown) {
		Object.defineProperty(error, "value", { value: thrown.value, writable: true, configurable: true, enumerable: true });
	}
	const cause: unknown = serialized.cause;
	if (isSerializedError(cause)) {
		define("cause", depth < MAX_DEPTH ? deserializeError(cause, depth + 1) : new Error(`${cause.name}: ${cause.message}`));
	} else if (typeof cause === "object" && cause !== null && "value" in cause) {
		define("cause", cause.value);
	}
	return error;
}

/** The error that stands for a serialized error of the wrong shape. */
function malformed(value: unknown, cause?: unknown): Error {
	const kind = value === null ? "null" : Array.isArray(value) ? "an array" : typeof value;
	return new Error(`An error of the wrong shape was received (${kind})`, cause === undefined ? undefined : { cause });
}

/** Whether `value` has the shape of an error serialized by `serializeError` (name, message, stack, props). */
export function isSerializedError(value: unknown): value is SerializedError {
	if (typeof value !== "object" || value === null) {
		return false;
	}
	const candidate = value as Partial<Record<keyof SerializedError, unknown>>;
	return (
		candidate.__byopError === true &&
		typeof candidate.name === "string" &&
		typeof candidate.message === "string" &&
		(candidate.stack === undefined || typeof candidate.stack === "string") &&
		typeof candidate.props === "object" &&
		candidate.props !== null &&
		!Array.isArray(candidate.props)
	);
}
