import { describeExpected, parseCount } from "../../units.ts";

/** How to reach Redis, as an object: the fields of ioredis's options that byop passes on. */
export interface RedisConnectionOptions {
	readonly host?: string;
	readonly port?: number;
	readonly username?: string;
	readonly password?: string;
	/** `true` or TLS options (as `tls.connect` takes) to connect over TLS, as `rediss://` does. */
	readonly tls?: boolean | Record<string, unknown>;
	readonly db?: number;
}

/** Options of `Scheduler.withBullMQ`: where the queue is, and how many calls this scheduler keeps on it. */
export interface BullMQOptions {
	/** A Redis URL (`redis://[user:password@]host[:port][/db]`, `rediss://` for TLS) or connection options. */
	readonly connection: string | RedisConnectionOptions;
	/** The queue's name; worker hosts started with `byop worker --queue <name>` take its calls. */
	readonly queueName: string;
	/** BullMQ's key prefix in Redis; hosts take `--prefix` with the same value. @default "byop" */
	readonly prefix?: string;
	/** How many calls this scheduler keeps on the queue at once (waiting or running on a host). @default 64 */
	readonly maxWorkers?: number;
	/**
	 * The directory that module paths are made relative to: a file module travels as its path
	 * from here, and a host loads it from its own `--root`. A module file outside it is refused.
	 * @default process.cwd()
	 */
	readonly root?: string;
}

/** Connection options as ioredis takes them. */
export interface RedisOptions {
	readonly host: string;
	readonly port: number;
	readonly username?: string;
	readonly password?: string;
	readonly db?: number;
	readonly tls?: Record<string, unknown>;
}

/** `BullMQOptions`, checked. */
export interface BullMQSettings {
	readonly redis: RedisOptions;
	/** The Redis address for messages, its password masked. */
	readonly where: string;
	readonly queueName: string;
	readonly prefix: string;
	readonly maxWorkers: number;
	readonly root: string;
}

/** Masks a URL's password for logs and messages: `redis://user:***@host:6379`. */
export function maskUrl(url: string): string {
	return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)([^@/]*)@/i, (_all, scheme: string, auth: string) => {
		const colon = auth.indexOf(":");
		return `${scheme}${colon < 0 ? "***" : `${auth.slice(0, colon)}:***`}@`;
	});
}

/**
 * Parses a Redis URL: `redis://[user[:password]@]host[:port][/db]` or `rediss://` for TLS.
 *
 * @throws {TypeError} When it is not such a URL; the message masks any password.
 */
export function parseRedisUrl(option: string, url: string): RedisOptions {
	let parsed: URL;
	try {
		parsed = new URL(url);
	} catch {
		throw new TypeError(describeExpected(option, "a Redis URL (redis://host:port or rediss://…)", maskUrl(url)));
	}
	if (parsed.protocol !== "redis:" && parsed.protocol !== "rediss:") {
		throw new TypeError(describeExpected(option, "a Redis URL (redis://host:port or rediss://…)", maskUrl(url)));
	}
	const port = parsed.port === "" ? 6379 : Number(parsed.port);
	const dbText = parsed.pathname.replace(/^\//, "");
	if (dbText !== "" && !/^\d+$/.test(dbText)) {
		throw new TypeError(describeExpected(option, "a Redis URL whose path is a database number", maskUrl(url)));
	}
	return {
		host: parsed.hostname.replace(/^\[|\]$/g, "") || "127.0.0.1",
		port,
		...(parsed.username === "" ? {} : { username: decodeURIComponent(parsed.username) }),
		...(parsed.password === "" ? {} : { password: decodeURIComponent(parsed.password) }),
		...(dbText === "" ? {} : { db: Number(dbText) }),
		...(parsed.protocol === "rediss:" ? { tls: {} } : {}),
	};
}

/** Checks connection options given as an object. */
function parseConnectionObject(value: object): RedisOptions {
	const { host = "127.0.0.1", port = 6379, username, password, tls, db } = value as RedisConnectionOptions;
	if (typeof host !== "string" || host === "") {
		throw new TypeError(describeExpected("connection.host", "a host name", host));
	}
	if (typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65535) {
		throw new RangeError(describeExpected("connection.port", "a port number (1 to 65535)", port));
	}
	if (username !== undefined && typeof username !== "string") {
		throw new TypeError(describeExpected("connection.username", "a string", username));
	}
	if (password !== undefined && typeof password !== "string") {
		throw new TypeError(describeExpected("connection.password", "a string", "***"));
	}
	if (tls !== undefined && typeof tls !== "boolean" && (typeof tls !== "object" || tls === null)) {
		throw new TypeError(describeExpected("connection.tls", "a boolean or TLS options", tls));
	}
	if (db !== undefined && (typeof db !== "number" || !Number.isInteger(db) || db < 0)) {
		throw new RangeError(describeExpected("connection.db", "a database number (an integer from 0)", db));
	}
	return {
		host,
		port,
		...(username === undefined ? {} : { username }),
		...(password === undefined ? {} : { password }),
		...(db === undefined ? {} : { db }),
		...(tls === undefined || tls === false ? {} : { tls: tls === true ? {} : tls }),
	};
}

/** The Redis address of connection options, for messages: never the password. */
export function describeRedis(redis: RedisOptions): string {
	const auth = redis.password !== undefined ? `${redis.username ?? ""}:***@` : redis.username !== undefined ? `${redis.username}@` : "";
	return `${redis.tls !== undefined ? "rediss" : "redis"}://${auth}${redis.host}:${redis.port}${redis.db === undefined ? "" : `/${redis.db}`}`;
}

/** Checks a queue name or key prefix: a non-empty string without `:` (BullMQ's key separator). */
export function parseName(option: string, value: unknown): string {
	if (typeof value !== "string" || value === "" || value.includes(":")) {
		throw new TypeError(describeExpected(option, "a non-empty string without \":\"", value));
	}
	return value;
}

/**
 * Checks `Scheduler.withBullMQ`'s options at the edge, synchronously: nothing connects yet.
 *
 * @throws {TypeError} When an option has the wrong type (any password in the message masked).
 * @throws {RangeError} When a number is out of range.
 */
export function parseBullMQOptions(options: unknown): BullMQSettings {
	if (typeof options !== "object" || options === null) {
		throw new TypeError(describeExpected("options", "an object with `connection` and `queueName`", options));
	}
	const { connection, queueName, prefix = "byop", maxWorkers = 64, root = process.cwd() } = options as BullMQOptions;
	let redis: RedisOptions;
	if (typeof connection === "string") {
		redis = parseRedisUrl("connection", connection);
	} else if (typeof connection === "object" && connection !== null) {
		redis = parseConnectionObject(connection);
	} else {
		throw new TypeError(describeExpected("connection", "a Redis URL or connection options `{ host, port, … }`", connection));
	}
	if (typeof root !== "string" || root === "") {
		throw new TypeError(describeExpected("root", "a directory path", root));
	}
	return {
		redis,
		where: describeRedis(redis),
		queueName: parseName("queueName", queueName),
		prefix: parseName("prefix", prefix),
		maxWorkers: parseCount("maxWorkers", maxWorkers),
		root,
	};
}
