import { realpathSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { RemoteRefusedError, TaskLoadError } from "../../errors.ts";

/** What a worker host may load: files under its root, and the packages it was told to allow. */
export interface HostPolicy {
	/** The root's real path. */
	readonly root: string;
	/** Package names (`name` or `@scope/name`). */
	readonly allow: ReadonlySet<string>;
}

/** The package a bare specifier names: `name` of `name/sub`, `@scope/name` of `@scope/name/sub`. */
export function packageName(specifier: string): string {
	const parts = specifier.split("/");
	return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : (parts[0] ?? specifier);
}

const PACKAGE = /^(@[a-z0-9][\w.-]*\/)?[a-z0-9][\w.-]*(\/[\w.@-]+)*$/i;

/**
 * Resolves a job's module on a host, before anything is imported: a relative path against the
 * root, refused when its real path (symlinks followed) leaves the root; a package only when its
 * name was allowed. Returns what to import.
 *
 * @throws {RemoteRefusedError} When the module is outside the root or a package not allowed.
 * @throws {TaskLoadError} When the file does not exist.
 */
export function resolveOnHost(module: string, kind: "file" | "package", name: string, policy: HostPolicy): string {
	if (kind === "package") {
		const pkg = packageName(module);
		if (!PACKAGE.test(module) || module.split("/").some((part) => part === ".." || part === ".")) {
			throw new RemoteRefusedError(`This worker host refuses module "${module}": not a package specifier`, "not-allowed");
		}
		if (!policy.allow.has(pkg)) {
			throw new RemoteRefusedError(`This worker host refuses package "${pkg}" (module "${module}"): it is not in the host's --allow list`, "not-allowed");
		}
		return module;
	}
	if (path.posix.isAbsolute(module) || path.win32.isAbsolute(module) || module.includes("\0") || module.includes("\\")) {
		throw new RemoteRefusedError(`This worker host refuses module "${module}": a file module must be a path relative to the host's --root`, "outside-root");
	}
	const joined = path.resolve(policy.root, ...module.split("/"));
	if (!inside(policy.root, joined)) {
		throw new RemoteRefusedError(`This worker host refuses module "${module}": it is outside the host's --root "${policy.root}"`, "outside-root");
	}
	let real: string;
	try {
		real = realpathSync(joined);
	} catch (error) {
		throw new TaskLoadError(`Cannot load module "${module}" for export "${name}" on this worker host: no such file under its --root "${policy.root}"`, module, name, { cause: error });
	}
	if (!inside(policy.root, real)) {
		throw new RemoteRefusedError(`This worker host refuses module "${module}": it leads outside the host's --root "${policy.root}" (to "${real}")`, "outside-root");
	}
	return pathToFileURL(real).href;
}

function inside(root: string, file: string): boolean {
	const relative = path.relative(root, file);
	return relative !== "" && !relative.startsWith("..") && !path.isAbsolute(relative);
}
