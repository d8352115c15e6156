// Job functions used by the examples in these docs. A job module is plain ES module code:
// each export is a function that a task can name.
import { comm, taskSignal } from "byop/worker";

/** Pretends to train a model: `epochs` steps of real CPU work. */
export function train(epochs) {
	let loss = 1;
	for (let epoch = 0; epoch < epochs; epoch++) {
		for (let i = 0; i < 2_000_000; i++) {
			loss = (loss * 0.9999999 + Math.sqrt(i) * 1e-12) % 10;
		}
	}
	return { epochs, loss };
}

/** Sleeps for `ms` milliseconds without using CPU, and gives up early when asked to stop. */
export async function sleepy(ms) {
	const signal = taskSignal();
	await new Promise((resolve) => {
		const timer = setTimeout(resolve, ms);
		signal.addEventListener("abort", () => {
			clearTimeout(timer);
			resolve();
		}, { once: true });
	});
	return signal.aborted ? "stopped early" : "rested";
}

/** Spins the CPU forever: only a limit ends it. */
export function spin() {
	for (;;) {
		// Busy.
	}
}

/** Grows the V8 heap in small steps until a limit stops it. */
export function hog() {
	const hold = [];
	for (;;) {
		hold.push(new Array(100_000).fill(Math.random()));
	}
}

/** Holds `mb` megabytes of Buffers, which live outside the V8 heap, for a second. */
export async function buffers(mb) {
	const hold = [];
	for (let i = 0; i < mb; i++) {
		hold.push(Buffer.alloc(1024 * 1024, 1));
	}
	await new Promise((resolve) => setTimeout(resolve, 1000));
	return hold.length;
}

/** Trains for `epochs` steps, reporting each step's progress to the main side through `comm`. */
export async function trainWithProgress(epochs) {
	let loss = 1;
	for (let epoch = 1; epoch <= epochs; epoch++) {
		loss *= 0.5;
		await comm.send({ epoch, loss });
	}
	return { epochs, loss };
}

/** Asks the main side for a learning rate for each of `epochs` steps, and returns them. */
export async function askForRates(epochs) {
	const rates = [];
	for (let epoch = 1; epoch <= epochs; epoch++) {
		rates.push(await comm.request({ epoch }, { timeout: [5, "s"] }));
	}
	return rates;
}

/** Throws an Error with `message`. */
export function fail(message) {
	throw new Error(message);
}
