import { createReadStream } from "node:fs";
import type { Readable } from "node:stream";
import { createInterface, type Interface } from "node:readline";

/**
 * The lines of `file` (standard input when it is `undefined` or `-`), read as a stream: the
 * interface pauses its input while a thousand lines wait to be taken, so a large input never
 * sits in memory. Take the lines at once: lines read before the loop asks for them are lost.
 */
export function inputLines(file: string | undefined): { readonly lines: Interface; readonly stream: Readable } {
	const stream = file === undefined || file === "-" ? process.stdin : createReadStream(file);
	return { lines: createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY }), stream };
}

/** Counts the lines of a file without holding it: newlines, plus a last line without one. */
export async function countLines(file: string): Promise<number> {
	let count = 0;
	let last = 0x0a;
	for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
		for (let at = chunk.indexOf(0x0a); at >= 0; at = chunk.indexOf(0x0a, at + 1)) {
			count++;
		}
		if (chunk.length > 0) {
			last = chunk[chunk.length - 1]!;
		}
	}
	return last === 0x0a ? count : count + 1;
}
