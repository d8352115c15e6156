// `npm run soak`: builds the library and this soak run into .tmp/soak-build, then runs it in plain
// node, so that neither the threads nor the processes it starts load TypeScript (under tsx, each
// replacement thread or process would spend most of a second compiling, and the soak would
// measure tsx). SOAK_FROM_SOURCE=1 runs it from the sources under tsx instead.
import { execFileSync, spawnSync } from "node:child_process";
import { copyFileSync, rmSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../..", import.meta.url));
const out = path.join(root, ".tmp", "soak-build");

if (process.env["SOAK_FROM_SOURCE"] === "1") {
	await import("./run.ts");
} else {
	rmSync(out, { recursive: true, force: true });
	const tsc = path.join(root, "node_modules", "typescript", "bin", "tsc");
	const flags = ["--target", "ES2022", "--lib", "ES2024", "--module", "NodeNext", "--moduleResolution", "NodeNext", "--strict", "--skipLibCheck", "--types", "node"];
	const rewrite = ["--allowImportingTsExtensions", "--rewriteRelativeImportExtensions", "--verbatimModuleSyntax", "--rootDir", ".", "--outDir", out];
	execFileSync(process.execPath, [tsc, ...flags, ...rewrite, "src/index.ts", "src/pynisher/index.ts", "workers/thread.ts", "workers/process.ts", "test/soak/run.ts"], { cwd: root, stdio: "inherit" });
	copyFileSync(path.join(root, "test", "soak", "jobs.mjs"), path.join(out, "test", "soak", "jobs.mjs"));
	const result = spawnSync(process.execPath, [path.join(out, "test", "soak", "run.js")], { cwd: root, stdio: "inherit", env: { ...process.env, NODE_OPTIONS: "" } });
	process.exitCode = result.status ?? 1;
}
