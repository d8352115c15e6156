var __rewriteRelativeImportExtension = (this && this.__rewriteRelativeImportExtension) || function (path, preserveJsx) {
    if (typeof path === "string" && /^\.\.?\//.test(path)) {
        return path.replace(/\.(tsx)$|((?:\.d)?)((?:\.[^./]+?)?)\.([cm]?)ts$/i, function (m, tsx, d, ext, cm) {
            return tsx ? preserveJsx ? ".jsx" : ".js" : d && (!ext || !cm) ? m : (d + ext + "." + cm.toLowerCase() + "js");
        });
    }
    return path;
};
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
/**
 * The module-loader hooks of this process (such as tsx's) as URLs that a worker thread can
 * register: Node runs `--import` preloads in forked processes, but not in worker threads.
 */
export function threadLoaders() {
    const loaders = [];
    const argv = process.execArgv;
    for (let i = 0; i < argv.length; i++) {
        const flag = argv[i];
        const [name, inline] = flag.includes("=") ? [flag.slice(0, flag.indexOf("=")), flag.slice(flag.indexOf("=") + 1)] : [flag, undefined];
        if (name !== "--import" && name !== "--loader" && name !== "--experimental-loader") {
            continue;
        }
        const value = inline ?? argv[++i];
        if (value === undefined) {
            continue;
        }
        const tsx = tsxApi(value);
        if (tsx !== undefined) {
            loaders.push(tsx);
        }
    }
    return [...new Set(loaders)];
}
/** The URL of tsx's ESM registration API for a `--import` value that loads tsx. */
function tsxApi(value) {
    if (value.startsWith("file:") && /[\\/]tsx[\\/]dist[\\/]/.test(value)) {
        return new URL("./esm/api/index.mjs", value).href;
    }
    if (value === "tsx" || value === "tsx/esm") {
        try {
            const resolved = createRequire(`${process.cwd()}/`).resolve("tsx/package.json");
            return new URL("./dist/esm/api/index.mjs", pathToFileURL(resolved)).href;
        }
        catch {
            return undefined;
        }
    }
    return undefined;
}
/** Registers the loaders in the calling worker thread. */
export async function registerLoaders(loaders) {
    for (const loader of loaders) {
        const api = (await import(__rewriteRelativeImportExtension(loader)));
        api.register?.();
    }
}
