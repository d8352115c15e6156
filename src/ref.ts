import path from "node:path";
import { pathToFileURL } from "node:url";
import { describeExpected } from "./units.ts";

/**
 * Names a function by its module and export, so that any executor (a thread, a process, the
 * main thread) can load it.
 *
 * @example { module: new URL("./jobs.js", import.meta.url), name: "train" }
 */
export interface FunctionRef {
	/** A file URL, an absolute path, a path relative to the working directory, or a package name. */
	readonly module: string | URL;
	/** The export to call. @default "default" */
	readonly name?: string;
}

/** A function reference in the form the workers load: `module` is a URL or a package specifier. */
export interface ResolvedRef {
	readonly module: string;
	readonly name: string;
}

/** Checks and resolves a function reference, naming `option` in errors. */
export function resolveRef(ref: unknown, option = "ref"): ResolvedRef {
	if (typeof ref !== "object" || ref === null) {
		throw new TypeError(describeExpected(option, "a function reference `{ module, name? }`", ref));
	}
	const { module, name = "default" } = ref as { module?: unknown; name?: unknown };
	if (typeof name !== "string" || name === "") {
		throw new TypeError(describeExpected(`${option}.name`, "a non-empty export name", name));
	}
	if (module instanceof URL) {
		return { module: module.href, name };
	}
	if (typeof module !== "string" || module === "") {
		throw new TypeError(describeExpected(`${option}.module`, "a module URL, path or package name", module));
	}
	if (/^[a-z][a-z0-9+.-]*:/i.test(module) && !/^[a-z]:[\\/]/i.test(module)) {
		return { module, name };
	}
	if (path.isAbsolute(module) || module.startsWith("./") || module.startsWith("../") || module === "." || module === "..") {
		return { module: pathToFileURL(path.resolve(module)).href, name };
	}
	return { module, name };
}

/** A short description of a reference for messages: `jobs.ts#train`. */
export function describeRef(ref: ResolvedRef): string {
	const base = ref.module.slice(ref.module.lastIndexOf("/") + 1) || ref.module;
	return `${base}#${ref.name}`;
}
