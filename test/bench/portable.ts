// The portable path's rows (no /proc, `BYOP_PORTABLE=1`), beside the /proc path's. byop decides
// once per process whether it reads /proc, so they are measured in a child process of their own
// (`portable-child.ts`), which prints its rows as JSON.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { Plan } from "./dispatch.ts";
import type { Row } from "./report.ts";

/** What the child measures: section 3's trials, or section 6's windows. */
export type PortablePart = "limits" | "idle";

const CHILD = fileURLToPath(new URL("./portable-child.ts", import.meta.url));

/** Runs `part` on the portable path in a child process and returns its rows. */
export async function portableRows(part: PortablePart, plan: Plan & { readonly trials?: number }): Promise<Row[]> {
	const child = spawn(process.execPath, ["--import", "tsx", CHILD, part, JSON.stringify({ rounds: plan.rounds, trials: plan.trials ?? 5 })], {
		env: { ...process.env, BYOP_PORTABLE: "1" },
		stdio: ["ignore", "pipe", "inherit"],
	});
	let output = "";
	child.stdout.setEncoding("utf8");
	child.stdout.on("data", (chunk: string) => (output += chunk));
	const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
	if (code !== 0) {
		throw new Error(`the portable path's ${part} rows failed (exit code ${code})`);
	}
	// NaN (a figure with no values) goes through JSON as null.
	return JSON.parse(output, (_key, value: unknown) => (value === null ? Number.NaN : value)) as Row[];
}
