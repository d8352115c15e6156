import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

let collect: (() => void) | undefined;

/** A full garbage collection in the calling thread, without `--expose-gc` for the whole process. */
export function collectGarbage(): void {
	if (collect === undefined) {
		// The flag exposes `gc` to contexts made while it is set: this one only.
		setFlagsFromString("--expose-gc");
		collect = runInNewContext("gc") as () => void;
		setFlagsFromString("--no-expose-gc");
	}
	// Buffers' memory is released by a sweep that the next collection finishes: two, so that
	// what was dropped no longer counts as external memory.
	collect();
	collect();
}
