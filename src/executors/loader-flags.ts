import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

/**
 * The module-loader hooks of this process (such as tsx's) as URLs that a worker thread can
 * register: Node runs `--import` preloads in forked processes, but not in worker threads.
 */
export function threadLoaders(): string[] {
	return splitLoaders(process.execArgv).loaders;
}

/**
 * Splits Node flags into tsx's loader (as URLs of its registration API) and the other flags. A
 * forked process started without the loader starts in a fraction of the time, and registers
 * it only when it loads a TypeScript module.
 */
export function splitLoaders(argv: readonly string[]): { readonly rest: string[]; readonly loaders: string[] } {
	const rest: string[] = [];
	const loaders: string[] = [];
	for (let i = 0; i < argv.length; i++) {
		const flag = argv[i]!;
		const equals = flag.indexOf("=");
		const name = equals < 0 ? flag : flag.slice(0, equals);
		if (name === "--require" || name === "-r") {
			// tsx's preflight: its require hooks for TypeScript, and a signal relay to the tsx CLI.
			const value = equals < 0 ? argv[i + 1] : flag.slice(equals + 1);
			if (value !== undefined && /[\\/]tsx[\\/]dist[\\/]preflight\.cjs$/.test(value)) {
				loaders.push(new URL("./cjs/api/index.mjs", pathToFileURL(value)).href);
				if (equals < 0) {
					i++;
				}
				continue;
			}
		}
		if (name === "--import" || name === "--loader" || name === "--experimental-loader") {
			const value = equals < 0 ? argv[i + 1] : flag.slice(equals + 1);
			const tsx = value === undefined ? undefined : tsxApi(value);
			if (tsx !== undefined) {
				loaders.push(tsx);
				if (equals < 0) {
					i++;
				}
				continue;
			}
		}
		rest.push(flag);
	}
	return { rest, loaders: [...new Set(loaders)] };
}

/** The URL of tsx's ESM registration API for a `--import` value that loads tsx. */
function tsxApi(value: string): string | undefined {
	if (value.startsWith("file:") && /[\\/]tsx[\\/]dist[\\/]/.test(value)) {
		return new URL("./esm/api/index.mjs", value).href;
	}
	if (value === "tsx" || value === "tsx/esm") {
		try {
			const resolved = createRequire(`${process.cwd()}/`).resolve("tsx/package.json");
			return new URL("./dist/esm/api/index.mjs", pathToFileURL(resolved)).href;
		} catch {
			return undefined;
		}
	}
	return undefined;
}
