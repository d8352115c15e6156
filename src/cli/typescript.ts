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

/** tsx's loader as a URL, found from `cwd` or else beside byop, or `undefined` when it is not installed. */
function findTsx(cwd: string): string | undefined {
	for (const from of [path.join(cwd, "noop.js"), fileURLToPath(import.meta.url)]) {
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
	const tsx = findTsx(cwd);
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
