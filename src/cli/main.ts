#!/usr/bin/env node
// The `byop` command: `byop run`, `byop map`, `byop demo`, `byop worker`, `--help`, `--version`.
import { realpathSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { MAIN_HELP } from "./help.ts";
import { mapCommand } from "./map.ts";
import { checked } from "./options.ts";
import { EXIT } from "./outcome.ts";
import { runCommand } from "./run.ts";
import { workerCommand } from "./worker.ts";
import { quote, UsageError } from "./usage-error.ts";

/** byop's version, from its package.json. */
function version(): string {
	return (createRequire(import.meta.url)("byop/package.json") as { version: string }).version;
}

/**
 * Runs `byop demo`: the demo module's `main(args)` when it exports one, else the module runs
 * when it is imported.
 */
async function demo(args: readonly string[]): Promise<number> {
	const extension = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
	const module = (await import(new URL(`../demo/main${extension}`, import.meta.url).href)) as { main?: unknown };
	if (typeof module.main === "function") {
		const code: unknown = await (module.main as (args: string[]) => unknown)([...args]);
		return typeof code === "number" ? code : EXIT.ok;
	}
	return typeof process.exitCode === "number" ? process.exitCode : EXIT.ok;
}

/** Runs the command line `argv` (without `node` and the script) and resolves to the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
	const [command, ...rest] = argv;
	try {
		switch (command) {
			case "run":
				return await runCommand(rest);
			case "map":
				return await mapCommand(rest);
			case "demo":
				return await demo(rest);
			case "worker":
				return await workerCommand(rest);
			default: {
				const { values, positionals } = checked(() =>
					parseArgs({ args: [...argv], options: { help: { type: "boolean", short: "h" }, version: { type: "boolean", short: "v" } }, strict: true, allowPositionals: true }),
				);
				if (values.version === true) {
					process.stdout.write(`${version()}\n`);
					return EXIT.ok;
				}
				if (values.help === true || argv.length === 0) {
					(argv.length === 0 ? process.stderr : process.stdout).write(MAIN_HELP);
					return argv.length === 0 ? EXIT.usage : EXIT.ok;
				}
				throw new UsageError(`Unknown command ${quote(positionals[0] ?? "")}: expected run, map, demo or worker (see byop --help)`);
			}
		}
	} catch (error) {
		if (error instanceof UsageError) {
			process.stderr.write(`byop: ${error.message}\n`);
			return EXIT.usage;
		}
		throw error;
	}
}

const entry = process.argv[1];
if (entry !== undefined && realpathSync(entry) === fileURLToPath(import.meta.url)) {
	main(process.argv.slice(2)).then(
		(code) => exit(code),
		(error: unknown) => {
			process.stderr.write(`byop: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
			exit(EXIT.threw);
		},
	);
}

/** Exits once standard output and standard error have taken what was written to them. */
function exit(code: number): void {
	process.exitCode = code;
	process.stdout.write("", () => process.stderr.write("", () => process.exit(code)));
}
