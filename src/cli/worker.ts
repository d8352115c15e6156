import { realpathSync, statSync } from "node:fs";
import { availableParallelism, hostname } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { type HostOptions, WorkerHost } from "../executors/bullmq/host.ts";
import { maskUrl, parseName, parseRedisUrl, describeRedis } from "../executors/bullmq/options.ts";
import { parseDuration } from "../units.ts";
import { WORKER_HELP } from "./help.ts";
import { checked, parseConcurrency } from "./options.ts";
import { EXIT } from "./outcome.ts";
import { quote, UsageError } from "./usage-error.ts";

const OPTIONS = {
	redis: { type: "string" },
	queue: { type: "string" },
	prefix: { type: "string" },
	concurrency: { type: "string", short: "c" },
	executor: { type: "string" },
	root: { type: "string" },
	allow: { type: "string", multiple: true },
	grace: { type: "string" },
	name: { type: "string" },
	help: { type: "boolean", short: "h" },
} as const;

/** The default `--grace`: how long running calls may finish after SIGINT/SIGTERM. */
const DEFAULT_GRACE_MS = 30_000;

/** What `byop worker`'s command line asks for, checked. */
export type WorkerSettings = Omit<HostOptions, "log"> & { readonly graceMs: number };

/**
 * Checks `byop worker`'s arguments (`env` gives `BYOP_REDIS_URL`) without connecting to anything;
 * `"help"` when `--help` was asked for.
 *
 * @throws {UsageError} Naming the option and the value (a password masked).
 */
export function parseWorkerArgs(args: readonly string[], env: NodeJS.ProcessEnv = process.env): WorkerSettings | "help" {
	const { values } = checked(() => parseArgs({ args: [...args], options: OPTIONS, strict: true, allowPositionals: false }));
	if (values.help === true) {
		return "help";
	}
	const url = values.redis ?? env["BYOP_REDIS_URL"];
	if (url === undefined || url === "") {
		throw new UsageError("byop worker needs --redis <url> (or BYOP_REDIS_URL) and --queue <name> (see byop worker --help)");
	}
	const redis = checked(() => parseRedisUrl("--redis", url));
	if (values.queue === undefined) {
		throw new UsageError("byop worker needs --queue <name> (see byop worker --help)");
	}
	const queueName = checked(() => parseName("--queue", values.queue));
	const prefix = checked(() => parseName("--prefix", values.prefix ?? "byop"));
	const executor = values.executor ?? "threads";
	if (executor !== "threads" && executor !== "processes") {
		throw new UsageError(`Expected \`--executor\` to be threads or processes, got ${quote(executor)}`);
	}
	const concurrency = values.concurrency === undefined ? availableParallelism() : parseConcurrency(values.concurrency);
	const graceMs = values.grace === undefined ? DEFAULT_GRACE_MS : /^\s*0+(\.0*)?\s*(ms|s|m|h)?\s*$/.test(values.grace) ? 0 : checked(() => parseDuration("--grace", values.grace));
	const root = rootOf(values.root ?? process.cwd());
	const allow = new Set((values.allow ?? []).flatMap((entry) => entry.split(",")).map((entry) => entry.trim()).filter((entry) => entry !== ""));
	for (const name of allow) {
		if (!/^(@[\w.-]+\/)?[\w.-]+$/.test(name)) {
			throw new UsageError(`Expected \`--allow\` to name packages (name or @scope/name), got ${quote(name)}`);
		}
	}
	const name = values.name ?? `${hostname()}:${process.pid}`;
	return { redis, where: describeRedis(redis), queueName, prefix, concurrency, executor, policy: { root, allow }, name, graceMs };
}

/** `byop worker`: a worker host for `Scheduler.withBullMQ`. Resolves to the exit code once it has stopped. */
export async function workerCommand(args: readonly string[]): Promise<number> {
	const settings = parseWorkerArgs(args);
	if (settings === "help") {
		process.stdout.write(WORKER_HELP);
		return EXIT.ok;
	}
	const { where, queueName, prefix, concurrency, executor, policy, name, graceMs } = settings;
	const { root, allow } = policy;
	const log = (line: string): void => {
		process.stderr.write(`byop worker ${name}: ${maskUrl(line)}\n`);
	};

	let host: WorkerHost;
	try {
		host = await WorkerHost.start({ ...settings, log });
	} catch (error) {
		log(error instanceof Error ? error.message : String(error));
		return EXIT.threw;
	}
	log(
		`started: jobs of queue "${queueName}" (prefix "${prefix}") at ${where}, concurrency ${concurrency}, ${executor}, root ${root}` +
			`${allow.size === 0 ? "" : `, packages ${[...allow].join(", ")}`}`,
	);
	const signal = await new Promise<NodeJS.Signals>((resolve) => {
		const first = (received: NodeJS.Signals): void => {
			process.off("SIGINT", first);
			process.off("SIGTERM", first);
			// A second signal does not wait for the grace period.
			process.once("SIGINT", () => host.hurry());
			process.once("SIGTERM", () => host.hurry());
			resolve(received);
		};
		process.on("SIGINT", first);
		process.on("SIGTERM", first);
	});
	log(`stopping (${signal}): no new jobs; ${host.running} running, given up to ${graceMs} ms`);
	await host.stop(graceMs);
	log("stopped");
	return EXIT.ok;
}

/** The real path of `--root`, which must be a directory. */
function rootOf(dir: string): string {
	try {
		const real = realpathSync(path.resolve(dir));
		if (statSync(real).isDirectory()) {
			return real;
		}
	} catch {
		// Reported below.
	}
	throw new UsageError(`Expected \`--root\` to be a directory, got ${quote(dir)}`);
}
