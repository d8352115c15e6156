import { SingleBar } from "cli-progress";

/** What `byop map` has done so far, drawn on standard error. */
export interface Counts {
	/** Inputs with a line written (or found in the output file by `--resume`). */
	readonly done: number;
	/** Of them, failed ones: an error, a limit or a malformed line. */
	readonly failed: number;
	/** Of the failed ones, those stopped by a limit. */
	readonly limitHits: number;
}

/**
 * A progress bar for `byop map` on standard error: done/total (or only done while the total is
 * unknown), rate, ETA, failures and limit hits. Redrawn a few times a second, not on every item.
 */
export class Progress {
	readonly #bar: SingleBar;
	readonly #counts: () => Counts;
	readonly #timer: NodeJS.Timeout;
	readonly #started = performance.now();
	#total: number | undefined;
	/** Items done before this run (`--resume`): not counted in the rate. */
	#offset = 0;

	/** Starts drawing; `counts` is read at each redraw. On a stream that is not a terminal, one line is written every second. */
	constructor(counts: () => Counts) {
		this.#counts = counts;
		this.#bar = new SingleBar({
			stream: process.stderr,
			format: () => this.#line(),
			hideCursor: true,
			noTTYOutput: true,
			notTTYSchedule: 1000,
			fps: 5,
			linewrap: false,
		});
		this.#bar.start(1, 0);
		this.#timer = setInterval(() => this.#bar.update(this.#counts().done), 200);
		this.#timer.unref();
	}

	/** Sets the number of inputs, once it is known. */
	set total(total: number) {
		this.#total = total;
	}

	/** Sets how many inputs were done before this run. */
	set offset(offset: number) {
		this.#offset = offset;
	}

	/** Draws the last figures and leaves them on the screen. */
	stop(): void {
		clearInterval(this.#timer);
		this.#bar.update(this.#counts().done);
		this.#bar.stop();
	}

	#line(): string {
		const { done, failed, limitHits } = this.#counts();
		const seconds = (performance.now() - this.#started) / 1000;
		const rate = seconds > 0 ? (done - this.#offset) / seconds : 0;
		const parts: string[] = [];
		if (this.#total === undefined) {
			parts.push(`${done} done`);
		} else {
			const total = Math.max(this.#total, done);
			const width = 24;
			const filled = total === 0 ? width : Math.round((done / total) * width);
			const eta = rate > 0 ? formatSeconds((total - done) / rate) : "?";
			parts.push(`[${"█".repeat(filled)}${"░".repeat(width - filled)}] ${done}/${total}`, `ETA ${eta}`);
		}
		parts.push(`${rate >= 100 ? rate.toFixed(0) : rate.toFixed(1)}/s`, `${failed} failed (${limitHits} limits)`);
		return `byop map ${parts.join(" | ")}`;
	}
}

function formatSeconds(seconds: number): string {
	if (!Number.isFinite(seconds)) {
		return "?";
	}
	if (seconds < 60) {
		return `${Math.ceil(seconds)}s`;
	}
	const minutes = Math.floor(seconds / 60);
	return minutes < 60 ? `${minutes}m${String(Math.ceil(seconds % 60)).padStart(2, "0")}s` : `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, "0")}m`;
}
