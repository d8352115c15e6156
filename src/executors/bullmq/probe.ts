import net from "node:net";
import tls from "node:tls";
import type { RedisOptions } from "./options.ts";

/** One RESP command, as Redis reads it. */
function command(...parts: string[]): string {
	return `*${parts.length}\r\n${parts.map((part) => `$${Buffer.byteLength(part)}\r\n${part}\r\n`).join("")}`;
}

/**
 * Checks that Redis answers and takes the credentials, before BullMQ connects: a connection
 * that BullMQ opened and closed while it was still failing to log in leaves an unhandled
 * rejection behind, and an unreachable Redis is retried forever. Rejects with Redis's own
 * answer (which never holds the password) or the socket's error.
 */
export function probeRedis(redis: RedisOptions, timeoutMs: number): Promise<void> {
	return new Promise((resolve, reject) => {
		const socket =
			redis.tls === undefined ? net.connect({ host: redis.host, port: redis.port }) : tls.connect({ host: redis.host, port: redis.port, servername: redis.host, ...redis.tls });
		const expected = redis.password === undefined ? 1 : 2;
		let buffer = "";
		let replies = 0;
		const done = (error?: Error): void => {
			clearTimeout(timer);
			socket.destroy();
			if (error === undefined) {
				resolve();
			} else {
				reject(error);
			}
		};
		const timer = setTimeout(() => done(new Error(`no answer in ${timeoutMs} ms`)), timeoutMs);
		socket.once("error", (error) => done(error));
		socket.once(redis.tls === undefined ? "connect" : "secureConnect", () => {
			const auth = redis.password === undefined ? "" : redis.username === undefined ? command("AUTH", redis.password) : command("AUTH", redis.username, redis.password);
			socket.write(`${auth}${command("PING")}`);
		});
		socket.on("data", (chunk: Buffer) => {
			buffer += chunk.toString("utf8");
			let end: number;
			while ((end = buffer.indexOf("\r\n")) >= 0) {
				const line = buffer.slice(0, end);
				buffer = buffer.slice(end + 2);
				if (line.startsWith("-")) {
					done(new Error(line.slice(1)));
					return;
				}
				if (++replies === expected) {
					done();
					return;
				}
			}
		});
		socket.once("close", () => done(new Error("the connection closed before Redis answered")));
	});
}
