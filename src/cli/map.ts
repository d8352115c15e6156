import { existsSync } from "node:fs";
import { parseArgs } from "node:util";
import { type Future, Scheduler, Task, TaskLoadError } from "../index.ts";
import { LimitExceededError } from "../pynisher/index.ts";
import { MAP_HELP } from "./help.ts";
import { countLines, inputLines } from "./input.ts";
import { onInterrupt } from "./interrupt.ts";
import { checked, createScheduler, parseConcurrency, parseShared, SHARED_OPTIONS } from "./options.ts";
import { type ErrorJson, errorJson, errorLine, EXIT, safeJson, usageJson } from "./outcome.ts";
import { doneIndexes, LineWriter } from "./output.ts";
import { resolveTarget } from "./target.ts";
import { rerunUnderTsx, typescriptLoader, underTsx } from "./typescript.ts";
import { quote, UsageError } from "./usage-error.ts";

const OPTIONS = {
	...SHARED_OPTIONS,
	concurrency: { type: "string", short: "c" },
	input: { type: "string", short: "i" },
	output: { type: "string", short: "o" },
	"keep-order": { type: "boolean" },
	resume: { type: "boolean" },
	progress: { type: "boolean" },
	"no-progress": { type: "boolean" },
} as const;

/** How many inputs may be read ahead of the lines written, per call running at once. */
const READ_AHEAD = 8;

/** An input that will have a line: its place in the input, and in the order lines are due (`--keep-order`). */
interface Item {
	readonly index: number;
	readonly seq: number;
}

/** `byop map`: a function over a JSON Lines data set. Resolves to the exit code. */
export async function mapCommand(args: readonly string[]): Promise<number> {
	const { values, positionals } = checked(() => parseArgs({ args: [...args], options: OPTIONS, strict: true, allowPositionals: true }));
	if (values.help === true) {
		process.stdout.write(MAP_HELP);
		return EXIT.ok;
	}
	if (positionals.length !== 1) {
		throw new UsageError(`byop map needs one module, got ${positionals.length === 0 ? "none" : positionals.map((p) => JSON.stringify(p)).join(", ")}: byop map [options] <module>[#<export>] (see byop map --help)`);
	}
	const shared = parseShared(values);
	const concurrency = parseConcurrency(values.concurrency);
	const target = resolveTarget(positionals[0]!);
	if (values.resume === true && values.output === undefined) {
		throw new UsageError("`--resume` needs `--output FILE`: the file whose lines are already done");
	}
	if (target.typescript && !underTsx() && typescriptLoader(positionals[0]!) === "tsx") {
		return rerunUnderTsx(["map", ...args], positionals[0]!);
	}
	const done = values.resume === true && values.output !== undefined ? await doneIndexes(values.output) : new Set<number>();
	// Checked now; read only once the loop below takes its lines (lines read before would be lost).
	if (values.input !== undefined && values.input !== "-" && !existsSync(values.input)) {
		throw new UsageError(`Expected \`--input\` to be a file, got ${quote(values.input)}: it does not exist`);
	}
	const writer = new LineWriter(values.output, values.resume === true);
	const keepOrder = values["keep-order"] === true;
	const window = Math.max(8, concurrency * READ_AHEAD);

	const counts = { done: 0, failed: 0, limitHits: 0, ok: 0, skipped: 0 };
	const showProgress = values.progress === true || (values["no-progress"] !== true && process.stderr.isTTY === true);
	// Loaded only when drawn: most runs of `byop map` write to a pipe or a file.
	const progress = showProgress ? new (await import("./progress.ts")).Progress(() => counts) : undefined;
	if (progress !== undefined && values.input !== undefined && values.input !== "-") {
		countLines(values.input).then(
			(total) => {
				progress.total = total;
			},
			() => {},
		);
	}

	// Lines due in input order wait here for the ones before them (`--keep-order`).
	const held = new Map<number, string>();
	let nextSeq = 0;
	let nextDue = 0;
	/** Items read and not yet written: what holds the reading back. */
	let open = 0;
	let wake: (() => void) | undefined;
	const poke = (): void => {
		const resolve = wake;
		wake = undefined;
		resolve?.();
	};
	const emit = (item: Item, line: string): void => {
		counts.done++;
		if (!keepOrder) {
			writer.write(line);
			open--;
		} else {
			held.set(item.seq, line);
			for (let due = held.get(nextDue); due !== undefined; due = held.get(nextDue)) {
				writer.write(due);
				held.delete(nextDue);
				nextDue++;
				open--;
			}
		}
		poke();
	};
	/** Writes what waits for earlier lines that will never come (an interrupted run), in input order. */
	const flushHeld = (): void => {
		for (const seq of [...held.keys()].sort((a, b) => a - b)) {
			writer.write(held.get(seq)!);
		}
		held.clear();
		writer.flush();
	};
	const fail = (item: Item, error: ErrorJson, usage: unknown): void => {
		counts.failed++;
		emit(item, `{"index":${item.index},"ok":false,"error":${JSON.stringify(error)},"usage":${JSON.stringify(usage)}}`);
	};

	const scheduler = createScheduler(shared.executor, concurrency);
	const task: Task = scheduler.task(target.ref, shared.plugin === undefined ? {} : { plugins: [shared.plugin] });
	const running = new Map<Future, Item>();
	let submitting: Item | undefined;
	let stopping = false;
	let fatal: unknown;
	let allSettled: (() => void) | undefined;

	task.on(Task.SUBMITTED, (future) => {
		if (submitting !== undefined) {
			running.set(future, submitting);
		}
	});
	task.on(Task.DONE, (future) => {
		const item = running.get(future);
		if (item === undefined) {
			return;
		}
		running.delete(future);
		const usage = usageJson(future.usage);
		if (future.state === "result") {
			const text = safeJson(future.result);
			if (text === undefined) {
				fail(item, { name: "TypeError", message: "The call's result has no JSON form (it holds a cycle)", code: "ERR_RESULT_NOT_JSON" }, usage);
			} else {
				counts.ok++;
				emit(item, `{"index":${item.index},"ok":true,"result":${text},"usage":${JSON.stringify(usage)}}`);
			}
		} else if (future.state === "exception") {
			const error = future.exception;
			if (error instanceof TaskLoadError) {
				// Every call would fail alike: a usage error, not a line per input.
				fatal ??= error;
				stop();
			} else {
				if (error instanceof LimitExceededError) {
					counts.limitHits++;
				}
				fail(item, errorJson(error), usage);
			}
		}
		// A cancelled call (an interrupted run) has no line: `--resume` runs it again.
		if (running.size === 0) {
			allSettled?.();
		}
	});

	let interrupted = false;
	let input: ReturnType<typeof inputLines> | undefined;
	const stop = (): void => {
		stopping = true;
		input?.lines.close();
		for (const future of running.keys()) {
			future.cancel("Interrupted");
		}
		poke();
	};
	const stopListening = onInterrupt(
		() => {
			interrupted = true;
			stop();
		},
		() => {
			flushHeld();
			progress?.stop();
		},
	);

	const started = new Promise<void>((resolve) => scheduler.on(Scheduler.STARTED, resolve));
	const run = scheduler.run({ endOnEmpty: false, onException: "continue", onCancelled: "continue" });
	const startedAt = performance.now();
	await started;
	let index = -1;
	let readError: unknown;
	try {
		input = inputLines(values.input);
		for await (const line of input.lines) {
			index++;
			if (stopping) {
				break;
			}
			if (done.has(index) || line.trim() === "") {
				counts.done++;
				counts.skipped++;
				continue;
			}
			while (!stopping && open >= window) {
				await new Promise<void>((resolve) => {
					wake = resolve;
				});
			}
			await writer.drained();
			if (stopping) {
				break;
			}
			const item: Item = { index, seq: nextSeq++ };
			open++;
			let parsed: unknown;
			try {
				parsed = JSON.parse(line) as unknown;
			} catch (error) {
				fail(item, { name: "SyntaxError", message: `Input line ${index + 1} is not JSON: ${(error as Error).message}`, code: "ERR_INPUT_LINE" }, null);
				continue;
			}
			submitting = item;
			const future = task.submit(...(Array.isArray(parsed) ? parsed : [parsed]));
			submitting = undefined;
			if (future === undefined) {
				break;
			}
		}
	} catch (error) {
		readError = error;
		stop();
	}
	if (running.size > 0) {
		await new Promise<void>((resolve) => {
			allSettled = resolve;
		});
	}
	scheduler.stop("the input was read to its end");
	await run;
	stopListening();
	flushHeld();
	await writer.close();
	progress?.stop();
	if (fatal !== undefined) {
		process.stderr.write(`byop: ${errorLine(errorJson(fatal))}\n`);
		return EXIT.usage;
	}
	if (readError !== undefined) {
		process.stderr.write(`byop: cannot read the input: ${errorLine(errorJson(readError))}\n`);
		return EXIT.threw;
	}
	const seconds = ((performance.now() - startedAt) / 1000).toFixed(1);
	const skipped = counts.skipped > 0 ? `, ${counts.skipped} skipped (blank or already done)` : "";
	process.stderr.write(`byop map: ${counts.ok} ok, ${counts.failed} failed (${counts.limitHits} limits)${skipped}${interrupted ? ", interrupted" : ""}, ${seconds} s\n`);
	if (interrupted) {
		return EXIT.interrupted;
	}
	return counts.failed > 0 ? EXIT.threw : EXIT.ok;
}
