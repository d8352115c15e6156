// A node:test reporter that prints how long each test file's top-level tests took, slowest first:
// `--test-reporter=./.ci/file-times.mjs --test-reporter-destination=stderr` beside the usual one.
import path from "node:path";

export default async function* fileTimes(source) {
	const byFile = new Map();
	for await (const event of source) {
		if ((event.type === "test:pass" || event.type === "test:fail") && event.data.nesting === 0 && event.data.file !== undefined) {
			const file = path.relative(process.cwd(), event.data.file);
			byFile.set(file, (byFile.get(file) ?? 0) + (event.data.details?.duration_ms ?? 0));
		}
	}
	const rows = [...byFile].sort((a, b) => b[1] - a[1]);
	const total = rows.reduce((sum, [, ms]) => sum + ms, 0);
	yield `\ntime per test file (sum of its top-level tests):\n${rows.map(([file, ms]) => `${(ms / 1000).toFixed(1).padStart(7)} s  ${file}`).join("\n")}\n${(total / 1000).toFixed(1).padStart(7)} s  in all\n`;
}
