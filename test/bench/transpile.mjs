// A real, large job module for the benchmark: it loads the TypeScript compiler (about 9 MB of
// JavaScript), as a job that does real work would load its own dependencies.
import ts from "typescript";

/** Transpiles each source to JavaScript and returns the total length of the output. */
export function transpile(sources) {
	let length = 0;
	for (const source of sources) {
		length += ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText.length;
	}
	return length;
}
