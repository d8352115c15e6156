import path from "node:path";
import { pathToFileURL } from "node:url";
import { describeExpected } from "./units.js";
/** Checks and resolves a function reference, naming `option` in errors. */
export function resolveRef(ref, option = "ref") {
    if (typeof ref !== "object" || ref === null) {
        throw new TypeError(describeExpected(option, "a function reference `{ module, name? }`", ref));
    }
    const { module, name = "default" } = ref;
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
export function describeRef(ref) {
    const base = ref.module.slice(ref.module.lastIndexOf("/") + 1) || ref.module;
    return `${base}#${ref.name}`;
}
