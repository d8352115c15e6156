import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { splitLoaders, threadLoaders } from "../src/executors/loader-flags.ts";
import { registerLoaders } from "../src/worker/tsx-hooks.ts";

function withExecArgv<T>(argv: string[], fn: () => T): T {
	const saved = [...process.execArgv];
	process.execArgv.splice(0, process.execArgv.length, ...argv);
	try {
		return fn();
	} finally {
		process.execArgv.splice(0, process.execArgv.length, ...saved);
	}
}

describe("loader hooks for worker threads", () => {
	it("finds tsx in every form of --import, --loader and --experimental-loader", () => {
		const api = /tsx\/dist\/esm\/api\/index\.mjs$/;
		for (const argv of [
			["--import", "tsx"],
			["--import=tsx"],
			["--import", "tsx/esm"],
			["--loader", "tsx"],
			["--experimental-loader=tsx"],
			["--import", "file:///x/node_modules/tsx/dist/loader.mjs"],
		]) {
			const loaders = withExecArgv(argv, threadLoaders);
			assert.equal(loaders.length, 1, argv.join(" "));
			assert.match(loaders[0]!, api, argv.join(" "));
		}
	});

	it("ignores other flags and loaders, and a flag without its value", () => {
		assert.deepEqual(
			withExecArgv(["--enable-source-maps", "--import", "./other-hook.mjs", "--max-old-space-size=100"], threadLoaders),
			[],
		);
		assert.deepEqual(withExecArgv(["--import"], threadLoaders), []);
	});

	it("splits tsx's loader out of the flags a pool process starts with, and keeps every other flag", () => {
		const { rest, loaders } = splitLoaders([
			"--require",
			"/x/tsx/dist/preflight.cjs",
			"--require",
			"./dotenv.cjs",
			"--import",
			"file:///x/node_modules/tsx/dist/loader.mjs",
			"--import=tsx",
			"--import",
			"./other-hook.mjs",
			"--max-old-space-size=100",
			"--import",
		]);
		assert.deepEqual(rest, ["--require", "./dotenv.cjs", "--import", "./other-hook.mjs", "--max-old-space-size=100", "--import"]);
		assert.deepEqual(loaders.slice(0, 2), ["file:///x/tsx/dist/cjs/api/index.mjs", "file:///x/node_modules/tsx/dist/esm/api/index.mjs"]);
		assert.equal(loaders.length, 3);
		assert.match(loaders[2]!, /tsx\/dist\/esm\/api\/index\.mjs$/);
	});

	it("registers the hooks a list names, and does nothing for an empty list", async () => {
		await registerLoaders([]);
		const loaders = threadLoaders();
		// Under `node --import tsx`, its import hooks; under the tsx CLI, its require hooks too.
		assert.ok(loaders.some((loader) => /tsx\/dist\/esm\/api\/index\.mjs$/.test(loader)), "the tests run under tsx");
		await registerLoaders(loaders);
	});
});
