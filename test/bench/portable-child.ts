// Measures the portable path's rows (see `portable.ts`): run with BYOP_PORTABLE=1, prints the rows as JSON.
import { portableIdle } from "./idle.ts";
import { portableLimits } from "./limits.ts";
import type { PortablePart } from "./portable.ts";

const [part, numbers] = process.argv.slice(2) as [PortablePart, string];
if (process.env["BYOP_PORTABLE"] !== "1") {
	throw new Error("portable-child.ts runs with BYOP_PORTABLE=1");
}
const { rounds, trials } = JSON.parse(numbers) as { rounds: number; trials: number };
const log = (line: string): void => console.error(line);
const plan = { rounds, trials, log } as Parameters<typeof portableLimits>[0];
const rows = part === "limits" ? await portableLimits(plan) : await portableIdle(plan);
process.stdout.write(JSON.stringify(rows));
