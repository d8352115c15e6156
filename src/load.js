var __rewriteRelativeImportExtension = (this && this.__rewriteRelativeImportExtension) || function (path, preserveJsx) {
    if (typeof path === "string" && /^\.\.?\//.test(path)) {
        return path.replace(/\.(tsx)$|((?:\.d)?)((?:\.[^./]+?)?)\.([cm]?)ts$/i, function (m, tsx, d, ext, cm) {
            return tsx ? preserveJsx ? ".jsx" : ".js" : d && (!ext || !cm) ? m : (d + ext + "." + cm.toLowerCase() + "js");
        });
    }
    return path;
};
import { TaskLoadError } from "./errors.js";
const modules = new Map();
/** Imports `ref.module` once per thread and returns the function it exports as `ref.name`. */
export async function loadFunction(ref) {
    let loading = modules.get(ref.module);
    if (loading === undefined) {
        loading = import(__rewriteRelativeImportExtension(ref.module));
        modules.set(ref.module, loading);
        // A failed import is not cached: the file may be fixed before the next call.
        loading.catch(() => modules.delete(ref.module));
    }
    let namespace;
    try {
        namespace = await loading;
    }
    catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        throw new TaskLoadError(`Cannot load module "${ref.module}" for export "${ref.name}": ${reason}`, ref.module, ref.name, { cause: error });
    }
    let fn = namespace[ref.name];
    // A CommonJS module's named exports may sit on its default export.
    if (fn === undefined && ref.name !== "default" && typeof namespace["default"] === "object" && namespace["default"] !== null) {
        fn = namespace["default"][ref.name];
    }
    if (typeof fn !== "function") {
        const what = fn === undefined ? "has no export" : `exports a ${typeof fn} as`;
        throw new TaskLoadError(`Module "${ref.module}" ${what} "${ref.name}"; expected a function`, ref.module, ref.name);
    }
    return fn;
}
