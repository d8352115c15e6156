import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { constants } from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { UsageError } from "./usage-error.ts";

/** Whether this process runs under tsx (`node --import tsx`, or the `tsx` command). */
export function underTsx(): boolean {
	return process.execArgv.some((flag) => /(^|=|[\\/])tsx([\\/]|$)|^tsx\/esm$/.test(flag));
}

/** Where tsx is looked for: the current directory, then beside byop. */
const SEARCH_FROM = (cwd: string): string[] => [cwd, path.dirname(fileURLToPath(import.meta.url))];

/**
 * Whether this Node strips TypeScript types itself: by default from 22.18 and 23.6, unless
 * turned off with `--no-experimental-strip-types`.
 */
export function stripsTypes(): boolean {
	const typescript = (process.features as { typescript?: string | false }).typescript;
	return typescript === "strip" || typescript === "transform";
}

/**
 * How the command loads a TypeScript module when it does not run under tsx: `"tsx"`, run again
 * under tsx, where tsx is installed (every TypeScript syntax); else `"node"`, Node's own type
 * stripping, where this Node strips types (erasable syntax only: no enums, namespaces or
 * parameter properties; see docs/cli.md).
 *
 * @throws {UsageError} When tsx is not installed and this Node does not strip types.
 */
export function typescriptLoader(module: string, searchFrom: readonly string[] = SEARCH_FROM(process.cwd()), strips = stripsTypes()): "tsx" | "node" {
	if (findTsx(searchFrom) !== undefined) {
		return "tsx";
	}
	if (strips) {
		return "node";
	}
	throw new UsageError(`${module} is TypeScript: install tsx (npm install --save-dev tsx) so that byop can load it, run Node 22.18 or later, which loads TypeScript without types that need code, or build it to JavaScript`);
}

/** tsx's loader as a URL, found from the first folder that has it, or `undefined` when none does. */
function findTsx(searchFrom: readonly string[]): string | undefined {
	for (const folder of searchFrom) {
		const from = path.join(folder, "noop.js");
		try {
			return pathToFileURL(createRequire(from).resolve("tsx")).href;
		} catch {
			// Not installed there.
		}
	}
	return undefined;
}

/**
 * Runs this command again under tsx, so that the threads and processes it starts can load a
 * TypeScript module (byop registers tsx in them when this process runs under it). Signals that
 * stop the command are passed on; resolves to the exit code of the command run again.
 *
 * @throws {UsageError} When tsx is not installed.
 */
export function rerunUnderTsx(argv: readonly string[], module: string, cwd = process.cwd()): Promise<number> {
	const tsx = findTsx(SEARCH_FROM(cwd));
	if (tsx === undefined) {
		throw new UsageError(`${module} is TypeScript: install tsx (npm install --save-dev tsx) so that byop can load it, or build it to JavaScript`);
	}
	const entry = fileURLToPath(new URL(`./main${path.extname(fileURLToPath(import.meta.url))}`, import.meta.url));
	const child = spawn(process.execPath, [...process.execArgv, "--import", tsx, entry, ...argv], { stdio: "inherit" });
	let again: NodeJS.Timeout | undefined;
	const forward = (signal: NodeJS.Signals): void => {
		child.kill(signal);
		// A signal that comes before the command has set its handlers is lost: pass it on again
		// (the command takes a second one as "stop now").
		again ??= setInterval(() => child.kill(signal), 2000);
	};
	const signals: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];
	for (const signal of signals) {
		process.on(signal, forward);
	}
	return new Promise((resolve, reject) => {
		child.once("error", reject);
		child.once("exit", (code, signal) => {
			clearInterval(again);
			for (const name of signals) {
				process.off(name, forward);
			}
			resolve(code ?? 128 + signalNumber(signal));
		});
	});
}

function signalNumber(signal: NodeJS.Signals | null): number {
	return signal === null ? 1 : constants.signals[signal];
}
