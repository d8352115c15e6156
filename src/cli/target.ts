import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { pathToFileURL } from "node:url";
import type { FunctionRef } from "../index.ts";
import { quote, UsageError } from "./usage-error.ts";

/** The function a command calls: `<module>[#<export>]`, resolved from the working directory. */
export interface Target {
	readonly ref: FunctionRef;
	/** The module's file URL. */
	readonly url: URL;
	/** Whether the module is TypeScript, which a loader (tsx) must compile. */
	readonly typescript: boolean;
}

const TYPESCRIPT = /\.[cm]?tsx?$/;

/**
 * Resolves `<module>[#<export>]`: a file path relative to `cwd` (or absolute, or a `file:` URL),
 * else a package specifier resolved from `cwd` as `require.resolve` would. The export defaults
 * to `default`.
 *
 * @throws {UsageError} When the module cannot be found or the export name is empty.
 */
export function resolveTarget(spec: string, cwd = process.cwd()): Target {
	const hash = spec.lastIndexOf("#");
	const module = hash < 0 ? spec : spec.slice(0, hash);
	const name = hash < 0 ? "default" : spec.slice(hash + 1);
	if (module === "" || name === "") {
		throw new UsageError(`Expected \`<module>[#<export>]\`, got ${quote(spec)}`);
	}
	const url = resolveModule(module, cwd);
	return { ref: { module: url, name }, url, typescript: TYPESCRIPT.test(url.pathname) };
}

function resolveModule(module: string, cwd: string): URL {
	if (module.startsWith("file:")) {
		return new URL(module);
	}
	const file = path.resolve(cwd, module);
	const looksLikePath = module.startsWith(".") || path.isAbsolute(module) || module.includes("\\");
	if (looksLikePath || existsSync(file)) {
		if (!existsSync(file)) {
			throw new UsageError(`Cannot find module ${quote(module)}: no file ${quote(file)}`);
		}
		return pathToFileURL(file);
	}
	try {
		return pathToFileURL(createRequire(path.join(cwd, "noop.js")).resolve(module));
	} catch (error) {
		const reason = error instanceof Error ? error.message.split("\n")[0] : String(error);
		throw new UsageError(`Cannot find module ${quote(module)}: not a file in ${quote(cwd)}, nor a package found from there (${reason})`);
	}
}
