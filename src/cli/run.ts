import { parseArgs } from "node:util";
import { CancelledError, type Future, Scheduler } from "../index.ts";
import { RUN_HELP } from "./help.ts";
import { checked, createScheduler, parseShared, SHARED_OPTIONS } from "./options.ts";
import { type ErrorJson, errorJson, errorLine, EXIT, exitCodeOf, parseArgument, safeJson, usageJson, usageLine } from "./outcome.ts";
import { onInterrupt } from "./interrupt.ts";
import { resolveTarget } from "./target.ts";
import { rerunUnderTsx, typescriptLoader, underTsx } from "./typescript.ts";
import { UsageError } from "./usage-error.ts";

const OPTIONS = { ...SHARED_OPTIONS, json: { type: "boolean" } } as const;

/**
 * Splits `byop run`'s arguments at the module: what comes before are byop's options, what comes
 * after are the call's arguments, passed as they are even when they look like options (`-1`).
 */
function splitAtModule(args: readonly string[]): { readonly own: string[]; readonly module: string | undefined; readonly callArgs: string[] } {
	const { tokens } = parseArgs({ args: [...args], options: OPTIONS, strict: false, allowPositionals: true, tokens: true });
	const first = tokens.find((token) => token.kind === "positional");
	if (first === undefined) {
		return { own: [...args], module: undefined, callArgs: [] };
	}
	const terminator = tokens.find((token) => token.kind === "option-terminator");
	const ownEnd = terminator !== undefined && terminator.index < first.index ? terminator.index : first.index;
	return { own: args.slice(0, ownEnd), module: first.value, callArgs: args.slice(first.index + 1) };
}

/** `byop run`: one call under limits. Resolves to the exit code. */
export async function runCommand(args: readonly string[]): Promise<number> {
	const { own, module, callArgs } = splitAtModule(args);
	const { values } = checked(() => parseArgs({ args: own, options: OPTIONS, strict: true, allowPositionals: false }));
	if (values.help === true) {
		process.stdout.write(RUN_HELP);
		return EXIT.ok;
	}
	if (module === undefined) {
		throw new UsageError("byop run needs a module: byop run [options] <module>[#<export>] [args…] (see byop run --help)");
	}
	const shared = parseShared(values);
	const target = resolveTarget(module);
	if (target.typescript && !underTsx() && typescriptLoader(module) === "tsx") {
		return rerunUnderTsx(["run", ...args], module);
	}
	const json = values.json === true;

	const scheduler = createScheduler(shared.executor, 1);
	const task = scheduler.task(target.ref, shared.plugin === undefined ? {} : { plugins: [shared.plugin] });
	let future: Future | undefined;
	let interrupted = false;
	scheduler.on(Scheduler.STARTED, () => {
		if (!interrupted) {
			future = task.submit(...callArgs.map(parseArgument));
		}
	});
	const stopListening = onInterrupt(() => {
		interrupted = true;
		future?.cancel("Interrupted");
	});
	try {
		await scheduler.run({ onException: "continue", onCancelled: "continue" });
	} finally {
		stopListening();
	}
	if (interrupted || future === undefined || future.cancelled) {
		const error = future?.exception ?? new CancelledError("Interrupted before the call started");
		report(json, { ok: false, error: errorJson(error), usage: usageJson(future?.usage) }, future);
		return EXIT.interrupted;
	}
	if (future.state === "result") {
		const text = safeJson(future.result);
		if (text === undefined) {
			const error = new TypeError("The call's result has no JSON form (it holds a cycle)");
			report(json, { ok: false, error: errorJson(error), usage: usageJson(future.usage) }, future);
			return EXIT.threw;
		}
		if (json) {
			process.stdout.write(`{"ok":true,"result":${text},"usage":${JSON.stringify(usageJson(future.usage))}}\n`);
		} else {
			process.stdout.write(`${text}\n`);
			process.stderr.write(`byop: ${usageLine(future.usage)}\n`);
		}
		return EXIT.ok;
	}
	const error = future.exception;
	report(json, { ok: false, error: errorJson(error), usage: usageJson(future.usage) }, future);
	return exitCodeOf(error);
}

/** Writes a failed call: one JSON object on stdout with `--json`, else its error and usage on stderr. */
function report(json: boolean, outcome: { ok: false; error: ErrorJson; usage: unknown }, future: Future | undefined): void {
	if (json) {
		process.stdout.write(`${JSON.stringify(outcome)}\n`);
		return;
	}
	process.stderr.write(`byop: ${errorLine(outcome.error)}\n`);
	if (future !== undefined) {
		process.stderr.write(`byop: ${usageLine(future.usage)}\n`);
	}
}
