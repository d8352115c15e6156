// Section 8: `byop map` over 10,000 no-op inputs against a plain Node loop that sends the same
// calls to piscina directly, each as a command run from start to exit.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { alternate, summarize } from "./harness.ts";
import type { Row } from "./report.ts";

/** Options of the section. */
export interface MapPlan {
	readonly rounds: number;
	readonly log: (line: string) => void;
}

export const CLI_MAP = "9. byop map: 10,000 no-op inputs on 2 threads";

const ITEMS = 10_000;
const main = fileURLToPath(new URL("../../dist/src/cli/main.js", import.meta.url));
const jobs = fileURLToPath(new URL("./jobs.mjs", import.meta.url));
const loop = fileURLToPath(new URL("./map-piscina.mjs", import.meta.url));

type Contender = "byop map" | "piscina loop";

/** Runs `node args…` to its end; resolves to the milliseconds from spawn to exit. */
function timed(args: readonly string[]): Promise<number> {
	const start = performance.now();
	const child = spawn(process.execPath, [...args], { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, NODE_OPTIONS: "" } });
	let stderr = "";
	child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
	return new Promise((resolve, reject) => {
		child.once("close", (code) => (code === 0 ? resolve(performance.now() - start) : reject(new Error(`${args.join(" ")} exited ${code}: ${stderr}`))));
	});
}

export async function cliMapSection(plan: MapPlan): Promise<Row[]> {
	const dir = mkdtempSync(path.join(tmpdir(), "byop-bench-map-"));
	try {
		const input = path.join(dir, "in.jsonl");
		writeFileSync(input, Array.from({ length: ITEMS }, (_, i) => `[${i},1]\n`).join(""));
		const commands: Record<Contender, (output: string) => string[]> = {
			"byop map": (output) => [main, "map", "--concurrency", "2", "--no-progress", "--input", input, "--output", output, `${jobs}#add`],
			"piscina loop": (output) => [loop, input, output],
		};
		const contenders = Object.keys(commands) as Contender[];
		const ms = new Map<Contender, number[]>(contenders.map((name) => [name, []]));
		await alternate(plan.rounds, contenders, async (name, round) => {
			const output = path.join(dir, `out-${round}.jsonl`);
			ms.get(name)![round] = await timed(commands[name](output));
			const lines = readFileSync(output, "utf8").split("\n").filter(Boolean).length;
			if (lines !== ITEMS) {
				throw new Error(`${name} wrote ${lines} lines for ${ITEMS} inputs`);
			}
			if (contenders.every((contender) => ms.get(contender)![round] !== undefined)) {
				plan.log(`  map round ${round + 1}/${plan.rounds}: ${contenders.map((c) => `${c} ${Math.round(ms.get(c)![round]!)} ms`).join(", ")}`);
			}
		});
		const perSecond = (name: Contender): number[] => ms.get(name)!.map((value) => (ITEMS / value) * 1000);
		const ratios = ms.get("byop map")!.map((value, round) => ms.get("piscina loop")![round]! / value);
		const median = (name: Contender): string => `${Math.round(summarize(perSecond(name)).median).toLocaleString("en-US")} items/s`;
		return [
			{
				section: CLI_MAP,
				measure: "byop map, from start to exit, throughput",
				value: summarize(perSecond("byop map")),
				shape: "range",
				unit: "items/s",
				digits: 0,
				reference: `piscina loop ${median("piscina loop")}`,
			},
			{
				section: CLI_MAP,
				measure: "byop map ÷ a plain Node loop on piscina, throughput",
				value: summarize(ratios),
				shape: "range",
				unit: "×",
				digits: 2,
				reference: `byop map ${median("byop map")}, piscina loop ${median("piscina loop")}`,
			},
		];
	} finally {
		rmSync(dir, { recursive: true, force: true });
	}
}
