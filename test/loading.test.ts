// Stopping a call while its thread loads the job's module. Node never closes a file its module
// loader was reading in a thread that is terminated, so byop lets the load end first (up to a
// second) and the thread then returns without running the call.
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, it } from "node:test";
import { CancelledError, Scheduler } from "../src/index.ts";
import { PynisherPlugin, WallTimeLimitError } from "../src/pynisher/index.ts";
import { delay, runAll } from "./helpers.ts";

function fixture(file: string) {
	return { module: new URL(`./fixtures/${file}`, import.meta.url), name: "add" };
}

/**
 * A job module that imports 400 small modules: its load is mostly file reads, so a thread ended
 * during the load is almost surely reading one. Written to a temporary directory.
 */
function manyModules(): { module: URL; name: string; dir: string } {
	const dir = mkdtempSync(join(tmpdir(), "byop-load-"));
	const imports: string[] = [];
	for (let i = 0; i < 400; i++) {
		writeFileSync(join(dir, `m${i}.mjs`), `export const v${i} = ${i};\n`);
		imports.push(`import { v${i} } from "./m${i}.mjs";`);
	}
	writeFileSync(join(dir, "job.mjs"), `${imports.join("\n")}\nexport function add(a, b) { return a + b + v0 - v0; }\n`);
	return { module: pathToFileURL(join(dir, "job.mjs")), name: "add", dir };
}

/** Open descriptors and their targets, leaving out tsx's and esbuild's own files (this test process's loader). */
function descriptors(): Map<string, string> {
	const found = new Map<string, string>();
	for (const fd of readdirSync("/proc/self/fd")) {
		try {
			const target = readlinkSync(`/proc/self/fd/${fd}`);
			if (!/node_modules\/(tsx|esbuild)\//.test(target)) {
				found.set(fd, target);
			}
		} catch {
			// The listing's own descriptor.
		}
	}
	return found;
}

describe("stopping a call while its thread loads the job's module", () => {
	it("cancels calls at every moment of a slow load and leaves no descriptor open", async (t) => {
		const job = manyModules();
		t.after(() => rmSync(job.dir, { recursive: true, force: true }));
		// A first run starts everything this process needs, so that only the runs below count; it
		// also times a thread's start and load here, which the cancels below are spread over (a
		// busy machine takes longer).
		const first = Scheduler.withThreads({ maxWorkers: 1 });
		const echo = first.task({ module: job.module, name: "add" });
		let submittedAt = 0;
		let coldMs = 0;
		echo.on(echo.RESULT, () => {
			coldMs = performance.now() - submittedAt;
		});
		await runAll(first, () => {
			submittedAt = performance.now();
			return [echo.submit(1, 1)];
		});
		const before = descriptors();
		const waits: number[] = [];
		for (let i = 0; i < 16; i++) {
			const at = Math.max(1, Math.round((i / 15) * coldMs * 1.3));
			const scheduler = Scheduler.withThreads({ maxWorkers: 2 });
			const plain = scheduler.task({ module: job.module, name: "add" });
			const limited = scheduler.task({ module: job.module, name: "add" }, { plugins: [new PynisherPlugin({ wallTimeLimit: 60, memoryLimit: "512mb" })] });
			const cancelledAt = new Map<unknown, number>();
			for (const task of [plain, limited]) {
				task.on(task.CANCELLED, (future) => waits.push(performance.now() - (cancelledAt.get(future) ?? 0)));
			}
			const { futures } = await runAll(scheduler, () => {
				const submitted = [plain.submit(1, 2), limited.submit(3, 4)];
				scheduler.callLater([at, "ms"], () => {
					for (const future of submitted) {
						cancelledAt.set(future, performance.now());
						future?.cancel("stopped while loading");
					}
				});
				return submitted;
			});
			for (const future of futures) {
				assert.ok(future.state === "cancelled" || future.result === 3 || future.result === 7, `${future.state}: ${String(future.exception)}`);
				if (future.state === "cancelled") {
					assert.ok(future.exception instanceof CancelledError);
				}
			}
		}
		// Some cancels fell in a load and waited for it; none waited longer than the bound (plus a
		// loaded machine's slack).
		const shown = waits.map((ms) => ms.toFixed(0)).join(", ");
		assert.ok(waits.some((ms) => ms > 2), `some cancels waited for a load: ${shown} ms`);
		assert.ok(Math.max(...waits) < 3000, `cancels took ${shown} ms`);
		let left: string[] = [];
		for (let i = 0; i < 60; i++) {
			const now = descriptors();
			left = [...now].filter(([fd, target]) => before.get(fd) !== target).map(([fd, target]) => `${fd} -> ${target}`);
			if (left.length === 0) {
				break;
			}
			await delay(50);
		}
		assert.deepEqual(left, []);
	});

	it("ends a call whose module load outlasts its wall limit by the load bound, not by the load", async () => {
		const scheduler = Scheduler.withThreads({ maxWorkers: 1 });
		const task = scheduler.task(fixture("slow-load.mjs"), { plugins: [new PynisherPlugin({ wallTimeLimit: [200, "ms"] })] });
		let submittedAt = 0;
		let endedAt = 0;
		task.on(task.EXCEPTION, () => {
			endedAt = performance.now();
		});
		const { futures } = await runAll(scheduler, () => {
			submittedAt = performance.now();
			return [task.submit(1, 2)];
		});
		const [future] = futures;
		assert.ok(future?.exception instanceof WallTimeLimitError, String(future?.exception));
		// The module's top level runs for 6 s; the call ends about 1.2 s in (200 ms, then up to
		// 1 s for the load), well before the load would have.
		const tookMs = endedAt - submittedAt;
		assert.ok(tookMs >= 1000 && tookMs < 4500, `ended after ${tookMs.toFixed(0)} ms`);
	});
});
