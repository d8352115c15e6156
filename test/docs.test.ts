// Every example marked `<!-- example -->` in docs/ runs as written, against the package as packed.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { packedTarball } from "./pack.ts";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const docs = path.join(root, "docs");
const project = mkdtempSync(path.join(tmpdir(), "byop-docs-"));
const tsx = pathToFileURL(path.join(root, "node_modules", "tsx", "dist", "loader.mjs")).href;

/** What each example must print, by document and position. */
const expected: Record<string, RegExp[][]> = {
	"limits.md": [
		[/WallTimeLimitError: Wall time limit of 500 ms reached/, /ERR_WALL_TIME_LIMIT 500 5\d\d/],
		[/^rested$/m, /spin stopped after 3\d\d ms of CPU/, /^true$/m],
		[/hog: heap limit of 64 MB passed/, /buffers: rss limit of 128 MB passed/, /^true rss$/m],
		[/^WallTimeLimitError$/m, /the call ended [2-9]\d\d ms after it started/],
		[/\{ epochs: 2, loss: /, /^true$/m],
	],
	"scheduler.md": [[/"epochs":1/, /"epochs":3/, /^exhausted$/m], [/stopped: enough waiting/, /^stopped$/m]],
	"plugins.md": [
		[/refused sleepy\(200\): one is in flight/],
		[/^open\nprogress \{"epoch":1,"loss":0\.5\}\nprogress \{"epoch":2,"loss":0\.25\}\nprogress \{"epoch":3,"loss":0\.125\}\nclose\nresult \{"epochs":3,"loss":0\.125\}$/m],
		[/\[ 0\.1, 0\.05, 0\.03333333333333333 \]/],
		[/^failure 1$/m, /^failure 2$/m, /^2 failed$/m],
	],
	"tasks-and-plugins.md": [[/\[ true, true, false \]/, /refused train\(3\)/]],
	"../README.md": [[/\{ epochs: 42, loss: .*\} \{\s+wallMs: /, /where: 'thread'/, /^exhausted$/m]],
};

function examples(file: string): string[] {
	const text = readFileSync(path.join(docs, file), "utf8");
	return [...text.matchAll(/<!-- example -->\n```ts\n([\s\S]*?)```/g)].map((match) => match[1]!);
}

describe("documentation examples", () => {
	before(() => {
		writeFileSync(path.join(project, "package.json"), JSON.stringify({ name: "byop-docs", type: "module", private: true }));
		execFileSync("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", packedTarball()], { cwd: project, stdio: "ignore", timeout: 180_000, env: { ...process.env, NODE_OPTIONS: "" } });
		copyFileSync(path.join(docs, "examples", "jobs.mjs"), path.join(project, "jobs.mjs"));
		// The README's quick start names its module jobs.js.
		copyFileSync(path.join(docs, "examples", "jobs.mjs"), path.join(project, "jobs.js"));
	});

	after(() => rmSync(project, { recursive: true, force: true }));

	it("marks examples in every guide that has them", () => {
		const files = readdirSync(docs).filter((file) => file.endsWith(".md") && examples(file).length > 0);
		assert.deepEqual(["../README.md", ...files].sort(), Object.keys(expected).sort());
	});

	for (const [file, outputs] of Object.entries(expected)) {
		it(`${file}: every example runs and prints what it says`, () => {
			const blocks = examples(file);
			assert.equal(blocks.length, outputs.length, `${file} has ${blocks.length} examples`);
			blocks.forEach((code, index) => {
				const script = path.join(project, `${path.basename(file, ".md")}-${index}.ts`);
				writeFileSync(script, code);
				const stdout = execFileSync(process.execPath, ["--import", tsx, script], { cwd: project, encoding: "utf8", timeout: 60_000, stdio: ["ignore", "pipe", "pipe"] });
				for (const pattern of outputs[index] ?? []) {
					assert.match(stdout, pattern, `${file} example ${index + 1}`);
				}
			});
		});
	}
});
