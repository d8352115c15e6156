import { closeSync, createReadStream, fstatSync, ftruncateSync, openSync, readSync, writeSync } from "node:fs";
import { once } from "node:events";
import { createInterface } from "node:readline";

/**
 * Where `byop map` writes its lines. A file is written with a system call per batch of lines,
 * straight from the event loop: a line handed to `write()` is in the file once `flush()` has
 * run (at the latest on the next turn of the event loop), and nothing written is lost when the
 * command is killed after it. Standard output backs up through `drained()`.
 */
export class LineWriter {
	readonly #fd: number | undefined;
	#pending: string[] = [];
	#scheduled = false;
	#congested = false;

	/** Writes to `file` (appended to when `append`), or to standard output when `file` is `undefined`. */
	constructor(file: string | undefined, append: boolean) {
		this.#fd = file === undefined ? undefined : openSync(file, append ? "a" : "w");
	}

	/** Queues one line (without its newline); it is written on this turn of the event loop or the next. */
	write(line: string): void {
		this.#pending.push(line);
		if (!this.#scheduled) {
			this.#scheduled = true;
			setImmediate(() => this.flush());
		}
	}

	/** Writes the queued lines now. */
	flush(): void {
		this.#scheduled = false;
		if (this.#pending.length === 0) {
			return;
		}
		const text = `${this.#pending.join("\n")}\n`;
		this.#pending = [];
		if (this.#fd === undefined) {
			if (!process.stdout.write(text)) {
				this.#congested = true;
				process.stdout.once("drain", () => {
					this.#congested = false;
				});
			}
			return;
		}
		const buffer = Buffer.from(text);
		let written = 0;
		while (written < buffer.length) {
			written += writeSync(this.#fd, buffer, written);
		}
	}

	/** Resolves when standard output has taken what it was given (at once for a file). */
	async drained(): Promise<void> {
		if (this.#congested) {
			await once(process.stdout, "drain");
		}
	}

	/** Writes what is queued and closes the file. */
	async close(): Promise<void> {
		this.flush();
		if (this.#fd !== undefined) {
			closeSync(this.#fd);
			return;
		}
		await this.drained();
	}
}

/**
 * Reads the indexes already in an output file of `byop map`, for `--resume`. A last line cut
 * short (the command was killed while writing it) is removed from the file, so that the lines
 * appended after it stay valid JSON Lines; it does not count as done. A missing file has none.
 */
export async function doneIndexes(file: string): Promise<Set<number>> {
	const done = new Set<number>();
	let fd: number;
	try {
		fd = openSync(file, "r+");
	} catch (error) {
		if ((error as NodeJS.ErrnoException).code === "ENOENT") {
			return done;
		}
		throw error;
	}
	try {
		const size = fstatSync(fd).size;
		const end = endOfLastLine(fd, size);
		if (end < size) {
			ftruncateSync(fd, end);
		}
	} finally {
		closeSync(fd);
	}
	const lines = createInterface({ input: createReadStream(file), crlfDelay: Number.POSITIVE_INFINITY });
	for await (const line of lines) {
		const index = indexOf(line);
		if (index !== undefined) {
			done.add(index);
		}
	}
	return done;
}

/** The offset just past the file's last newline (0 when it has none), read backwards from the end. */
function endOfLastLine(fd: number, size: number): number {
	const chunk = Buffer.alloc(64 * 1024);
	let position = size;
	while (position > 0) {
		const length = Math.min(chunk.length, position);
		position -= length;
		readSync(fd, chunk, 0, length, position);
		const newline = chunk.subarray(0, length).lastIndexOf(0x0a);
		if (newline >= 0) {
			return position + newline + 1;
		}
	}
	return 0;
}

/** The `index` of an output line, or `undefined` when the line is not one. */
function indexOf(line: string): number | undefined {
	try {
		const parsed = JSON.parse(line) as { index?: unknown };
		return typeof parsed === "object" && parsed !== null && Number.isInteger(parsed.index) ? (parsed.index as number) : undefined;
	} catch {
		return undefined;
	}
}
